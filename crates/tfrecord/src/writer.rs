//! Writing TFRecords, and writing files atomically.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::compression::{Compression, Encoder};
use crate::crc::masked_crc32c;
use crate::error::{Error, Position, Result};

/// Size of the write buffer in front of files and encoders.
pub const WRITE_BUFFER: usize = 256 * 1024;

/// Writes records to any [`Write`], buffered.
///
/// ```
/// use sparky_tfrecord::{RecordWriter, SliceReader};
///
/// let mut w = RecordWriter::new(Vec::new());
/// w.write_record(b"one").unwrap();
/// w.write_record(b"two").unwrap();
/// assert_eq!(w.records(), 2);
/// let bytes = w.into_inner().unwrap();
/// assert_eq!(SliceReader::new(&bytes).count(), 2);
/// ```
pub struct RecordWriter<W: Write> {
    inner: BufWriter<W>,
    records: u64,
    bytes: u64,
}

impl<W: Write> RecordWriter<W> {
    /// Writes to `inner` through a buffer.
    pub fn new(inner: W) -> Self {
        Self { inner: BufWriter::with_capacity(WRITE_BUFFER, inner), records: 0, bytes: 0 }
    }

    /// Appends one record: length, masked CRC of the length, payload, masked
    /// CRC of the payload.
    #[inline]
    pub fn write_record(&mut self, payload: &[u8]) -> io::Result<()> {
        let len = (payload.len() as u64).to_le_bytes();
        let mut header = [0u8; crate::HEADER_LEN];
        header[..8].copy_from_slice(&len);
        header[8..].copy_from_slice(&masked_crc32c(&len).to_le_bytes());
        self.inner.write_all(&header)?;
        self.inner.write_all(payload)?;
        self.inner.write_all(&masked_crc32c(payload).to_le_bytes())?;
        self.records += 1;
        self.bytes += (crate::HEADER_LEN + payload.len() + crate::FOOTER_LEN) as u64;
        Ok(())
    }

    /// Records written so far.
    #[must_use]
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Bytes of framed records written so far (before any compression).
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Pushes buffered records to the inner writer and flushes it.
    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    /// Flushes the buffer and returns the inner writer.
    pub fn into_inner(self) -> io::Result<W> {
        self.inner.into_inner().map_err(io::IntoInnerError::into_error)
    }

    /// The inner writer (some bytes may still sit in the buffer).
    pub fn get_ref(&self) -> &W {
        self.inner.get_ref()
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A file that appears at its final path only once it is complete.
///
/// Bytes go to a hidden temporary file in the same folder
/// (`.NAME.PID-N.tmp`). [`commit`](Self::commit) flushes and syncs it,
/// renames it over `path` and syncs the folder. Dropped without a commit (an
/// error, a panic), the temporary file is removed. A killed process leaves
/// at most a `.tmp` file, never a complete-looking partial file.
///
/// ```
/// use std::io::Write;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("out.txt");
/// let mut f = sparky_tfrecord::AtomicFile::create(&path).unwrap();
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
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let name = path
            .file_name()
            .ok_or_else(|| Error::File {
                path: path.clone(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
            })?
            .to_string_lossy()
            .into_owned();
        // Renaming over a device or a named pipe would replace it: refuse.
        if let Ok(meta) = fs::metadata(&path)
            && !meta.is_file()
        {
            return Err(Error::File {
                path,
                source: io::Error::new(io::ErrorKind::InvalidInput, "exists and is not a regular file"),
            });
        }
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = path.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|source| Error::File { path: temp.clone(), source })?;
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

    /// Renames the file into place without syncing it first: another
    /// process never sees a partial file under the final name, but after an
    /// operating-system crash the file may be incomplete. For bulk outputs
    /// whose completion is marked by a separate, synced marker.
    pub fn commit_unsynced(mut self) -> Result<()> {
        let file = self.file.take().expect("present until commit");
        drop(file);
        fs::rename(&self.temp, &self.path).map_err(|source| Error::File { path: self.path.clone(), source })
    }

    /// Syncs the data, renames the file into place and syncs the folder.
    pub fn commit(mut self) -> Result<()> {
        let file = self.file.take().expect("present until commit");
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::File { path, source }
        };
        file.sync_all().map_err(err(&self.temp))?;
        drop(file);
        fs::rename(&self.temp, &self.path).map_err(err(&self.path))?;
        sync_parent(&self.path).map_err(err(&self.path))?;
        Ok(())
    }
}

