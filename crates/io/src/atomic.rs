//! Files that appear under their final name only when complete.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result, kind_name};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// True for the names [`AtomicFile`] gives its temporary files
/// (`.NAME.PID-N.tmp`): hidden, so that no `part-*` glob or folder listing of
/// data files picks one up, and recognisable, so that a later run can remove
/// what a killed one left.
#[must_use]
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

/// A file written under a hidden temporary name in its final folder, and
/// renamed into place by [`commit`](Self::commit). If it is dropped without
/// being committed (an error, a panic), the temporary file is removed; a
/// killed process leaves at most a hidden `.tmp` file, never a
/// complete-looking partial file. Every error names the final path.
///
/// ```
/// use std::io::Write;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("out.txt");
/// let mut f = sparky_io::AtomicFile::create(&path).unwrap();
/// f.write_all(b"done").unwrap();
/// assert!(!path.exists());
/// f.commit().unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"done");
/// ```
#[derive(Debug)]
pub struct AtomicFile {
    file: Option<File>,
    temp: PathBuf,
    path: PathBuf,
}

impl AtomicFile {
    /// Starts writing what will become `path`.
    ///
    /// # Errors
    /// `path` has no file name, exists as something other than a regular
    /// file (renaming over a device or a folder would replace it), or the
    /// temporary file cannot be created.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            return Err(Error::io(path, io::Error::new(io::ErrorKind::InvalidInput, "not a file name")));
        };
        if let Ok(meta) = fs::symlink_metadata(&path)
            && !meta.is_file()
        {
            return Err(Error::NotAFile { path, what: kind_name(&meta) });
        }
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = path.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()));
        let file = fs::OpenOptions::new().write(true).create_new(true).open(&temp).map_err(|e| Error::io(&path, e))?;
        Ok(Self { file: Some(file), temp, path })
    }

    /// The final path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary path being written.
    #[must_use]
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    fn take(&mut self) -> File {
        // `file` is `Some` from `create` until a commit consumes `self`.
        self.file.take().unwrap_or_else(|| unreachable!("an AtomicFile is committed once"))
    }

    fn file(&mut self) -> &mut File {
        self.file.as_mut().unwrap_or_else(|| unreachable!("an AtomicFile is committed once"))
    }

    /// Renames the file into place without syncing it first: another
    /// process never sees a partial file under the final name, but after an
    /// operating-system crash the file may be incomplete. For bulk outputs
    /// that [`sync_all`] flushes together before a synced marker is written.
    /// Returns the final path.
    ///
    /// # Errors
    /// The rename fails.
    pub fn commit_unsynced(mut self) -> Result<PathBuf> {
        drop(self.take());
        fs::rename(&self.temp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        Ok(std::mem::take(&mut self.path))
    }

    /// Syncs the data, renames the file into place and syncs the folder.
    /// Returns the final path.
    ///
    /// # Errors
    /// The sync or the rename fails.
    pub fn commit(mut self) -> Result<PathBuf> {
        let file = self.take();
        let result = file.sync_all().map_err(|e| Error::io(&self.path, e));
        drop(file);
        if let Err(e) = result {
            let _ = fs::remove_file(&self.temp);
            return Err(e);
        }
        fs::rename(&self.temp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        sync_parent(&self.path)?;
        Ok(std::mem::take(&mut self.path))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file().write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file().flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Syncs the folder holding `path`, so that a rename into it is durable.
fn sync_parent(path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    sync_dir(parent)
}

/// Syncs a folder (its entries: renames, creations), so that they survive an
/// operating-system crash.
///
/// # Errors
/// The folder cannot be opened or synced.
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir).and_then(|f| f.sync_all()).map_err(|e| Error::io(dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Flushes files already renamed into place (see
/// [`AtomicFile::commit_unsynced`]) to disk, several at a time, then their
/// folders: one wait for the slowest instead of one per file.
///
/// # Errors
/// A file or folder cannot be synced.
pub fn sync_all(paths: &[PathBuf]) -> Result<()> {
    let sync_one = |p: &Path| File::open(p).and_then(|f| f.sync_all()).map_err(|e| Error::io(p, e));
    std::thread::scope(|s| {
        let handles: Vec<_> = paths
            .chunks(paths.len().div_ceil(8).max(1))
            .map(|group| s.spawn(move || group.iter().try_for_each(|p| sync_one(p))))
            .collect();
        handles.into_iter().try_for_each(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    })?;
    let mut dirs: Vec<&Path> = paths.iter().filter_map(|p| p.parent()).collect();
    dirs.sort();
    dirs.dedup();
    dirs.into_iter().try_for_each(|d| sync_dir(if d.as_os_str().is_empty() { Path::new(".") } else { d }))
}

/// Writes `bytes` to `path` atomically and durably (see [`AtomicFile`]).
///
/// # Errors
/// As [`AtomicFile::create`] and [`AtomicFile::commit`]; the error names
/// `path`.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes).map_err(|e| Error::io(f.path(), e))?;
    f.commit().map(drop)
}

/// Writes `bytes` to `path` atomically, without syncing (see
/// [`AtomicFile::commit_unsynced`]).
///
/// # Errors
/// As [`write_atomic`].
pub fn write_atomic_unsynced(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes).map_err(|e| Error::io(f.path(), e))?;
    f.commit_unsynced().map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_files_leave_nothing_and_errors_name_the_final_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        {
            let mut f = AtomicFile::create(&path).unwrap();
            f.write_all(b"half").unwrap();
            assert!(is_temp_name(&f.temp_path().file_name().unwrap().to_string_lossy()));
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);

        // Over a folder: refused, naming the path.
        fs::create_dir(dir.path().join("sub")).unwrap();
        let e = AtomicFile::create(dir.path().join("sub")).unwrap_err();
        assert!(matches!(e, Error::NotAFile { what: "a folder", .. }), "{e}");
        // In a folder that does not exist: the final path is named.
        let missing = dir.path().join("nope").join("x.json");
        let e = write_atomic(&missing, b"x").unwrap_err();
        assert_eq!(e.path(), missing);
        assert!(!e.to_string().contains(".x.json."), "{e}");

        write_atomic(&path, b"one").unwrap();
        write_atomic_unsynced(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        sync_all(std::slice::from_ref(&path)).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
