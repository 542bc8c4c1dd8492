//! The preprocessing artifacts: the vocabulary that train mode builds and
//! evaluate and predict modes load.
//!
//! Two files in the model folder:
//!
//! - `categorical-value-counts.csv`: header `feature,value,count,rank`, one row
//!   per vocabulary entry, in feature then rank order. `value` is the value's
//!   text; the missing value is the empty text. Values holding `,`, `"` or a
//!   line break are quoted, CSV style.
//! - `manifest.json`: the format and its version, rows read, minimum count,
//!   the missing-value policy, the out-of-vocabulary id, the vocabulary size
//!   per feature, the Example schema, and the CSV's size and CRC32C.
//!
//! The manifest's format, and the checks that need no vocabulary, belong to
//! the prepared-data contract (`sparky_prepared::artifacts`, re-exported
//! here). This module writes both files and rebuilds the vocabulary from the
//! CSV ([`load`]), checking the format, the version and the checksum, and
//! that the CSV agrees with the manifest, so that altered or foreign
//! artifacts are refused.

use std::path::{Path, PathBuf};

use sparky_io::DirLock;
pub use sparky_prepared::artifacts::{
    ArtifactError, COUNTS_FILE, CSV_HEADER, CheckedArtifacts, MANIFEST_FILE, Manifest, exist, read_manifest, verify,
};
use sparky_prepared::artifacts::{check_csv, manifest_from_bytes};
use sparky_prepared::schema::{CAT_FEATURES, NUM_CAT};

use crate::parse::{Cat, hex8};
use crate::vocab::{ColumnVocab, Counts, RankedBuilder, Value, Vocabulary, text_cmp};

/// Loaded artifacts: the manifest and the vocabulary.
#[derive(Debug, Clone)]
pub struct Artifacts {
    /// The manifest as read.
    pub manifest: Manifest,
    /// The vocabulary rebuilt from the CSV.
    pub vocabulary: Vocabulary,
    /// CRC32C of `manifest.json`, identifying these artifacts.
    pub manifest_crc32c: u32,
}

/// Appends `value` to `out` as a CSV field, quoted when needed.
fn csv_field(out: &mut Vec<u8>, value: &[u8]) {
    if value.iter().any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.push(b'"');
        for &b in value {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(value);
    }
}

/// Appends one CSV row `feature,value,count,rank` to `out`.
fn csv_row(out: &mut Vec<u8>, c: usize, value: Cat<'_>, count: u64, rank: u64) {
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(CAT_FEATURES[c].as_bytes());
    out.push(b',');
    match value {
        Cat::Hex(v) => out.extend_from_slice(&hex8(v)),
        Cat::Missing => {}
        Cat::Other(b) => csv_field(out, b),
    }
    out.push(b',');
    out.extend_from_slice(num.format(count).as_bytes());
    out.push(b',');
    out.extend_from_slice(num.format(rank).as_bytes());
    out.push(b'\n');
}

/// Renders the CSV of a vocabulary.
#[must_use]
pub fn render_csv(vocabulary: &Vocabulary) -> Vec<u8> {
    let total: usize = vocabulary.columns.iter().map(ColumnVocab::len).sum();
    let mut out = Vec::with_capacity(40 * total + 64);
    out.extend_from_slice(CSV_HEADER.as_bytes());
    out.push(b'\n');
    for (c, col) in vocabulary.columns.iter().enumerate() {
        let mut rank = 0;
        let _ = col.for_each_entry::<()>(|value, count| {
            rank += 1;
            csv_row(&mut out, c, value, count, rank);
            Ok(())
        });
    }
    out
}

/// Writes the artifacts row by row, so that the CSV is never held whole in
/// memory: [`begin`](Self::begin), [`row`](Self::row) for every entry in
/// feature then rank order, [`finish`](Self::finish). Dropped unfinished, it
/// leaves no artifacts (the old manifest is removed at the start, the CSV's
/// temporary file on drop).
#[derive(Debug)]
pub struct ArtifactsWriter<'a> {
    dir: &'a DirLock,
    file: std::io::BufWriter<sparky_io::AtomicFile>,
    buf: Vec<u8>,
    crc: u32,
    bytes: u64,
    sizes: [u64; NUM_CAT],
}

