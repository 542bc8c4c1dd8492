//! Reading TFRecords: from any stream, or from memory (a memory-mapped file)
//! with no copy.

use std::fs::File;
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};

use crate::compression::Compression;
use crate::crc::{mask, masked_crc32c};
use crate::error::{Error, Position, Result, UNKNOWN_RECORD};
use crate::{FOOTER_LEN, HEADER_LEN};

/// The default [`ReaderOptions::max_record_len`]: 256 MiB.
pub const DEFAULT_MAX_RECORD_LEN: u64 = 256 << 20;

/// How a reader checks and recovers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderOptions {
    /// Verify both checksums of every record (default: true). Turning this
    /// off only makes sense for data that was verified before.
    pub verify_checksums: bool,
    /// The largest payload accepted. A larger length field is an error,
    /// raised before anything is allocated for it (default:
    /// [`DEFAULT_MAX_RECORD_LEN`]).
    pub max_record_len: u64,
    /// Skip a record whose payload fails its checksum, and count it (see
    /// `skipped()`), instead of failing. The framing is intact in that case
    /// (the length field passed its own checksum), so reading goes on at the
    /// next record. Default: false.
    pub skip_corrupt_payloads: bool,
    /// After a length field that fails its checksum, scan forward byte by byte
    /// for the next position where a whole record verifies (length checksum,
    /// then payload checksum) and go on from there, counting the bytes passed
    /// over. Only memory readers ([`SliceReader`]) can do this; a stream reader
    /// ignores it and stops with [`Error::LengthChecksum`]. Default: false.
    pub resync_after_bad_length: bool,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        Self {
            verify_checksums: true,
            max_record_len: DEFAULT_MAX_RECORD_LEN,
            skip_corrupt_payloads: false,
            resync_after_bad_length: false,
        }
    }
}

/// Reads a header's length and stored length checksum.
#[inline]
fn parse_header(header: &[u8; HEADER_LEN]) -> (u64, u32) {
    let mut len = [0u8; 8];
    len.copy_from_slice(&header[..8]);
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&header[8..]);
    (u64::from_le_bytes(len), u32::from_le_bytes(crc))
}

/// Streams records out of any [`BufRead`]: a file, a pipe, a decompressor.
///
/// The caller owns the record buffer; the reader fills it in place, so a loop
/// over a file allocates nothing once the buffer has grown to the largest
/// record:
///
/// ```
/// use sparky_tfrecord::{RecordReader, RecordWriter};
///
/// let mut w = RecordWriter::new(Vec::new());
/// w.write_record(b"hello").unwrap();
/// w.write_record(b"").unwrap();
/// let bytes = w.into_inner().unwrap();
///
/// let mut r = RecordReader::new(bytes.as_slice());
/// let mut buf = Vec::new();
/// let mut seen = Vec::new();
/// while r.read_record(&mut buf).unwrap() {
///     seen.push(buf.clone());
/// }
/// assert_eq!(seen, vec![b"hello".to_vec(), Vec::new()]);
/// ```
///
/// After an error the reader is finished: further calls return `Ok(false)`.
/// With [`ReaderOptions::skip_corrupt_payloads`] a payload checksum failure
/// is skipped and counted instead.
pub struct RecordReader<R> {
    inner: R,
    opts: ReaderOptions,
    path: Option<PathBuf>,
    offset: u64,
    records: u64,
    skipped: u64,
    done: bool,
    /// The length of the record whose payload just failed its checksum.
    corrupt: Option<u64>,
}

impl<R: Read> RecordReader<io::BufReader<R>> {
    /// Reads from any [`Read`], buffered.
    pub fn new(inner: R) -> Self {
        Self::from_buf_read(io::BufReader::with_capacity(crate::compression::READ_BUFFER, inner))
    }
}

impl RecordReader<Box<dyn BufRead + Send>> {
    /// Opens a file, decompressing as its name says (`.gz`, `.zlib`).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::open_with(path, Compression::from_path(path))
    }

    /// Opens a file with the given compression.
    pub fn open_with(path: impl AsRef<Path>, compression: Compression) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| Error::File { path: path.to_path_buf(), source })?;
        Ok(Self::from_buf_read(compression.decoder(file)).with_path(path))
    }
}

