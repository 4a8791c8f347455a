//! Link settings of the agent program.
//!
//! On glibc Linux the program's relative relocations are packed (`DT_RELR`): a
//! position-independent program otherwise carries one 24-byte entry for every pointer
//! in its data (about 15,000, 360 kB), which the loader reads at every start and which
//! then stay resident for the program's life. Packed, they take a few kilobytes. The
//! loader needs glibc 2.36, which the packages already require (docs/operations.md);
//! the linker, GNU ld 2.38 or lld 15.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