impl<'a> ArtifactsWriter<'a> {
    /// Starts writing artifacts into the locked folder `dir`: refuses
    /// existing artifacts without `overwrite`, removes the old manifest (a
    /// stale manifest must never vouch for a new CSV), opens the CSV.
    ///
    /// # Errors
    /// [`ArtifactError::Exists`]; I/O errors.
    pub fn begin(dir: &'a DirLock, overwrite: bool) -> Result<Self, ArtifactError> {
        let path = dir.path();
        if exist(path) && !overwrite {
            return Err(ArtifactError::Exists { dir: path.to_path_buf() });
        }
        dir.remove_stale_temps()?;
        let manifest_path = path.join(MANIFEST_FILE);
        match std::fs::remove_file(&manifest_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ArtifactError::Io { path: manifest_path, source }),
        }
        let file = sparky_io::AtomicFile::create(path.join(COUNTS_FILE))?;
        let mut w = Self {
            dir,
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            buf: Vec::with_capacity(1 << 16),
            crc: 0,
            bytes: 0,
            sizes: [0; NUM_CAT],
        };
        w.buf.extend_from_slice(CSV_HEADER.as_bytes());
        w.buf.push(b'\n');
        Ok(w)
    }

    fn flush_buf(&mut self) -> Result<(), ArtifactError> {
        use std::io::Write;
        self.crc = crc32c::crc32c_append(self.crc, &self.buf);
        self.bytes += self.buf.len() as u64;
        self.file
            .write_all(&self.buf)
            .map_err(|source| ArtifactError::Io { path: self.dir.path().join(COUNTS_FILE), source })?;
        self.buf.clear();
        Ok(())
    }

    /// Adds the next entry of column `c` (0-based): its value and count; the
    /// rank is the column's next.
    ///
    /// # Errors
    /// I/O errors.
    pub fn row(&mut self, c: usize, value: Cat<'_>, count: u64) -> Result<(), ArtifactError> {
        self.sizes[c] += 1;
        csv_row(&mut self.buf, c, value, count, self.sizes[c]);
        if self.buf.len() >= 1 << 16 { self.flush_buf() } else { Ok(()) }
    }

    /// Commits the CSV, then writes the manifest, the commit point.
    ///
    /// # Errors
    /// I/O errors.
    pub fn finish(
        mut self,
        rows_read: u64,
        rows_rejected: u64,
        min_count: u64,
    ) -> Result<CheckedArtifacts, ArtifactError> {
        self.flush_buf()?;
        let path = self.dir.path();
        let file = self
            .file
            .into_inner()
            .map_err(|e| ArtifactError::Io { path: path.join(COUNTS_FILE), source: e.into_error() })?;
        file.commit()?;
        let mut manifest = Manifest::new(&self.sizes, rows_read, rows_rejected, min_count, &[]);
        manifest.counts_csv.bytes = self.bytes;
        manifest.counts_csv.crc32c = self.crc;
        let json = manifest.to_json();
        sparky_io::write_atomic(path.join(MANIFEST_FILE), &json)?;
        Ok(CheckedArtifacts { dir: path.to_path_buf(), manifest, manifest_crc32c: crc32c::crc32c(&json) })
    }
}

/// Writes both artifact files into the locked folder `dir`, atomically:
/// the old manifest is removed first (a stale manifest must never vouch for
/// a new CSV), the CSV is written, then the manifest, the commit point.
/// Returns the artifacts written, as a reader would find them.
///
/// # Errors
/// [`ArtifactError::Exists`] when artifacts are there and `overwrite` is
/// false; I/O errors.
pub fn write(
    dir: &DirLock,
    vocabulary: &Vocabulary,
    rows_read: u64,
    rows_rejected: u64,
    min_count: u64,
    overwrite: bool,
) -> Result<CheckedArtifacts, ArtifactError> {
    let mut w = ArtifactsWriter::begin(dir, overwrite)?;
    for (c, col) in vocabulary.columns.iter().enumerate() {
        col.for_each_entry(|value, count| w.row(c, value, count))?;
    }
    w.finish(rows_read, rows_rejected, min_count)
}

/// Header of a partial counts file (see [`write_partial_counts`]).
pub const PARTIAL_HEADER: &str = "feature,value,count";

