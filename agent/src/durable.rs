//! Durable file writes: the epoch and the spool's acknowledgement watermark must survive
//! a power cut at any instant, so they are replaced atomically (write a temporary file,
//! fsync it, rename it over the old one, fsync the directory so the rename itself sticks).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Atomically replaces `path` with `bytes`; when this returns `Ok` the new content
/// survives a crash.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// Fsyncs a directory so that file creations, renames and truncations in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    // Opening a directory read-only and fsyncing it is how POSIX makes entries durable;
    // other platforms have no equivalent and do not need it.
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_write_replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("epoch");
        write_atomically(&p, b"a much longer first content").unwrap();
        write_atomically(&p, b"7").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"7");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