impl<R: BufRead> RecordReader<R> {
    /// Reads from a buffered reader as it is.
    pub fn from_buf_read(inner: R) -> Self {
        Self {
            inner,
            opts: ReaderOptions::default(),
            path: None,
            offset: 0,
            records: 0,
            skipped: 0,
            done: false,
            corrupt: None,
        }
    }

    /// Sets the options.
    #[must_use]
    pub fn with_options(mut self, opts: ReaderOptions) -> Self {
        self.opts = opts;
        self
    }

    /// Names the file being read, for error messages.
    #[must_use]
    pub fn with_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Byte offset of the next record (in the decompressed stream).
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Records returned so far.
    #[must_use]
    pub fn records_read(&self) -> u64 {
        self.records - self.skipped
    }

    /// Records skipped because their payload failed its checksum.
    #[must_use]
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The path given with [`with_path`](Self::with_path), if any.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn at(&self) -> Position {
        Position::new(self.path.as_deref(), self.offset, self.records)
    }

    fn fail<T>(&mut self, e: Error) -> Result<T> {
        self.done = true;
        Err(e)
    }

    /// Copies up to `out.len()` bytes; returns how many arrived before the end.
    fn read_up_to(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut got = 0;
        while got < out.len() {
            let avail = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                break;
            }
            let n = avail.len().min(out.len() - got);
            out[got..got + n].copy_from_slice(&avail[..n]);
            self.inner.consume(n);
            got += n;
        }
        Ok(got)
    }

    /// Appends up to `len` bytes to `buf`, returning the CRC32C of what was
    /// appended and how many bytes arrived.
    fn read_payload(&mut self, buf: &mut Vec<u8>, len: usize) -> io::Result<(u32, usize)> {
        let mut crc = 0u32;
        let mut got = 0;
        while got < len {
            let avail = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                break;
            }
            let n = avail.len().min(len - got);
            let chunk = &avail[..n];
            if self.opts.verify_checksums {
                // Checksum while the bytes are hot in cache.
                crc = crc32c::crc32c_append(crc, chunk);
            }
            buf.extend_from_slice(chunk);
            self.inner.consume(n);
            got += n;
        }
        Ok((crc, got))
    }

    /// Reads the next record into `buf` (cleared first). Returns `Ok(false)`
    /// at the clean end of the stream.
    pub fn read_record(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        loop {
            buf.clear();
            if self.done {
                return Ok(false);
            }
            let mut header = [0u8; HEADER_LEN];
            let got = match self.read_up_to(&mut header) {
                Ok(n) => n,
                Err(source) => {
                    let at = self.at();
                    return self.fail(Error::Io { at, source });
                }
            };
            if got == 0 {
                self.done = true;
                return Ok(false);
            }
            if got < HEADER_LEN {
                let at = self.at();
                return self.fail(Error::TruncatedHeader { at, got });
            }
            let (len, stored) = parse_header(&header);
            if self.opts.verify_checksums {
                let computed = masked_crc32c(&header[..8]);
                if computed != stored {
                    let at = self.at();
                    return self.fail(Error::LengthChecksum { at, len, stored, computed });
                }
            }
            if len > self.opts.max_record_len {
                let at = self.at();
                return self.fail(Error::RecordTooLarge { at, len, limit: self.opts.max_record_len });
            }
            let n = len as usize;
            buf.reserve(n);
            let (crc, got) = match self.read_payload(buf, n) {
                Ok(x) => x,
                Err(source) => {
                    let at = self.at();
                    return self.fail(Error::Io { at, source });
                }
            };
            let mut footer = [0u8; FOOTER_LEN];
            let got_footer = if got == n {
                match self.read_up_to(&mut footer) {
                    Ok(k) => k,
                    Err(source) => {
                        let at = self.at();
                        return self.fail(Error::Io { at, source });
                    }
                }
            } else {
                0
            };
            if got < n || got_footer < FOOTER_LEN {
                let at = self.at();
                return self.fail(Error::TruncatedPayload { at, len, got: (got + got_footer) as u64 });
            }
            let record_start = self.offset;
            self.offset += (HEADER_LEN + n + FOOTER_LEN) as u64;
            self.records += 1;
            if self.opts.verify_checksums {
                let stored = u32::from_le_bytes(footer);
                let computed = mask(crc);
                if computed != stored {
                    if self.opts.skip_corrupt_payloads {
                        self.skipped += 1;
                        continue;
                    }
                    // Not returned: counted neither as read nor passed, as
                    // SliceReader does (the offset stays at the record).
                    self.offset = record_start;
                    self.records -= 1;
                    let at = self.at();
                    self.corrupt = Some(len);
                    return self.fail(Error::PayloadChecksum { at, len, stored, computed });
                }
            }
            return Ok(true);
        }
    }

    /// After [`Error::PayloadChecksum`] (the framing was intact: the length
    /// passed its own checksum), steps over the damaged record, counting it as
    /// passed, so that reading goes on at the next one. Returns false, and
    /// changes nothing, after any other outcome. For callers that report each
    /// damaged record with its position rather than skip it silently
    /// ([`ReaderOptions::skip_corrupt_payloads`]).
    pub fn step_over_corrupt_payload(&mut self) -> bool {
        let Some(len) = self.corrupt.take() else { return false };
        self.offset += HEADER_LEN as u64 + len + FOOTER_LEN as u64;
        self.records += 1;
        self.done = false;
        true
    }

    /// The inner reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