/// Writes the value counts of one shard of the input, for a later
/// [`merge_partial_counts`]: CSV with header `feature,value,count`, first two
/// pseudo-rows `__rows__,,N` and `__rejected__,,R`, then every (feature,
/// value, count) in feature then value order, and last `__crc32c__,,C`, the
/// CRC32C of every byte before that line (a file cut short or edited is
/// refused). The file is written atomically.
///
/// # Errors
/// The file cannot be written.
pub fn write_partial_counts(path: &Path, counts: &Counts, rejected: u64) -> Result<(), ArtifactError> {
    let mut out = Vec::new();
    out.extend_from_slice(PARTIAL_HEADER.as_bytes());
    out.extend_from_slice(format!("\n__rows__,,{}\n__rejected__,,{rejected}\n", counts.rows).as_bytes());
    let mut text = Vec::new();
    let mut num = itoa::Buffer::new();
    for (c, col) in counts.columns.iter().enumerate() {
        let name = CAT_FEATURES[c];
        let mut entries: Vec<_> = col.iter().collect();
        entries.sort_unstable_by(|a, b| text_cmp(a.0, b.0));
        for (value, n) in entries {
            out.extend_from_slice(name.as_bytes());
            out.push(b',');
            text.clear();
            value.write_text(&mut text);
            csv_field(&mut out, &text);
            out.push(b',');
            out.extend_from_slice(num.format(n).as_bytes());
            out.push(b'\n');
        }
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(format!("{PARTIAL_CHECKSUM},,{crc}\n").as_bytes());
    sparky_io::write_atomic(path, &out)?;
    Ok(())
}

/// The pseudo-feature of a partial counts file's last line: its checksum.
const PARTIAL_CHECKSUM: &str = "__crc32c__";

/// Reads a partial counts file: (counts, rejected lines, its checksum).
///
/// # Errors
/// A file that is not a complete partial counts file: another header, a
/// malformed line, or a checksum line that is missing or does not match
/// (a line removed or edited, a file cut short).
pub fn read_partial_counts(path: &Path) -> Result<(Counts, u64, u32), ArtifactError> {
    let data = std::fs::read(path).map_err(|source| ArtifactError::Io { path: path.to_path_buf(), source })?;
    let err = |line: u64, what: String| ArtifactError::Csv { path: path.to_path_buf(), line, what };
    // The checksum line: the last one, over every byte before it.
    let body_end = data.strip_suffix(b"\n").and_then(|d| memchr::memrchr(b'\n', d)).map_or(0, |i| i + 1);
    let last = std::str::from_utf8(&data[body_end..]).unwrap_or_default().trim_end();
    let lines = memchr::memchr_iter(b'\n', &data[..body_end]).count() as u64 + 1;
    let recorded =
        last.strip_prefix(PARTIAL_CHECKSUM).and_then(|r| r.strip_prefix(",,")).and_then(|n| n.parse::<u32>().ok());
    let Some(recorded) = recorded else {
        return Err(err(
            lines,
            format!(
                "the last line must be {PARTIAL_CHECKSUM},,<CRC32C>: the file is cut short or was not written by --stage count"
            ),
        ));
    };
    let crc = crc32c::crc32c(&data[..body_end]);
    if crc != recorded {
        return Err(err(
            lines,
            format!(
                "the checksum of the lines before is {crc}, the file records {recorded}: a line was removed or edited"
            ),
        ));
    }
    let data = &data[..body_end];
    let mut records = CsvRecords { data, pos: 0, line: 1 };
    let mut fields = Vec::new();
    match records.next_record(&mut fields).map_err(|(l, w)| err(l, w))? {
        Some(_) if fields.join(&b","[..]) == PARTIAL_HEADER.as_bytes() => {}
        _ => return Err(err(1, format!("the first line must be the header {PARTIAL_HEADER:?}"))),
    }
    let names = CAT_FEATURES;
    let mut counts = Counts::default();
    let mut rejected = 0;
    while let Some(line) = records.next_record(&mut fields).map_err(|(l, w)| err(l, w))? {
        if fields.len() != 3 {
            return Err(err(line, format!("{} fields, expected 3 (feature,value,count)", fields.len())));
        }
        let n = std::str::from_utf8(&fields[2])
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| err(line, "the count is not a non-negative integer".into()))?;
        match fields[0].as_slice() {
            b"__rows__" => counts.rows += n,
            b"__rejected__" => rejected += n,
            f => {
                let Some(c) = names.iter().position(|x| x.as_bytes() == f) else {
                    return Err(err(line, format!("unknown feature {:?}", String::from_utf8_lossy(f))));
                };
                counts.columns[c].add_n(Value::from_text(&fields[1]).as_cat(), n);
            }
        }
    }
    Ok((counts, rejected, crc))
}

