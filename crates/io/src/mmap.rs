//! Read-only file mappings.

use std::fs::File;
use std::path::{Path, PathBuf};

use sparky_memhint::Access;

use crate::error::{Error, Result, kind_name};

/// A regular file mapped read-only into memory: the one file mapping of
/// sparky (TFRecord parts, TSV inputs). Empty files map to an empty slice.
/// As with every memory map, the file must not be truncated by another
/// process while it is mapped.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let p = dir.path().join("x");
/// std::fs::write(&p, b"hello")?;
/// let m = sparky_io::MappedFile::open(&p)?;
/// assert_eq!(m.bytes(), b"hello");
/// m.release(0..5); // a hint: the bytes read back the same
/// assert_eq!(m.bytes(), b"hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MappedFile {
    map: Option<memmap2::Mmap>,
    path: PathBuf,
}

impl MappedFile {
    /// Maps `path` read-only, for sequential reading.
    ///
    /// # Errors
    /// The file cannot be opened, is not a regular file (a folder, a device),
    /// or cannot be mapped.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let meta = file.metadata().map_err(|e| Error::io(&path, e))?;
        if !meta.is_file() {
            return Err(Error::NotAFile { what: kind_name(&meta), path });
        }
        // Mapping an empty file fails on some systems; an empty file has no bytes.
        let map = if meta.len() == 0 {
            None
        } else {
            // SAFETY: the map is read-only; the documented contract is that the
            // file is not modified or truncated while mapped.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
            sparky_memhint::advise(&map, Access::Sequential);
            Some(map)
        };
        Ok(Self { map, path })
    }

    /// The whole file.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// The file's length.
    #[must_use]
    pub fn len(&self) -> usize {
        self.bytes().len()
    }

    /// True for an empty file.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The mapped file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tells the kernel this process is done with bytes `range` for now
    /// ([`sparky_memhint::release`]).
    pub fn release(&self, range: std::ops::Range<usize>) {
        if let Some(m) = &self.map {
            sparky_memhint::release(m, range);
        }
    }

    /// Tells the kernel how the file will be read ([`sparky_memhint::advise`]):
    /// [`Access::Normal`] for blocks read in shuffled order.
    pub fn advise(&self, access: Access) {
        if let Some(m) = &self.map {
            sparky_memhint::advise(m, access);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_and_missing_files_are_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let e = MappedFile::open(tmp.path()).unwrap_err();
        assert!(matches!(e, Error::NotAFile { what: "a folder", .. }), "{e}");
        let missing = tmp.path().join("missing");
        assert_eq!(MappedFile::open(&missing).unwrap_err().path(), missing);
        let empty = tmp.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        let m = MappedFile::open(&empty).unwrap();
        assert!(m.is_empty());
        m.release(0..10);
        m.advise(Access::Normal);
    }
}
