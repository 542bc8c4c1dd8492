//! Writing TFRecords.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use sparky_io::AtomicFile;

use crate::compression::{Compression, Encoder};
use crate::crc::masked_crc32c;
use crate::error::{Error, Position, Result};

/// Size of the write buffer in front of files and encoders.
pub const WRITE_BUFFER: usize = 256 * 1024;

/// The 12-byte header of a record of `len` payload bytes: the length and
/// its masked CRC32C.
#[inline]
#[must_use]
pub fn record_header(len: u64) -> [u8; crate::HEADER_LEN] {
    let len = len.to_le_bytes();
    let mut header = [0u8; crate::HEADER_LEN];
    header[..8].copy_from_slice(&len);
    header[8..].copy_from_slice(&masked_crc32c(&len).to_le_bytes());
    header
}

/// Appends one framed record to `out`, its payload written in place by
/// `payload` (an encoder writing straight into the output buffer: no copy).
///
/// ```
/// let mut out = Vec::new();
/// sparky_tfrecord::append_record(&mut out, |b| b.extend_from_slice(b"abc"));
/// let records: Vec<&[u8]> = sparky_tfrecord::SliceReader::new(&out).map(Result::unwrap).collect();
/// assert_eq!(records, [&b"abc"[..]]);
/// ```
#[inline]
pub fn append_record(out: &mut Vec<u8>, payload: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0u8; crate::HEADER_LEN]);
    payload(out);
    let body = start + crate::HEADER_LEN;
    let crc = masked_crc32c(&out[body..]);
    let header = record_header((out.len() - body) as u64);
    out[start..body].copy_from_slice(&header);
    out.extend_from_slice(&crc.to_le_bytes());
}

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
        self.inner.write_all(&record_header(payload.len() as u64))?;
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
        let file = AtomicFile::create(&path).map_err(Error::Output)?;
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
        let file_bytes = std::fs::metadata(file.temp_path()).map_err(err)?.len();
        file.commit().map_err(Error::Output)?;
        Ok(FileSummary { records, record_bytes, file_bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!(s.file_bytes, std::fs::metadata(&path).unwrap().len());
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