/// Merges partial counts files into the artifacts train mode would have
/// written for the whole input: the same CSV and manifest, byte for byte.
pub fn merge_partial_counts(
    files: &[PathBuf],
    dir: &DirLock,
    min_count: u64,
    overwrite: bool,
) -> Result<CheckedArtifacts, ArtifactError> {
    if exist(dir.path()) && !overwrite {
        return Err(ArtifactError::Exists { dir: dir.path().to_path_buf() });
    }
    let mut total = Counts::default();
    let mut rejected = 0;
    let mut seen: Vec<(u32, &PathBuf)> = Vec::with_capacity(files.len());
    for f in files {
        let (c, r, crc) = read_partial_counts(f)?;
        // Two shards never count the same values the same way: the same file twice would count a shard twice.
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == crc) {
            return Err(ArtifactError::Inconsistent {
                path: f.clone(),
                what: format!("holds the same partial counts as {}: a shard would be counted twice", first.display()),
            });
        }
        seen.push((crc, f));
        total = Counts::merged(total, c);
        rejected += r;
    }
    let vocab = Vocabulary::from_counts(&total, min_count);
    write(dir, &vocab, total.rows, rejected, min_count, overwrite)
}

/// Splits CSV text into records of fields, honouring quotes. Yields
/// (1-based line of the record's start, fields).
struct CsvRecords<'a> {
    data: &'a [u8],
    pos: usize,
    line: u64,
}

impl CsvRecords<'_> {
    fn next_record(&mut self, fields: &mut Vec<Vec<u8>>) -> Result<Option<u64>, (u64, String)> {
        if self.pos >= self.data.len() {
            return Ok(None);
        }
        fields.clear();
        let start_line = self.line;
        let mut field = Vec::new();
        let mut quoted = false;
        let mut at_field_start = true;
        while self.pos < self.data.len() {
            let b = self.data[self.pos];
            self.pos += 1;
            if quoted {
                match b {
                    b'"' if self.data.get(self.pos) == Some(&b'"') => {
                        field.push(b'"');
                        self.pos += 1;
                    }
                    b'"' => {
                        quoted = false;
                        if !matches!(self.data.get(self.pos), None | Some(b',' | b'\n' | b'\r')) {
                            return Err((self.line, "text after a closing quote".into()));
                        }
                    }
                    b'\n' => {
                        self.line += 1;
                        field.push(b);
                    }
                    _ => field.push(b),
                }
                continue;
            }
            match b {
                b'"' if at_field_start => {
                    quoted = true;
                    at_field_start = false;
                }
                b',' => {
                    fields.push(std::mem::take(&mut field));
                    at_field_start = true;
                }
                b'\n' => {
                    self.line += 1;
                    fields.push(std::mem::take(&mut field));
                    return Ok(Some(start_line));
                }
                b'\r' if self.data.get(self.pos) == Some(&b'\n') => {}
                _ => {
                    field.push(b);
                    at_field_start = false;
                }
            }
        }
        if quoted {
            return Err((start_line, "unterminated quoted value".into()));
        }
        fields.push(field);
        Ok(Some(start_line))
    }
}