/// Iterates over the records of a byte slice (for example a memory-mapped
/// file), yielding borrowed payloads: no copy, no allocation.
///
/// ```
/// use sparky_tfrecord::{RecordWriter, SliceReader};
///
/// let mut w = RecordWriter::new(Vec::new());
/// w.write_record(b"abc").unwrap();
/// let bytes = w.into_inner().unwrap();
/// let records: Vec<&[u8]> = SliceReader::new(&bytes).collect::<Result<_, _>>().unwrap();
/// assert_eq!(records, vec![&b"abc"[..]]);
/// ```
///
/// After an error the iterator ends (yields `None`).
#[derive(Debug, Clone)]
pub struct SliceReader<'a> {
    data: &'a [u8],
    pos: usize,
    opts: ReaderOptions,
    path: Option<&'a Path>,
    records: u64,
    skipped: u64,
    resynced_bytes: u64,
    done: bool,
    base: u64,
    records_known: bool,
    /// The length of the record whose payload just failed its checksum.
    corrupt: Option<u64>,
}

impl<'a> SliceReader<'a> {
    /// Reads records from `data`.
    #[must_use]
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            opts: ReaderOptions::default(),
            path: None,
            records: 0,
            skipped: 0,
            resynced_bytes: 0,
            done: false,
            base: 0,
            records_known: true,
            corrupt: None,
        }
    }

    /// Like [`with_start`](Self::with_start) when the number of records
    /// before `offset` is not known: errors then name the byte offset only.
    #[must_use]
    pub fn with_start_unnumbered(mut self, offset: u64) -> Self {
        self.base = offset;
        self.records_known = false;
        self
    }

    /// Declares that `data` starts at byte `offset` of its file, after
    /// `records` records, so that error positions name the file's offsets
    /// (for readers of one slice of a larger file).
    #[must_use]
    pub fn with_start(mut self, offset: u64, records: u64) -> Self {
        self.base = offset;
        self.records = records;
        self
    }

    /// Sets the options.
    #[must_use]
    pub fn with_options(mut self, opts: ReaderOptions) -> Self {
        self.opts = opts;
        self
    }

    /// Names the file being read, for error messages.
    #[must_use]
    pub fn with_path(mut self, path: &'a Path) -> Self {
        self.path = Some(path);
        self
    }

    /// Byte offset of the next record (counted from the file's start when
    /// [`with_start`](Self::with_start) was given).
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Records skipped because their payload failed its checksum.
    #[must_use]
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Records passed so far (returned or skipped), counted from the
    /// `records` given to [`with_start`](Self::with_start).
    #[must_use]
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Bytes passed over while resynchronising after bad length fields.
    #[must_use]
    pub fn resynced_bytes(&self) -> u64 {
        self.resynced_bytes
    }

    fn at(&self, offset: usize) -> Position {
        let record = if self.records_known { self.records } else { UNKNOWN_RECORD };
        Position::new(self.path, self.base + offset as u64, record)
    }

    /// Checks one record at `pos` without side effects: `Ok((payload, end))`
    /// or the error found.
    #[inline]
    fn check_at(&self, pos: usize) -> std::result::Result<(&'a [u8], usize), Error> {
        let data = self.data;
        let rest = data.len() - pos;
        if rest < HEADER_LEN {
            return Err(Error::TruncatedHeader { at: self.at(pos), got: rest });
        }
        let header: &[u8; HEADER_LEN] = data[pos..pos + HEADER_LEN].try_into().expect("12 bytes");
        let (len, stored) = parse_header(header);
        if self.opts.verify_checksums {
            let computed = masked_crc32c(&header[..8]);
            if computed != stored {
                return Err(Error::LengthChecksum { at: self.at(pos), len, stored, computed });
            }
        }
        if len > self.opts.max_record_len {
            return Err(Error::RecordTooLarge { at: self.at(pos), len, limit: self.opts.max_record_len });
        }
        let body = rest - HEADER_LEN;
        if len > body as u64 || body - (len as usize) < FOOTER_LEN {
            return Err(Error::TruncatedPayload { at: self.at(pos), len, got: body as u64 });
        }
        let n = len as usize;
        let start = pos + HEADER_LEN;
        let payload = &data[start..start + n];
        let end = start + n + FOOTER_LEN;
        if self.opts.verify_checksums {
            let stored = u32::from_le_bytes(data[start + n..end].try_into().expect("4 bytes"));
            let computed = masked_crc32c(payload);
            if computed != stored {
                return Err(Error::PayloadChecksum { at: self.at(pos), len, stored, computed });
            }
        }
        Ok((payload, end))
    }

    /// Finds the next offset after `from` where a whole record verifies.
    fn resync(&self, from: usize) -> Option<usize> {
        (from + 1..self.data.len().saturating_sub(HEADER_LEN + FOOTER_LEN - 1)).find(|&p| self.check_at(p).is_ok())
    }

    /// The next record, or `None` at the end.
    pub fn next_record(&mut self) -> Option<Result<&'a [u8]>> {
        loop {
            if self.done || self.pos == self.data.len() {
                self.done = true;
                return None;
            }
            match self.check_at(self.pos) {
                Ok((payload, end)) => {
                    self.pos = end;
                    self.records += 1;
                    return Some(Ok(payload));
                }
                Err(Error::PayloadChecksum { len, .. }) if self.opts.skip_corrupt_payloads => {
                    self.pos += HEADER_LEN + len as usize + FOOTER_LEN;
                    self.records += 1;
                    self.skipped += 1;
                }
                Err(Error::LengthChecksum { .. })
                    if self.opts.resync_after_bad_length && self.opts.verify_checksums =>
                {
                    match self.resync(self.pos) {
                        Some(p) => {
                            self.resynced_bytes += (p - self.pos) as u64;
                            self.pos = p;
                        }
                        None => {
                            self.resynced_bytes += (self.data.len() - self.pos) as u64;
                            self.done = true;
                            return None;
                        }
                    }
                }
                Err(e) => {
                    self.done = true;
                    if let Error::PayloadChecksum { len, .. } = e {
                        self.corrupt = Some(len);
                    }
                    return Some(Err(e));
                }
            }
        }
    }

    /// After [`Error::PayloadChecksum`] (the framing was intact), steps over
    /// the damaged record, counting it as passed, so that reading goes on at
    /// the next one. Returns false, and changes nothing, after any other
    /// outcome. See [`RecordReader::step_over_corrupt_payload`].
    pub fn step_over_corrupt_payload(&mut self) -> bool {
        let Some(len) = self.corrupt.take() else { return false };
        self.pos += HEADER_LEN + len as usize + FOOTER_LEN;
        self.records += 1;
        self.done = false;
        true
    }
}

