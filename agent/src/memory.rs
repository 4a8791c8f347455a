//! Keeping the agent's resident memory small on a gateway (the target is under 10 MB
//! with 64 cameras: docs/BENCHMARKS.md).
//!
//! glibc's allocator gives each thread that allocates its own arena and keeps freed
//! pages for reuse. A stream check (a few seconds of H.264 frames) leaves such pages
//! behind in whichever arena its thread used, so resident memory drifts up to the peak
//! of every thread at once. Two arenas for the whole process, and handing free pages
//! back after each stream check, keep it near what is actually in use.

/// Limits the allocator to two arenas. Call first thing in `main`, before any thread.
pub fn limit_allocator() {
    campuswatch_service::memory::limit_arenas(2);
}

/// Returns freed heap memory to the system (after a stream check dropped its buffers).
pub fn release_free_memory() {
    campuswatch_service::memory::release_free_memory();
}