/// Parses the CSV, checking its structure, and hands each entry to
/// `on_entry(column, line, value, count)` in file order (feature, then rank).
/// Returns the number of entries per column.
fn parse_csv(
    path: &Path,
    data: &[u8],
    mut on_entry: impl FnMut(usize, u64, Value, u64) -> Result<(), ArtifactError>,
    release: &dyn Fn(std::ops::Range<usize>),
) -> Result<[u64; NUM_CAT], ArtifactError> {
    let err = |line: u64, what: String| ArtifactError::Csv { path: path.to_path_buf(), line, what };
    let mut records = CsvRecords { data, pos: 0, line: 1 };
    let mut fields = Vec::new();
    match records.next_record(&mut fields).map_err(|(l, w)| err(l, w))? {
        Some(_) if fields.len() == 4 && fields.join(&b","[..]) == CSV_HEADER.as_bytes() => {}
        _ => {
            return Err(err(1, format!("the first line must be the header {CSV_HEADER:?}")));
        }
    }
    let names = CAT_FEATURES;
    let mut sizes = [0u64; NUM_CAT];
    let mut last_count = [u64::MAX; NUM_CAT];
    let mut current = 0usize;
    let mut released = 0;
    while let Some(line) = records.next_record(&mut fields).map_err(|(l, w)| err(l, w))? {
        if records.pos - released >= RELEASE_BLOCK {
            release(released..records.pos);
            released = records.pos;
        }
        if fields.len() != 4 {
            return Err(err(line, format!("{} fields, expected 4 (feature,value,count,rank)", fields.len())));
        }
        let Some(c) = names.iter().position(|n| n.as_bytes() == fields[0].as_slice()) else {
            return Err(err(line, format!("unknown feature {:?}", String::from_utf8_lossy(&fields[0]))));
        };
        if c < current {
            return Err(err(
                line,
                format!("feature {} after {}: rows must be in feature order", names[c], names[current]),
            ));
        }
        current = c;
        let num = |f: &[u8], what: &str| -> Result<u64, ArtifactError> {
            std::str::from_utf8(f).ok().and_then(|s| s.parse::<u64>().ok()).ok_or_else(|| {
                err(line, format!("{what} {:?} is not a non-negative integer", String::from_utf8_lossy(f)))
            })
        };
        let count = num(&fields[2], "count")?;
        let rank = num(&fields[3], "rank")?;
        if rank != sizes[c] + 1 {
            return Err(err(line, format!("rank {rank} of {}, expected {}", names[c], sizes[c] + 1)));
        }
        if count == 0 {
            return Err(err(line, "count 0".into()));
        }
        if last_count[c] < count {
            let prev = last_count[c];
            return Err(err(line, format!("count {count} above the previous rank's {prev}: not in rank order")));
        }
        last_count[c] = count;
        sizes[c] += 1;
        on_entry(c, line, Value::from_text(&fields[1]), count)?;
    }
    Ok(sizes)
}

/// Loads and checks the artifacts in `dir`, and rebuilds the vocabulary.
///
/// # Errors
/// Missing files, another format or version, a checksum mismatch, a
/// malformed CSV, or a CSV that disagrees with the manifest.
pub fn load(dir: &Path) -> Result<Artifacts, ArtifactError> {
    let checked = read_manifest(dir)?;
    let csv = map_csv(dir)?;
    let vocabulary = vocabulary_from_csv(dir, &checked.manifest, csv.bytes(), &|r| csv.release(r))?;
    Ok(Artifacts { manifest: checked.manifest, vocabulary, manifest_crc32c: checked.manifest_crc32c })
}

/// Checks and loads artifacts from the bytes of their two files; `dir`
/// names them in errors. [`load`] reads the files and calls this.
///
/// # Errors
/// As [`load`], but for missing files.
pub fn from_bytes(dir: &Path, json: &[u8], csv: &[u8]) -> Result<Artifacts, ArtifactError> {
    let manifest = manifest_from_bytes(dir, json)?;
    let vocabulary = vocabulary_from_csv(dir, &manifest, csv, &|_| {})?;
    Ok(Artifacts { manifest, vocabulary, manifest_crc32c: crc32c::crc32c(json) })
}

/// Bytes of a mapped CSV read between two releases of its pages.
const RELEASE_BLOCK: usize = 8 << 20;

