//! Keeping a process's resident memory close to what it uses.
//!
//! glibc's allocator gives each thread that allocates an arena of its own and keeps freed
//! pages for reuse, so a burst of short-lived allocations (a stream check's frames in the
//! agent; restoring a province's state from the store, or a large API answer, in the
//! server) leaves resident memory at the burst's peak long after the memory was freed.
//! Fewer arenas, and handing free pages back after such bursts, keep it near what is live.

/// Limits the allocator to `arenas` arenas for the whole process. Call first thing in
/// `main`, before any thread exists.
pub fn limit_arenas(arenas: i32) {
    set(Parameter::ArenaMax, arenas);
}

/// Serves every allocation of `bytes` or more with pages of its own, handed back as soon
/// as it is freed. glibc raises this threshold each time such a block is freed (up to
/// 32 MB), after which large short-lived buffers (a JSON answer listing a province's
/// campuses) come from the arenas and their pages stay. A fixed threshold stops that.
pub fn large_allocations_apart(bytes: i32) {
    set(Parameter::MmapThreshold, bytes);
}

/// The allocator's parameters this module sets (`mallopt`).
#[derive(Clone, Copy)]
enum Parameter {
    ArenaMax,
    MmapThreshold,
}

/// Sets one of glibc's allocator parameters; elsewhere, nothing.
fn set(parameter: Parameter, value: i32) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let param = match parameter {
            Parameter::ArenaMax => libc::M_ARENA_MAX,
            Parameter::MmapThreshold => libc::M_MMAP_THRESHOLD,
        };
        // SAFETY: mallopt only sets an allocator parameter; it takes the allocator's lock.
        unsafe {
            libc::mallopt(param, value);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = (parameter, value);
}

/// Returns the allocator's free pages, in every arena, to the system.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim walks the allocator's own free lists; it takes its locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
