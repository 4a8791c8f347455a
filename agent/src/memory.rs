//! Keeping the agent's resident memory small on a gateway (the targets, with 64 cameras
//! and idle, are in docs/BENCHMARKS.md).
//!
//! glibc's allocator gives each thread that allocates its own arena and keeps freed
//! pages for reuse. A stream check (a few seconds of H.264 frames) leaves such pages
//! behind in whichever arena its thread used, so resident memory drifts up to the peak
//! of every thread at once. Two arenas for the whole process, and handing free pages
//! back after each stream check, keep it near what is actually in use.
//!
//! Most of an idle agent's resident memory is its own machine code, and most of that was
//! run once, at the start: argument parsing, configuration loading, the log's setup.
//! The kernel maps a program's code in blocks of 64 kB and more around each page used,
//! and keeps it mapped for the life of the process. Once the agent runs, those pages are
//! handed back; what the running agent uses comes back at its first use.

/// Limits the allocator to two arenas. Call first thing in `main`, before any thread.
pub fn limit_allocator() {
    campuswatch_service::memory::limit_arenas(2);
}

/// Returns freed heap memory to the system (after a stream check dropped its buffers).
pub fn release_free_memory() {
    campuswatch_service::memory::release_free_memory();
}

/// Asks the kernel to reclaim the pages of the agent's program that are resident now
/// (its code and read-only data; never its writable data). Call once the agent has
/// started: the pages it still uses are read back when next used. Pages that another
/// process maps too are left alone by the kernel. Does nothing where the kernel cannot
/// (before Linux 5.4) or `/proc` is not mounted.
pub fn release_startup_code() {
    #[cfg(target_os = "linux")]
    {
        let (Ok(maps), Ok(program)) = (
            std::fs::read_to_string("/proc/self/maps"),
            std::fs::read_link("/proc/self/exe"),
        ) else {
            return;
        };
        for (start, end) in read_only_mappings(&maps, &program.to_string_lossy()) {
            // SAFETY: the range is a mapping of this process's program that is not
            // writable; MADV_PAGEOUT only reclaims its pages, which the kernel reads
            // back from the program's file at the next access. No data changes.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_PAGEOUT);
            }
        }
    }
}

/// The address ranges of `/proc/self/maps` lines that map `program` without write access.
#[cfg(any(target_os = "linux", test))]
fn read_only_mappings(maps: &str, program: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let range = fields.next()?;
            let perms = fields.next()?;
            // offset, device, inode, then the path (which may hold spaces).
            let path = line.splitn(6, char::is_whitespace).nth(5)?.trim_start();
            if path != program || perms.contains('w') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            Some((
                usize::from_str_radix(start, 16).ok()?,
                usize::from_str_radix(end, 16).ok()?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_programs_mappings_without_write_access_are_released() {
        let maps = "\
55d9917d7000-55d991a02000 r--p 00000000 fe:01 123                        /usr/bin/campuswatch-agent
55d991a02000-55d991f84000 r-xp 0022a000 fe:01 123 /usr/bin/campuswatch-agent
55d991f84000-55d991fc7000 r--p 007ab000 fe:01 123 /usr/bin/campuswatch-agent
55d991fc7000-55d991fc9000 rw-p 007ee000 fe:01 123 /usr/bin/campuswatch-agent
55d991fc9000-55d991fca000 rw-p 00000000 00:00 0
7fc8aebae000-7fc8aed04000 r-xp 00028000 fe:01 456 /usr/lib/x86_64-linux-gnu/libc.so.6
7fc8aed04000-7fc8aed57000 r--p 0017e000 fe:01 789 /usr/bin/campuswatch-agent-old
";
        assert_eq!(
            read_only_mappings(maps, "/usr/bin/campuswatch-agent"),
            vec![
                (0x55d9917d7000, 0x55d991a02000),
                (0x55d991a02000, 0x55d991f84000),
                (0x55d991f84000, 0x55d991fc7000),
            ]
        );
    }

    #[test]
    fn a_program_path_with_spaces_is_matched_whole() {
        let maps = "1000-2000 r-xp 00000000 fe:01 1 /opt/campus watch/agent\n\
                    3000-4000 r-xp 00000000 fe:01 2 /opt/campus\n";
        assert_eq!(
            read_only_mappings(maps, "/opt/campus watch/agent"),
            vec![(0x1000, 0x2000)]
        );
        assert!(read_only_mappings(maps, "/opt/campus watch").is_empty());
    }
}