/// Checks the CSV against its manifest and rebuilds the vocabulary, each
/// entry going straight into its column's tables (the CSV is never held as
/// a list of values).
/// `release` is told which bytes were read, block by block, so that a mapped
/// CSV's pages need not all stay resident.
fn vocabulary_from_csv(
    dir: &Path,
    manifest: &Manifest,
    csv: &[u8],
    release: &dyn Fn(std::ops::Range<usize>),
) -> Result<Vocabulary, ArtifactError> {
    let csv_path = dir.join(COUNTS_FILE);
    let mut builders: Vec<Option<RankedBuilder>> = (0..NUM_CAT).map(|_| None).collect();
    // Sizes from the manifest are only a capacity hint, bounded by what the CSV can hold.
    let hint = |c: usize| {
        let recorded = manifest.vocabulary_sizes.get(CAT_FEATURES[c]).copied().unwrap_or(0);
        usize::try_from(recorded.min(csv.len() as u64 / 24)).unwrap_or(0)
    };
    check_and_parse(dir, manifest, csv, release, |c, line, value, count| {
        let b = builders[c].get_or_insert_with(|| RankedBuilder::new(hint(c)));
        // A value listed twice would have two ranks but one id.
        b.push(value, count).map_err(|(rank, first)| ArtifactError::Csv {
            path: csv_path.clone(),
            line,
            what: format!("{} at rank {rank} repeats the value of rank {first}", CAT_FEATURES[c]),
        })
    })?;
    let columns = builders.into_iter().map(|b| b.unwrap_or_else(|| RankedBuilder::new(0)).finish()).collect();
    Ok(Vocabulary { columns })
}

/// Checks the CSV's size and checksum against the manifest, parses it into
/// `on_entry`, and checks its sizes against the manifest.
fn check_and_parse(
    dir: &Path,
    manifest: &Manifest,
    csv: &[u8],
    release: &dyn Fn(std::ops::Range<usize>),
    on_entry: impl FnMut(usize, u64, Value, u64) -> Result<(), ArtifactError>,
) -> Result<(), ArtifactError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let csv_path = dir.join(COUNTS_FILE);
    let mut crc = 0;
    for (i, block) in csv.chunks(RELEASE_BLOCK).enumerate() {
        crc = crc32c::crc32c_append(crc, block);
        release(i * RELEASE_BLOCK..i * RELEASE_BLOCK + block.len());
    }
    check_csv(&csv_path, manifest, csv.len() as u64, crc)?;
    let sizes = parse_csv(&csv_path, csv, on_entry, release)?;
    let inconsistent = |what: String| ArtifactError::Inconsistent { path: manifest_path.clone(), what };
    for (c, &n) in sizes.iter().enumerate() {
        let name = CAT_FEATURES[c];
        let recorded = manifest.vocabulary_sizes.get(name).copied();
        if recorded != Some(n) {
            return Err(inconsistent(format!("{name}: the manifest records {recorded:?} values, the CSV holds {n}")));
        }
    }
    Ok(())
}

/// Reads the artifacts in `dir` entry by entry, checked as [`load`] checks
/// them, without building a vocabulary: `on_entry(column, line, value,
/// count)` in feature then rank order.
///
/// # Errors
/// As [`load`], and whatever `on_entry` returns.
pub(crate) fn read_entries(
    dir: &Path,
    on_entry: impl FnMut(usize, u64, Value, u64) -> Result<(), ArtifactError>,
) -> Result<CheckedArtifacts, ArtifactError> {
    let checked = read_manifest(dir)?;
    let csv = map_csv(dir)?;
    check_and_parse(dir, &checked.manifest, csv.bytes(), &|r| csv.release(r), on_entry)?;
    Ok(checked)
}

