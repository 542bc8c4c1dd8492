//! An exclusive lock on a folder, held for a run.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// An exclusive, advisory lock on a folder (`flock` on the folder itself: no
/// lock file is left behind, and the kernel releases the lock when the
/// process ends, however it ends). Two sparky runs that would write the same
/// folder cannot both hold it: the second fails at once with
/// [`Error::Locked`]. Readers take no lock.
#[derive(Debug)]
pub struct DirLock {
    _dir: File,
    path: PathBuf,
}

impl DirLock {
    /// Creates `path` if needed and locks it.
    ///
    /// # Errors
    /// The folder cannot be created or opened, is not a folder, or another
    /// process holds the lock.
    pub fn acquire(path: &Path) -> Result<Self> {
        if let Ok(meta) = std::fs::metadata(path)
            && !meta.is_dir()
        {
            return Err(Error::NotAFolder { path: path.to_path_buf() });
        }
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        let dir = File::open(path).map_err(|e| Error::io(path, e))?;
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: flock on a descriptor we own; no memory is involved.
            let r = unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if r != 0 {
                let e = std::io::Error::last_os_error();
                return Err(if e.kind() == std::io::ErrorKind::WouldBlock {
                    Error::Locked { path: path.to_path_buf() }
                } else {
                    Error::io(path, e)
                });
            }
        }
        Ok(Self { _dir: dir, path: path.to_path_buf() })
    }

    /// The locked folder.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_folder_fails_until_the_first_is_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("out");
        let first = DirLock::acquire(&d).unwrap();
        let e = DirLock::acquire(&d).unwrap_err();
        assert!(matches!(e, Error::Locked { .. }), "{e}");
        assert!(e.to_string().contains("another sparky run"), "{e}");
        drop(first);
        let again = DirLock::acquire(&d).unwrap();
        assert_eq!(again.path(), d);
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0, "no lock file");
        std::fs::write(tmp.path().join("file"), b"x").unwrap();
        assert!(matches!(DirLock::acquire(&tmp.path().join("file")), Err(Error::NotAFolder { .. })));
    }
}