impl<'a> Iterator for SliceReader<'a> {
    type Item = Result<&'a [u8]>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.next_record()
    }
}

/// The first offset at or after `from` where a whole record starts and
/// verifies (its length checksum, then its payload checksum), or `None`.
/// Offset 0 is always a record start. A reader can thus start anywhere in a
/// file: a false match needs two 32-bit checksums to agree by chance.
#[must_use]
pub fn next_record_start(data: &[u8], from: usize, max_record_len: u64) -> Option<usize> {
    if from == 0 {
        return (!data.is_empty()).then_some(0);
    }
    let probe = SliceReader::new(data).with_options(ReaderOptions {
        verify_checksums: true,
        max_record_len,
        ..ReaderOptions::default()
    });
    (from..data.len().saturating_sub(HEADER_LEN + FOOTER_LEN - 1)).find(|&p| probe.check_at(p).is_ok())
}

/// Splits the records of `data` into runs of `per_block` records, hopping
/// from header to header (checking each length field against its checksum,
/// not the payloads). Returns `(byte range, index of its first record)` for
/// each run, so that threads can read the runs independently with
/// [`SliceReader::with_start`].
///
/// # Errors
/// Damaged framing, as [`SliceReader`] reports it.
pub fn record_blocks(
    data: &[u8],
    per_block: u64,
    path: Option<&Path>,
    opts: ReaderOptions,
) -> Result<Vec<(std::ops::Range<usize>, u64)>> {
    record_blocks_from(data, (0, 0), per_block, usize::MAX, path, opts)
}