/// Maps the CSV of `dir`: mapped, not read, and released as it is read, so
/// that its pages stay the page cache's.
fn map_csv(dir: &Path) -> Result<sparky_io::MappedFile, ArtifactError> {
    let csv_path = dir.join(COUNTS_FILE);
    if let Err(e) = std::fs::metadata(&csv_path) {
        return Err(match e.kind() {
            std::io::ErrorKind::NotFound => ArtifactError::Missing { dir: dir.to_path_buf(), file: COUNTS_FILE },
            _ => ArtifactError::Io { path: csv_path, source: e },
        });
    }
    Ok(sparky_io::MappedFile::open(&csv_path)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Cat;
    use crate::vocab::Counts;

    fn sample_vocab() -> Vocabulary {
        let mut counts = Counts::default();
        counts.columns[0].add_n(Cat::Hex(0x68fd_1e64), 3);
        counts.columns[0].add_n(Cat::Missing, 2);
        counts.columns[0].add_n(Cat::Other(b"a,\"b\""), 2);
        counts.columns[25].add_n(Cat::Hex(1), 1);
        Vocabulary::from_counts(&counts, 1)
    }

    #[test]
    fn csv_layout() {
        let csv = String::from_utf8(render_csv(&sample_vocab())).unwrap();
        assert_eq!(
            csv,
            "feature,value,count,rank\n\
             categorical-feature-1,68fd1e64,3,1\n\
             categorical-feature-1,,2,2\n\
             categorical-feature-1,\"a,\"\"b\"\"\",2,3\n\
             categorical-feature-26,00000001,1,1\n"
        );
    }

    fn lock(dir: &tempfile::TempDir) -> DirLock {
        DirLock::acquire(dir.path()).unwrap()
    }

    #[test]
    fn write_load_round_trip_and_refusals() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = lock(&tmp);
        let vocab = sample_vocab();
        let m = write(&dir, &vocab, 7, 1, 1, false).unwrap();
        assert_eq!(m.manifest.vocabulary_sizes["categorical-feature-1"], 3);
        let a = load(dir.path()).unwrap();
        assert_eq!(a.manifest, m.manifest);
        assert_eq!(a.manifest_crc32c, m.manifest_crc32c);
        assert_eq!(verify(dir.path()).unwrap(), m);
        for c in 0..NUM_CAT {
            assert_eq!(a.vocabulary.columns[c].entries(), vocab.columns[c].entries());
        }
        assert_eq!(a.vocabulary.columns[0].id(Cat::Other(b"a,\"b\"")), 3);

        // Train mode refuses to overwrite without being told.
        assert!(matches!(write(&dir, &vocab, 7, 1, 1, false), Err(ArtifactError::Exists { .. })));
        write(&dir, &vocab, 8, 0, 1, true).unwrap();

        // An altered CSV.
        let csv = dir.path().join(COUNTS_FILE);
        let text = std::fs::read_to_string(&csv).unwrap().replace(",3,1", ",4,1");
        std::fs::write(&csv, text).unwrap();
        let e = load(dir.path()).unwrap_err();
        assert!(matches!(e, ArtifactError::Checksum { .. }), "{e}");
        assert!(e.to_string().contains("altered"));

        // Another version.
        write(&dir, &vocab, 8, 0, 1, true).unwrap();
        let mpath = dir.path().join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&mpath).unwrap().replace("\"format_version\": 1", "\"format_version\": 2");
        std::fs::write(&mpath, text).unwrap();
        assert!(matches!(load(dir.path()), Err(ArtifactError::WrongVersion { ref found, .. }) if found == "2"));

        // Missing.
        std::fs::remove_file(&mpath).unwrap();
        let e = load(dir.path()).unwrap_err();
        assert!(matches!(e, ArtifactError::Missing { file: MANIFEST_FILE, .. }));
        assert!(e.to_string().contains("--mode train"));
    }

    /// Found by `fuzz/artifacts`: a CSV listing a value twice in one column
    /// loaded, the value taking the later rank's id and the earlier rank's id
    /// never given.
    #[test]
    fn fuzz_a_value_listed_twice_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = lock(&tmp);
        write(&dir, &sample_vocab(), 7, 0, 1, false).unwrap();
        let json = std::fs::read(dir.path().join(MANIFEST_FILE)).unwrap();
        let mut manifest: Manifest = serde_json::from_slice(&json).unwrap();
        let csv = "feature,value,count,rank\n\
                   categorical-feature-1,68fd1e64,3,1\n\
                   categorical-feature-1,,2,2\n\
                   categorical-feature-1,68fd1e64,2,3\n\
                   categorical-feature-26,00000001,1,1\n";
        manifest.counts_csv.bytes = csv.len() as u64;
        manifest.counts_csv.crc32c = crc32c::crc32c(csv.as_bytes());
        let json = serde_json::to_vec(&manifest).unwrap();
        let e = from_bytes(dir.path(), &json, csv.as_bytes()).unwrap_err();
        assert!(matches!(e, ArtifactError::Csv { line: 4, .. }), "{e}");
        assert!(e.to_string().contains("categorical-feature-1 at rank 3 repeats the value of rank 1"), "{e}");
    }

    #[test]
    fn altered_manifest_sizes_are_caught() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = lock(&tmp);
        write(&dir, &sample_vocab(), 7, 0, 1, false).unwrap();
        let mpath = dir.path().join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&mpath)
            .unwrap()
            .replace("\"categorical-feature-1\": 3", "\"categorical-feature-1\": 4");
        std::fs::write(&mpath, text).unwrap();
        let e = load(dir.path()).unwrap_err();
        assert!(matches!(e, ArtifactError::Inconsistent { .. }), "{e}");
    }

    #[test]
    fn partial_counts_merge_to_the_whole() {
        use crate::parse::parse_line;
        use sparky_prepared::schema::Mode;
        let lines: Vec<String> = (0..200)
            .map(|i| {
                let mut f = vec![(i % 2).to_string()];
                f.extend((0..13).map(|j| ((i * j) % 7).to_string()));
                f.extend((0..26).map(|c| match (i + c) % 5 {
                    0 => String::new(),
                    1 => "x,\"y".to_string(),
                    k => format!("{:08x}", (i * 31 + c * 7 + k) % 11),
                }));
                f.join("\t")
            })
            .collect();
        let count = |ls: &[String]| {
            let mut c = Counts::default();
            for l in ls {
                c.add_row(&parse_line(l.as_bytes(), Mode::Train).unwrap());
            }
            c
        };
        let dir = tempfile::tempdir().unwrap();
        let whole = DirLock::acquire(&dir.path().join("whole")).unwrap();
        write(&whole, &Vocabulary::from_counts(&count(&lines), 2), 200, 3, 2, false).unwrap();
        let mut files = Vec::new();
        for (k, shard) in lines.chunks(70).enumerate() {
            let f = dir.path().join(format!("counts-{k}.csv"));
            write_partial_counts(&f, &count(shard), u64::from(k == 1) * 3).unwrap();
            files.push(f);
        }
        let merged = DirLock::acquire(&dir.path().join("merged")).unwrap();
        // The same shard twice, or a shard with a line removed, is refused.
        let twice = vec![files[0].clone(), files[1].clone(), files[0].clone()];
        let e = merge_partial_counts(&twice, &merged, 2, false).unwrap_err();
        assert!(e.to_string().contains("counted twice"), "{e}");
        let cut = dir.path().join("cut.csv");
        let text = std::fs::read_to_string(&files[2]).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.remove(5);
        std::fs::write(&cut, lines.join("\n") + "\n").unwrap();
        let e = merge_partial_counts(&[files[0].clone(), files[1].clone(), cut], &merged, 2, false).unwrap_err();
        assert!(e.to_string().contains("a line was removed or edited"), "{e}");
        let e = read_partial_counts(&files[2].with_extension("nope")).unwrap_err();
        assert!(matches!(e, ArtifactError::Io { .. }), "{e}");
        merge_partial_counts(&files, &merged, 2, false).unwrap();
        for f in [COUNTS_FILE, MANIFEST_FILE] {
            assert_eq!(
                std::fs::read(whole.path().join(f)).unwrap(),
                std::fs::read(merged.path().join(f)).unwrap(),
                "{f}"
            );
        }
    }

    #[test]
    fn csv_structure_errors_name_the_line() {
        let p = Path::new("x.csv");
        let e = parse_csv(p, b"feature,value,count,rank\ncategorical-feature-1,a,1,2\n", |_, _, _, _| Ok(()), &|_| {})
            .unwrap_err();
        assert_eq!(e.to_string(), "x.csv:2: rank 2 of categorical-feature-1, expected 1");
        let e = parse_csv(
            p,
            b"feature,value,count,rank\ncategorical-feature-1,a,1,1\ncategorical-feature-1,b,2,2\n",
            |_, _, _, _| Ok(()),
            &|_| {},
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("x.csv:3: count 2 above"), "{e}");
        let e = parse_csv(p, b"nope\n", |_, _, _, _| Ok(()), &|_| {}).unwrap_err();
        assert!(e.to_string().contains("header"));
        let e =
            parse_csv(p, b"feature,value,count,rank\ncategorical-feature-1,\"a,1,1\n", |_, _, _, _| Ok(()), &|_| {})
                .unwrap_err();
        assert!(e.to_string().contains("unterminated"), "{e}");
    }
}
