//! The commit protocol of an output folder.

use std::path::{Path, PathBuf};

use crate::atomic::{AtomicFile, is_temp_name, sync_dir, write_atomic};
use crate::error::{Error, Result};
use crate::lock::DirLock;

/// The marker written last into a complete output folder (Hadoop's name).
pub const SUCCESS_FILE: &str = "_SUCCESS";

type Owned = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// An output folder being written by one run, under the commit protocol:
///
/// 1. [`open`](Self::open) locks the folder ([`DirLock`]: a concurrent run on
///    the same folder fails at once), removes the temporary files a killed
///    run left (hidden `.*.tmp` names, see [`crate::is_temp_name`]), refuses a
///    folder that holds anything else unless `overwrite` is given, and then
///    removes the old `_SUCCESS` first, so that from that moment the folder
///    no longer claims to be complete.
/// 2. The run writes its files with [`create`](Self::create) (or any
///    [`AtomicFile`]) and reports each committed one with
///    [`committed`](Self::committed).
/// 3. [`commit`](Self::commit) removes the files of an earlier run that this
///    run did not rewrite (those the `owned` predicate recognises), then
///    writes `_SUCCESS`, synced.
///
/// Dropped without a commit (an error, an interrupt), it removes every file
/// of the folder the `owned` predicate recognises, and this run's committed
/// files: a failed run leaves nothing under a final name. (Without
/// `overwrite` the folder was empty; with it, the user gave its contents up.)
pub struct OutputDir {
    lock: DirLock,
    owned: Owned,
    committed: Vec<PathBuf>,
    done: bool,
}

impl std::fmt::Debug for OutputDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputDir").field("path", &self.path()).field("committed", &self.committed).finish()
    }
}