/// [`record_blocks`] in steps, for a reader that scores a window of blocks
/// at a time and releases its pages (a walk over the whole file first would
/// make it all resident, or fault it in twice). Walks from byte `from.0`,
/// where record `from.1` starts, and stops after `max_blocks` blocks. A
/// result of fewer blocks means the end of `data`; otherwise the next call
/// starts at the last block's end, record `last.1 + per_block`.
///
/// # Errors
/// As [`record_blocks`], for the framing walked.
pub fn record_blocks_from(
    data: &[u8],
    from: (usize, u64),
    per_block: u64,
    max_blocks: usize,
    path: Option<&Path>,
    opts: ReaderOptions,
) -> Result<Vec<(std::ops::Range<usize>, u64)>> {
    let per_block = per_block.max(1);
    let mut out = Vec::new();
    let (mut pos, mut n) = from;
    let (mut start, mut first) = from;
    while pos < data.len() && out.len() < max_blocks {
        let rest = data.len() - pos;
        let ok = rest >= HEADER_LEN && {
            let header: &[u8; HEADER_LEN] = data[pos..pos + HEADER_LEN].try_into().expect("12 bytes");
            let (len, stored) = parse_header(header);
            let fits = len <= opts.max_record_len
                && len <= (rest - HEADER_LEN) as u64
                && rest - HEADER_LEN - len as usize >= FOOTER_LEN;
            if fits && masked_crc32c(&header[..8]) == stored {
                pos += HEADER_LEN + len as usize + FOOTER_LEN;
                true
            } else {
                false
            }
        };
        if !ok {
            // Let the reader describe the fault with its position (without
            // resynchronising, which would pass over it).
            let mut r = SliceReader::new(&data[pos..])
                .with_options(ReaderOptions { verify_checksums: true, resync_after_bad_length: false, ..opts })
                .with_start(pos as u64, n);
            if let Some(p) = path {
                r = r.with_path(p);
            }
            match r.next() {
                Some(Err(e)) => return Err(e),
                _ => unreachable!("a header that fails these checks is an error"),
            }
        }
        n += 1;
        if n - first == per_block {
            out.push((start..pos, first));
            start = pos;
            first = n;
        }
    }
    if pos > start && out.len() < max_blocks {
        out.push((start..pos, first));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RecordWriter;
    use proptest::prelude::*;

    fn encode(records: &[Vec<u8>]) -> Vec<u8> {
        let mut w = RecordWriter::new(Vec::new());
        for r in records {
            w.write_record(r).unwrap();
        }
        w.into_inner().unwrap()
    }

    fn stream_all(bytes: &[u8], opts: ReaderOptions) -> (Vec<Vec<u8>>, Option<Error>, u64) {
        let mut r = RecordReader::new(bytes).with_options(opts);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            match r.read_record(&mut buf) {
                Ok(true) => out.push(buf.clone()),
                Ok(false) => return (out, None, r.skipped()),
                Err(e) => {
                    // Finished after an error.
                    assert!(!r.read_record(&mut buf).unwrap());
                    return (out, Some(e), r.skipped());
                }
            }
        }
    }

    fn slice_all(bytes: &[u8], opts: ReaderOptions) -> (Vec<Vec<u8>>, Option<Error>, u64) {
        let mut r = SliceReader::new(bytes).with_options(opts);
        let mut out = Vec::new();
        let mut err = None;
        for rec in r.by_ref() {
            match rec {
                Ok(p) => out.push(p.to_vec()),
                Err(e) => err = Some(e),
            }
        }
        assert!(r.next().is_none());
        (out, err, r.skipped())
    }

    #[test]
    fn layout_is_tensorflows() {
        let bytes = encode(&[b"ab".to_vec()]);
        assert_eq!(bytes.len(), 12 + 2 + 4);
        assert_eq!(&bytes[..8], &2u64.to_le_bytes());
        assert_eq!(&bytes[8..12], &masked_crc32c(&2u64.to_le_bytes()).to_le_bytes());
        assert_eq!(&bytes[12..14], b"ab");
        assert_eq!(&bytes[14..], &masked_crc32c(b"ab").to_le_bytes());
    }

    #[test]
    fn truncation_at_every_byte_is_reported() {
        let records = vec![b"first".to_vec(), vec![7u8; 300], Vec::new()];
        let bytes = encode(&records);
        let boundaries = [0usize, 21, 21 + 316, bytes.len()];
        for cut in 0..bytes.len() {
            for (out, err, _) in [
                stream_all(&bytes[..cut], ReaderOptions::default()),
                slice_all(&bytes[..cut], ReaderOptions::default()),
            ] {
                let whole = boundaries.iter().filter(|&&b| b <= cut).count() - 1;
                assert_eq!(out, records[..whole].to_vec(), "cut {cut}");
                if boundaries.contains(&cut) {
                    assert!(err.is_none(), "cut {cut}: {err:?}");
                } else {
                    let e = err.unwrap_or_else(|| panic!("cut {cut}: no error"));
                    assert_eq!(e.position().unwrap().offset, boundaries[whole] as u64, "cut {cut}");
                    assert_eq!(e.position().unwrap().record, whole as u64);
                    let in_header = cut - boundaries[whole] < HEADER_LEN;
                    assert_eq!(matches!(e, Error::TruncatedHeader { .. }), in_header, "cut {cut}: {e}");
                    assert_eq!(matches!(e, Error::TruncatedPayload { .. }), !in_header, "cut {cut}: {e}");
                }
            }
        }
    }

    #[test]
    fn too_large_is_refused_before_allocation() {
        let mut bytes = Vec::new();
        let len = u64::MAX / 2;
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&masked_crc32c(&len.to_le_bytes()).to_le_bytes());
        let (_, err, _) = stream_all(&bytes, ReaderOptions::default());
        assert!(matches!(err, Some(Error::RecordTooLarge { len: l, .. }) if l == len));
        let (_, err, _) = slice_all(&bytes, ReaderOptions::default());
        assert!(matches!(err, Some(Error::RecordTooLarge { .. })));
        // A small limit applies to honest records too.
        let bytes = encode(&[vec![1; 100]]);
        let opts = ReaderOptions { max_record_len: 99, ..Default::default() };
        assert!(matches!(stream_all(&bytes, opts).1, Some(Error::RecordTooLarge { len: 100, limit: 99, .. })));
    }

    #[test]
    fn payload_corruption_skip_and_count() {
        let records: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10 + i as usize]).collect();
        let mut bytes = encode(&records);
        // Flip a bit in record 2's payload.
        let start2 = (16 + 10) + (16 + 11);
        bytes[start2 + 12 + 3] ^= 0x10;
        for (out, err, _) in [stream_all(&bytes, ReaderOptions::default()), slice_all(&bytes, ReaderOptions::default())]
        {
            assert_eq!(out, records[..2].to_vec());
            let e = err.unwrap();
            assert!(matches!(e, Error::PayloadChecksum { .. }), "{e}");
            assert_eq!(e.position().unwrap().offset, start2 as u64);
            assert_eq!(e.tensorflow_offset(), Some(start2 as u64 + 12));
        }
        let opts = ReaderOptions { skip_corrupt_payloads: true, ..Default::default() };
        let want: Vec<Vec<u8>> = records.iter().enumerate().filter(|(i, _)| *i != 2).map(|(_, r)| r.clone()).collect();
        for (out, err, skipped) in [stream_all(&bytes, opts), slice_all(&bytes, opts)] {
            assert_eq!(out, want);
            assert!(err.is_none());
            assert_eq!(skipped, 1);
        }
        // Without verification the damaged payload comes through as it is.
        let opts = ReaderOptions { verify_checksums: false, ..Default::default() };
        assert_eq!(stream_all(&bytes, opts).0.len(), 5);
    }

    /// Found by `fuzz/tfrecord_reader`: after a payload checksum error the
    /// stream reader counted the failed record as read and moved its offset
    /// past it; the slice reader does neither.
    #[test]
    fn fuzz_payload_checksum_error_is_not_counted_as_read() {
        let mut bytes = encode(&[b"ok".to_vec(), b"bad".to_vec()]);
        let n = bytes.len();
        bytes[n - 5] ^= 1; // the second payload's last byte
        let mut r = RecordReader::new(bytes.as_slice());
        let mut buf = Vec::new();
        assert!(r.read_record(&mut buf).unwrap());
        let e = r.read_record(&mut buf).unwrap_err();
        assert!(matches!(e, Error::PayloadChecksum { .. }), "{e}");
        assert_eq!(e.position().map(|p| (p.offset, p.record)), Some((18, 1)));
        assert_eq!((r.records_read(), r.skipped(), r.offset()), (1, 0, 18));
        let mut s = SliceReader::new(&bytes);
        assert!(s.next().unwrap().is_ok() && s.next().unwrap().is_err());
        assert_eq!((s.records(), s.skipped(), s.offset()), (1, 0, 18));
    }

    #[test]
    fn bad_length_stops_a_stream_and_resyncs_a_slice() {
        let records: Vec<Vec<u8>> = (0..6u8).map(|i| vec![b'a' + i; 20]).collect();
        let mut bytes = encode(&records);
        let start1 = 36;
        bytes[start1] ^= 0x01; // record 1's length field
        let (out, err, _) = stream_all(&bytes, ReaderOptions::default());
        assert_eq!(out, records[..1].to_vec());
        assert!(matches!(err, Some(Error::LengthChecksum { .. })));
        let opts = ReaderOptions { resync_after_bad_length: true, ..Default::default() };
        // A stream cannot resync: same result.
        assert!(matches!(stream_all(&bytes, opts).1, Some(Error::LengthChecksum { .. })));
        let mut r = SliceReader::new(&bytes).with_options(opts);
        let out: Vec<Vec<u8>> = r.by_ref().map(|x| x.unwrap().to_vec()).collect();
        let mut want = records.clone();
        want.remove(1);
        assert_eq!(out, want);
        assert_eq!(r.resynced_bytes(), 36);
    }

    #[test]
    fn blocks_tile_the_records() {
        let records: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; i as usize * 3]).collect();
        let bytes = encode(&records);
        for per in [1u64, 3, 4, 10, 100] {
            let blocks = record_blocks(&bytes, per, None, ReaderOptions::default()).unwrap();
            let mut all = Vec::new();
            let mut expect_first = 0;
            for (range, first) in &blocks {
                assert_eq!(*first, expect_first);
                let got: Vec<Vec<u8>> = SliceReader::new(&bytes[range.clone()]).map(|r| r.unwrap().to_vec()).collect();
                assert!(got.len() as u64 <= per);
                expect_first += got.len() as u64;
                all.extend(got);
            }
            assert_eq!(all, records);
        }
        let e =
            record_blocks(&bytes[..bytes.len() - 1], 4, Some(Path::new("f")), ReaderOptions::default()).unwrap_err();
        assert!(matches!(e, Error::TruncatedPayload { .. }));
        assert_eq!(e.position().unwrap().record, 9);
    }

    /// Found by `fuzz/tfrecord_reader`: with `resync_after_bad_length` set,
    /// a bad length field made `record_blocks` panic (`unreachable!`) instead
    /// of returning the error.
    #[test]
    fn fuzz_record_blocks_with_resync_reports_a_bad_length() {
        let mut bytes = encode(&[b"first".to_vec(), b"second".to_vec()]);
        bytes[21] ^= 1; // the second record's length field
        let opts = ReaderOptions { resync_after_bad_length: true, ..Default::default() };
        let e = record_blocks(&bytes, 1, None, opts).unwrap_err();
        assert!(matches!(e, Error::LengthChecksum { .. }), "{e}");
        assert_eq!(e.position().map(|p| (p.offset, p.record)), Some((21, 1)));
    }

    #[test]
    fn record_blocks_in_steps_equal_one_walk() {
        let records: Vec<Vec<u8>> = (0..23u8).map(|i| vec![i; usize::from(i) * 3]).collect();
        let bytes = encode(&records);
        let whole = record_blocks(&bytes, 4, None, ReaderOptions::default()).unwrap();
        assert_eq!(whole.len(), 6);
        for max in 1..=7 {
            let (mut steps, mut at) = (Vec::new(), (0, 0));
            loop {
                let w = record_blocks_from(&bytes, at, 4, max, None, ReaderOptions::default()).unwrap();
                steps.extend(w.iter().cloned());
                if w.len() < max {
                    break;
                }
                let last = w.last().unwrap();
                at = (last.0.end, last.1 + 4);
            }
            assert_eq!(steps, whole, "max_blocks {max}");
        }
    }

    proptest! {
        #[test]
        fn stream_and_slice_read_what_was_written(
            records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 0..20),
        ) {
            let bytes = encode(&records);
            let (a, ea, _) = stream_all(&bytes, ReaderOptions::default());
            let (b, eb, _) = slice_all(&bytes, ReaderOptions::default());
            prop_assert!(ea.is_none() && eb.is_none());
            prop_assert_eq!(&a, &records);
            prop_assert_eq!(&b, &records);
        }

        #[test]
        fn any_single_byte_damage_is_detected_or_harmless(
            records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..8),
            at in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let mut bytes = encode(&records);
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
            let (out, err, _) = stream_all(&bytes, ReaderOptions::default());
            // CRC32C detects every single-bit error: the reader must fail and
            // must never hand out a damaged record.
            prop_assert!(err.is_some());
            prop_assert!(out.len() < records.len());
            prop_assert_eq!(&out[..], &records[..out.len()]);
        }
    }

    #[test]
    fn both_readers_step_over_a_damaged_payload_when_asked() {
        let records: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
        let mut bytes = encode(&records);
        // Record 2's payload: 3 earlier records of 10, 11, 12 bytes, each framed in 16 more.
        let at2 = (10 + 16) + (11 + 16);
        bytes[at2 + HEADER_LEN + 1] ^= 0x40;
        let mut r = RecordReader::new(bytes.as_slice());
        let mut buf = Vec::new();
        let (mut seen, mut bad) = (Vec::new(), Vec::new());
        loop {
            match r.read_record(&mut buf) {
                Ok(true) => seen.push(buf.clone()),
                Ok(false) => break,
                Err(e) => {
                    assert_eq!(e.position().map(|p| (p.record, p.offset)), Some((2, at2 as u64)));
                    bad.push(e);
                    assert!(r.step_over_corrupt_payload());
                    assert!(!r.step_over_corrupt_payload(), "once per error");
                }
            }
        }
        assert_eq!(seen, [&records[..2], &records[3..]].concat());
        assert_eq!((bad.len(), r.records_read(), r.offset()), (1, 5, bytes.len() as u64));

        let mut s = SliceReader::new(&bytes);
        let mut seen = Vec::new();
        while let Some(rec) = s.next_record() {
            match rec {
                Ok(p) => seen.push(p.to_vec()),
                Err(e) => {
                    assert!(matches!(e, Error::PayloadChecksum { .. }));
                    assert!(s.step_over_corrupt_payload());
                }
            }
        }
        assert_eq!(seen, [&records[..2], &records[3..]].concat());
        assert_eq!(s.records(), 5);

        // A damaged length field cannot be stepped over.
        let mut bytes = encode(&records);
        bytes[at2 + 1] ^= 1;
        let mut s = SliceReader::new(&bytes);
        assert!(s.nth(2).unwrap().is_err());
        assert!(!s.step_over_corrupt_payload());
        assert!(s.next().is_none());
    }
}