/// Syncs the folder holding `path`, so that a rename into it is durable.
fn sync_parent(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.as_mut().expect("present until commit").write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.as_mut().expect("present until commit").write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("present until commit").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Flushes files already renamed into place (see
/// [`AtomicFile::commit_unsynced`]) to disk, several at a time, then their
/// folders: one wait for the slowest instead of one per file.
pub fn sync_all(paths: &[PathBuf]) -> Result<()> {
    let sync_one = |p: &Path| {
        File::open(p).and_then(|f| f.sync_all()).map_err(|source| Error::File { path: p.to_path_buf(), source })
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = paths
            .chunks(paths.len().div_ceil(8).max(1))
            .map(|group| s.spawn(move || group.iter().try_for_each(|p| sync_one(p))))
            .collect();
        handles.into_iter().try_for_each(|h| h.join().expect("sync thread panicked"))
    })?;
    let mut dirs: Vec<&Path> = paths.iter().filter_map(|p| p.parent()).collect();
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        sync_parent(&d.join("x")).map_err(|source| Error::File { path: d.to_path_buf(), source })?;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically (see [`AtomicFile`]).
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    // Errors name the file being written, not its temporary name.
    f.write_all(bytes).map_err(|source| Error::File { path: f.path().to_path_buf(), source })?;
    f.commit()
}

/// What a finished [`FileWriter`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSummary {
    /// Records written.
    pub records: u64,
    /// Bytes of framed records, before compression.
    pub record_bytes: u64,
    /// Bytes of the file on disk.
    pub file_bytes: u64,
}

/// A TFRecord file written atomically, optionally compressed: the usual way
/// sparky's binaries write their outputs.
///
/// ```
/// use sparky_tfrecord::{Compression, FileWriter, RecordReader};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("part-r-00000.tfrecord.gz");
/// let mut w = FileWriter::create(&path, Compression::from_path(&path)).unwrap();
/// w.write_record(b"payload").unwrap();
/// let summary = w.finish().unwrap();
/// assert_eq!(summary.records, 1);
///
/// let mut r = RecordReader::open(&path).unwrap();
/// let mut buf = Vec::new();
/// assert!(r.read_record(&mut buf).unwrap());
/// assert_eq!(buf, b"payload");
/// ```
pub struct FileWriter {
    inner: RecordWriter<Encoder<BufWriter<AtomicFile>>>,
    path: PathBuf,
}

impl FileWriter {
    /// Starts the file at `path` with the given compression.
    pub fn create(path: impl AsRef<Path>, compression: Compression) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = AtomicFile::create(&path)?;
        let sink = compression.encoder(BufWriter::with_capacity(WRITE_BUFFER, file));
        Ok(Self { inner: RecordWriter::new(sink), path })
    }

    /// Appends one record.
    #[inline]
    pub fn write_record(&mut self, payload: &[u8]) -> Result<()> {
        self.inner.write_record(payload).map_err(|source| Error::Io {
            at: Position::new(Some(&self.path), self.inner.bytes(), self.inner.records()),
            source,
        })
    }

    /// Records written so far.
    #[must_use]
    pub fn records(&self) -> u64 {
        self.inner.records()
    }

    /// The final path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes, finishes the compressed stream, syncs and renames the file
    /// into place.
    pub fn finish(self) -> Result<FileSummary> {
        let records = self.inner.records();
        let record_bytes = self.inner.bytes();
        let err = |source| Error::File { path: self.path.clone(), source };
        let encoder = self.inner.into_inner().map_err(err)?;
        let buffered = encoder.finish().map_err(err)?;
        let file = buffered.into_inner().map_err(|e| err(e.into_error()))?;
        let file_bytes = file.file.as_ref().expect("present until commit").metadata().map_err(err)?.len();
        file.commit()?;
        Ok(FileSummary { records, record_bytes, file_bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_file_is_invisible_until_commit_and_cleaned_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("part-r-00000.tfrecord");
        {
            let mut f = AtomicFile::create(&path).unwrap();
            f.write_all(b"partial").unwrap();
            assert!(f.temp_path().exists());
            assert!(!f.temp_path().file_name().unwrap().to_string_lossy().starts_with("part-"));
            // dropped without commit
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "temporary file left behind");
        write_atomic(&path, b"v1").unwrap();
        write_atomic(&path, b"v2").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"v2");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn atomic_file_refuses_to_replace_what_is_not_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = AtomicFile::create(dir.path()).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        #[cfg(unix)]
        {
            let e = AtomicFile::create("/dev/null").unwrap_err();
            assert!(e.to_string().contains("/dev/null"), "{e}");
        }
    }

    #[test]
    fn atomic_file_in_missing_folder_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let e = AtomicFile::create(dir.path().join("no/such/x")).unwrap_err();
        assert!(e.to_string().contains("no/such"), "{e}");
    }

    #[test]
    fn file_writer_every_compression() {
        let dir = tempfile::tempdir().unwrap();
        let payloads: Vec<Vec<u8>> = (0..1000u32).map(|i| i.to_string().repeat(5).into_bytes()).collect();
        for c in [Compression::None, Compression::Gzip, Compression::Zlib] {
            let path = dir.path().join(format!("f.tfrecord{}", c.suffix()));
            let mut w = FileWriter::create(&path, c).unwrap();
            for p in &payloads {
                w.write_record(p).unwrap();
            }
            let s = w.finish().unwrap();
            assert_eq!(s.records, 1000);
            assert_eq!(s.file_bytes, fs::metadata(&path).unwrap().len());
            if c == Compression::None {
                assert_eq!(s.file_bytes, s.record_bytes);
            } else {
                assert!(s.file_bytes < s.record_bytes);
            }
            let mut r = crate::RecordReader::open(&path).unwrap();
            let mut buf = Vec::new();
            let mut n = 0;
            while r.read_record(&mut buf).unwrap() {
                assert_eq!(buf, payloads[n]);
                n += 1;
            }
            assert_eq!(n, 1000);
        }
    }
}
