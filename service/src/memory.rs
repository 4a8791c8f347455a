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
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
}

/// Returns the allocator's free pages, in every arena, to the system.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim walks the allocator's own free lists; it takes its locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