impl OutputDir {
    /// Opens (creating it if needed) and locks `path` for a run whose outputs
    /// are the files whose names `owned` accepts (and `_SUCCESS`).
    ///
    /// # Errors
    /// The folder cannot be created or read, is locked by another run, or
    /// holds files and `overwrite` is false.
    pub fn open(path: &Path, overwrite: bool, owned: impl Fn(&str) -> bool + Send + Sync + 'static) -> Result<Self> {
        let lock = DirLock::acquire(path)?;
        remove_stale_temps(path)?;
        let mut any = false;
        for entry in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
            let entry = entry.map_err(|e| Error::io(path, e))?;
            if !is_temp_name(&entry.file_name().to_string_lossy()) {
                any = true;
                break;
            }
        }
        if any {
            if !overwrite {
                return Err(Error::OutputExists { path: path.to_path_buf() });
            }
            let success = path.join(SUCCESS_FILE);
            match std::fs::remove_file(&success) {
                Ok(()) => sync_dir(path)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(success, e)),
            }
        }
        Ok(Self { lock, owned: Box::new(owned), committed: Vec::new(), done: false })
    }

    /// The folder.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.lock.path()
    }

    /// The path of `name` in the folder.
    #[must_use]
    pub fn join(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    /// Starts writing `name` atomically.
    ///
    /// # Errors
    /// As [`AtomicFile::create`].
    pub fn create(&self, name: &str) -> Result<AtomicFile> {
        AtomicFile::create(self.join(name))
    }

    /// Writes a small file atomically and durably, and records it.
    ///
    /// # Errors
    /// As [`write_atomic`].
    pub fn write(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.join(name);
        write_atomic(&path, bytes)?;
        self.committed.push(path);
        Ok(())
    }

    /// Records a file this run committed under its final name.
    pub fn committed(&mut self, path: PathBuf) {
        self.committed.push(path);
    }

    /// The files this run committed, in order.
    #[must_use]
    pub fn committed_files(&self) -> &[PathBuf] {
        &self.committed
    }

    /// Completes the run: removes the outputs of an earlier run that this run
    /// did not rewrite, then writes `_SUCCESS` (synced).
    ///
    /// # Errors
    /// A stale output cannot be removed, or the marker cannot be written; the
    /// run's outputs are then removed as on any failure.
    pub fn commit(mut self) -> Result<()> {
        let path = self.path().to_path_buf();
        for entry in std::fs::read_dir(&path).map_err(|e| Error::io(&path, e))? {
            let entry = entry.map_err(|e| Error::io(&path, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let p = entry.path();
            if (self.owned)(&name) && !self.committed.contains(&p) {
                std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            }
        }
        write_atomic(path.join(SUCCESS_FILE), b"")?;
        self.done = true;
        Ok(())
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let path = self.path().to_path_buf();
        for p in &self.committed {
            let _ = std::fs::remove_file(p);
        }
        if let Ok(entries) = std::fs::read_dir(&path) {
            for entry in entries.filter_map(std::result::Result::ok) {
                let name = entry.file_name().to_string_lossy().into_owned();
                if (self.owned)(&name) || is_temp_name(&name) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }
}

/// Removes what killed runs left in a folder this process has locked: hidden
/// temporary files and folders (see [`crate::is_temp_name`]).
///
/// # Errors
/// The folder cannot be read, or an entry cannot be removed.
pub(crate) fn remove_stale_temps(path: &Path) -> Result<()> {
    for entry in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
        let entry = entry.map_err(|e| Error::io(path, e))?;
        if is_temp_name(&entry.file_name().to_string_lossy()) {
            let p = entry.path();
            let r = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            r.map_err(|e| Error::io(&p, e))?;
        }
    }
    Ok(())
}

impl DirLock {
    /// Removes the temporary files and folders killed runs left in the locked
    /// folder (hidden `.*.tmp` names): with the lock held, none can belong to
    /// a live run.
    ///
    /// # Errors
    /// The folder cannot be read, or an entry cannot be removed.
    pub fn remove_stale_temps(&self) -> Result<()> {
        remove_stale_temps(self.path())
    }

    /// The same in `sub`, a folder inside the locked folder (a job folder's
    /// `export/Servo/`).
    ///
    /// # Errors
    /// As [`remove_stale_temps`](Self::remove_stale_temps); `sub` outside the
    /// locked folder is refused.
    pub fn remove_stale_temps_in(&self, sub: &Path) -> Result<()> {
        if !sub.starts_with(self.path()) {
            return Err(Error::io(
                sub,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "not inside the locked folder"),
            ));
        }
        remove_stale_temps(sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    fn part(n: &str) -> bool {
        n.starts_with("part-")
    }

    #[test]
    fn commit_protocol() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        // A complete first run of three parts.
        let mut d = OutputDir::open(&out, false, part).unwrap();
        for i in 0..3 {
            let mut f = d.create(&format!("part-{i}")).unwrap();
            f.write_all(b"x").unwrap();
            d.committed(f.commit_unsynced().unwrap());
        }
        d.commit().unwrap();
        assert_eq!(names(&out), ["_SUCCESS", "part-0", "part-1", "part-2"]);

        // Refused without overwrite; a killed run's temp file is cleaned.
        std::fs::write(out.join(".part-9.123-0.tmp"), b"half").unwrap();
        assert!(matches!(OutputDir::open(&out, false, part), Err(Error::OutputExists { .. })));
        assert!(!out.join(".part-9.123-0.tmp").exists());

        // A second run of one part replaces the three.
        let mut d = OutputDir::open(&out, true, part).unwrap();
        assert!(!out.join(SUCCESS_FILE).exists(), "withdrawn at open");
        d.write("part-0", b"y").unwrap();
        d.commit().unwrap();
        assert_eq!(names(&out), ["_SUCCESS", "part-0"]);

        // A failed run leaves neither parts nor marker; other files stay.
        std::fs::write(out.join("notes.txt"), b"mine").unwrap();
        let mut d = OutputDir::open(&out, true, part).unwrap();
        d.write("part-5", b"z").unwrap();
        let _temp = d.create("part-6").unwrap();
        drop(_temp);
        drop(d);
        assert_eq!(names(&out), ["notes.txt"]);
    }

    #[test]
    fn concurrent_runs_on_one_folder_fail_clearly() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let first = OutputDir::open(&out, false, part).unwrap();
        let e = OutputDir::open(&out, true, part).unwrap_err();
        assert!(matches!(e, Error::Locked { .. }), "{e}");
        first.commit().unwrap();
        assert_eq!(names(&out), ["_SUCCESS"]);
    }
}
