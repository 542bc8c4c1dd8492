//! The one reader of prepared records, for the trainer and the predictor.
//!
//! [`Reader::new`] cuts the parts of a [`PreparedDir`] into blocks: byte
//! ranges of about [`BLOCK_BYTES`] of an uncompressed (memory-mapped) part,
//! or a whole compressed part (a stream). A block holds the records that
//! start in its range; its reader finds the first one by checksum
//! ([`sparky_tfrecord::next_record_start`]), so opening reads nothing and
//! blocks can be read in any order by any thread. [`Reader::read_block`]
//! decodes each record into a caller-owned [`Row`] with a [`RowDecoder`]
//! (which checks labels and vocabulary ids) and hands it to a callback, or
//! hands over a [`BadRecord`] with its position when a record's payload
//! fails its checksum or does not decode: the caller lists it, skips it or
//! fails. Damaged framing (a length field that fails its checksum, a
//! truncation) is an error: the rows after it cannot be counted.
//!
//! A Parquet part's row groups are blocks too: their columns, matched to the
//! schema by name, are read side by side into the same [`Row`] and checked
//! by the same [`RowDecoder`]; a bad row's position names its row group.
//!
//! The caller counts what each block held ([`BlockStats`]) and, after a
//! whole pass, checks the counts against `_prepare.json`
//! ([`Reader::check_counts`]): no row goes missing unnoticed.

use std::fmt;
use std::path::{Path, PathBuf};

use sparky_io::{Access, MappedFile};
use sparky_tfrecord::example::{ExampleError, Int64SchemaDecoder};
use sparky_tfrecord::{Compression, ReaderOptions, RecordReader, SliceReader};

use crate::folder::{PREPARED_FILE, Part, PartKind, PreparedDir};
use crate::parquet_part::{self, ParquetPart};
use crate::schema::{CAT_FEATURES, ID_FEATURE, INT_FEATURES, LABEL_FEATURE, NUM_CAT, NUM_INT};

/// Bytes per block of an uncompressed part: about 750 Criteo Examples.
pub const BLOCK_BYTES: u64 = 1 << 20;

/// Blocks release their pages in whole spans of this size (see `read_block`).
const RELEASE_SPAN: usize = 2 << 20;

/// Decoder slots: label, id, the integers, the vocabulary ids.
pub(crate) const SLOTS: usize = 2 + NUM_INT + NUM_CAT;
pub(crate) const LABEL: usize = 0;
pub(crate) const ID: usize = 1;
const INTS: usize = 2;
pub(crate) const IDS: usize = 2 + NUM_INT;

/// The feature of each decoder slot.
pub(crate) fn slot_names() -> [&'static str; SLOTS] {
    let mut names = [""; SLOTS];
    names[LABEL] = LABEL_FEATURE;
    names[ID] = ID_FEATURE;
    names[INTS..IDS].copy_from_slice(&INT_FEATURES);
    names[IDS..].copy_from_slice(&CAT_FEATURES);
    names
}

/// One prepared row, decoded. Reused from record to record: the reader
/// decodes into a row the caller owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub(crate) values: [i64; SLOTS],
    label: Option<bool>,
    id: Option<i64>,
}

impl Default for Row {
    fn default() -> Self {
        Self { values: [0; SLOTS], label: None, id: None }
    }
}

impl Row {
    /// A row from its values.
    #[must_use]
    pub fn new(label: Option<bool>, id: Option<i64>, ints: &[i64; NUM_INT], ids: &[i64; NUM_CAT]) -> Self {
        let mut values = [0; SLOTS];
        values[INTS..IDS].copy_from_slice(ints);
        values[IDS..].copy_from_slice(ids);
        Self { values, label, id }
    }

    /// The label (`clicked`), when the Example has one.
    #[inline]
    #[must_use]
    pub fn label(&self) -> Option<bool> {
        self.label
    }

    /// The row number (`id`, predict mode), when the Example has one.
    #[inline]
    #[must_use]
    pub fn id(&self) -> Option<i64> {
        self.id
    }

    /// The 13 integer features.
    #[inline]
    #[must_use]
    pub fn ints(&self) -> &[i64; NUM_INT] {
        self.values[INTS..IDS].try_into().unwrap_or_else(|_| unreachable!("13 slots"))
    }

    /// The 26 vocabulary ids.
    #[inline]
    #[must_use]
    pub fn ids(&self) -> &[i64; NUM_CAT] {
        self.values[IDS..].try_into().unwrap_or_else(|_| unreachable!("26 slots"))
    }
}

/// Why one record is not a usable prepared row.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RowFault {
    /// Not a `tf.train.Example` of the schema.
    #[error(transparent)]
    Example(#[from] ExampleError),
    /// A label other than 0 or 1.
    #[error("label \"{LABEL_FEATURE}\" is {0}, expected 0 or 1")]
    Label(i64),
    /// A vocabulary id below 0 or above the vocabulary's size.
    #[error("{feature} is {value}, outside the vocabulary's ids 0 to {size}")]
    Id {
        /// The feature.
        feature: &'static str,
        /// The value found.
        value: i64,
        /// The vocabulary's size.
        size: u64,
    },
    /// A null vocabulary id (Parquet): ids come from the vocabulary, where
    /// a missing value has its own id, so a null is not a prepared value.
    #[error("{feature} is null: vocabulary ids are never missing (criteo-prepare gives missing values an id)")]
    Null {
        /// The feature.
        feature: &'static str,
    },
}

/// Decodes prepared Examples into [`Row`]s and checks their values: labels
/// 0 or 1, vocabulary ids within the vocabulary's sizes (when given).
#[derive(Debug, Clone)]
pub struct RowDecoder {
    decoder: Int64SchemaDecoder,
    sizes: Option<[u64; NUM_CAT]>,
    need_label: bool,
}

impl RowDecoder {
    /// A decoder; `sizes` are the vocabulary sizes of C1..C26 the ids must
    /// fit (`None`: not checked). `clicked` and `id` are optional.
    #[must_use]
    pub fn new(sizes: Option<[u64; NUM_CAT]>) -> Self {
        let decoder = Int64SchemaDecoder::new(&slot_names()).with_optional(&[LABEL_FEATURE, ID_FEATURE]);
        Self { decoder, sizes, need_label: false }
    }

    /// Requires a label in every Example (an Example without one is
    /// [`ExampleError::Missing`]).
    #[must_use]
    pub fn labelled(mut self) -> Self {
        self.need_label = true;
        self
    }

    /// Decodes `bytes` into `row`.
    ///
    /// # Errors
    /// The record is not an Example of the schema, or a value is out of range.
    #[inline]
    pub fn decode(&mut self, bytes: &[u8], row: &mut Row) -> Result<(), RowFault> {
        self.decoder.decode(bytes, &mut row.values)?;
        let (label, id) = (self.decoder.is_present(LABEL), self.decoder.is_present(ID));
        self.check(row, label, id)
    }

    /// Checks the values decoded into `row` (by the Example decoder or a
    /// Parquet row group), given whether it has a label and an id.
    #[inline]
    pub(crate) fn check(&self, row: &mut Row, label: bool, id: bool) -> Result<(), RowFault> {
        row.label = if label {
            match row.values[LABEL] {
                0 => Some(false),
                1 => Some(true),
                v => return Err(RowFault::Label(v)),
            }
        } else if self.need_label {
            return Err(RowFault::Example(ExampleError::Missing { name: LABEL_FEATURE.into() }));
        } else {
            None
        };
        row.id = id.then_some(row.values[ID]);
        if let Some(sizes) = &self.sizes {
            for (c, (&v, &size)) in row.ids().iter().zip(sizes).enumerate() {
                // One compare: negative ids wrap to huge unsigned values.
                if v as u64 > size {
                    return Err(RowFault::Id { feature: CAT_FEATURES[c], value: v, size });
                }
            }
        }
        Ok(())
    }
}

/// Where a record is: its part, its number in the part when known, its
/// byte offset when known (in the decompressed stream for compressed parts),
/// and its row group for a Parquet part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordAt {
    /// The part.
    pub path: PathBuf,
    /// 0-based record (row) number within the part.
    pub record: Option<u64>,
    /// Byte offset of the record's header.
    pub offset: Option<u64>,
    /// The Parquet row group holding the row.
    pub row_group: Option<u64>,
}

impl fmt::Display for RecordAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.path.display())?;
        if let Some(g) = self.row_group {
            write!(f, "row group {g}, ")?;
        }
        match (self.record, self.offset) {
            (Some(r), Some(o)) => write!(f, "record {r} at byte {o}"),
            (Some(r), None) if self.row_group.is_some() => write!(f, "row {r}"),
            (Some(r), None) => write!(f, "record {r}"),
            (None, Some(o)) => write!(f, "record at byte {o}"),
            (None, None) => write!(f, "a record"),
        }
    }
}

/// Why a record could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BadKind {
    /// Its payload fails its checksum (the framing is intact).
    #[error(transparent)]
    Checksum(sparky_tfrecord::Error),
    /// It is not a usable prepared row.
    #[error(transparent)]
    Row(#[from] RowFault),
}

/// A record that could not be used, and where it is.
#[derive(Debug, thiserror::Error)]
#[error("{at}: {kind}")]
pub struct BadRecord {
    /// Where.
    pub at: RecordAt,
    /// Why.
    #[source]
    pub kind: BadKind,
}

impl BadRecord {
    /// True for a payload that fails its checksum.
    #[must_use]
    pub fn is_checksum(&self) -> bool {
        matches!(self.kind, BadKind::Checksum(_))
    }
}

/// Why reading failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// Damaged framing or an I/O error while reading records.
    #[error(transparent)]
    Record(#[from] sparky_tfrecord::Error),
    /// A part cannot be opened or mapped.
    #[error(transparent)]
    Io(#[from] sparky_io::Error),
    /// A record that could not be used, where the caller does not go on.
    #[error(transparent)]
    Bad(#[from] Box<BadRecord>),
    /// A part held another number of records than recorded.
    #[error("{}: {found} records read, {PREPARED_FILE} recorded {recorded}: the part was altered", path.display())]
    RowCount {
        /// The part.
        path: PathBuf,
        /// Rows recorded.
        recorded: u64,
        /// Records found.
        found: u64,
    },
    /// A `.parquet` part without Parquet's magic bytes at its start and end.
    #[error("{}: not a Parquet file ({bytes} bytes, no PAR1 magic at its start and end): truncated or not Parquet", path.display())]
    NotParquet {
        /// The part.
        path: PathBuf,
        /// Its size.
        bytes: u64,
    },
    /// A Parquet part (its footer, a row group or a column) cannot be read.
    #[error("{}: {source}", crate::parquet_part::describe(path, *row_group, *column))]
    Parquet {
        /// The part.
        path: PathBuf,
        /// The row group, when reading one.
        row_group: Option<usize>,
        /// The column, when reading one.
        column: Option<&'static str>,
        /// The cause.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// A Parquet part whose columns do not fit the schema.
    #[error("{}: column \"{column}\" {what}", path.display())]
    ParquetColumn {
        /// The part.
        path: PathBuf,
        /// The column.
        column: &'static str,
        /// What is wrong with it.
        what: String,
    },
}

/// One item handed to [`Reader::read_block`]'s callback.
#[derive(Debug)]
pub enum Item<'a> {
    /// A decoded row.
    Row(&'a Row),
    /// A record that could not be used.
    Bad(BadRecord),
}

/// What the callback wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on.
    Continue,
    /// Stop reading this block.
    Stop,
}

/// What one block held.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BlockStats {
    /// Index of the block's part.
    pub part: usize,
    /// Records handed to the callback (rows and bad records).
    pub records: u64,
    /// Of those, rows.
    pub rows: u64,
    /// True when the block was read to its end (the callback did not stop it).
    pub complete: bool,
}

/// A block: the records of one part that start in a byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Index of the part.
    pub part: usize,
    /// Start of the byte range.
    pub start: u64,
    /// End of the byte range (`u64::MAX`: a whole stream).
    pub end: u64,
}

enum Source {
    Mapped(MappedFile),
    Stream,
    Parquet(Box<ParquetPart>),
}

/// Reads the records of prepared parts, block by block.
pub struct Reader {
    parts: Vec<Part>,
    sources: Vec<Source>,
    blocks: Vec<Block>,
    /// The Parquet row group of each block (0 for TFRecord blocks).
    groups: Vec<usize>,
    opts: ReaderOptions,
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader").field("parts", &self.parts).field("blocks", &self.blocks.len()).finish()
    }
}

impl Reader {
    /// Opens the parts of `dir`: uncompressed files are mapped and cut into
    /// blocks of about `block_bytes`; compressed files are one block each;
    /// Parquet files (by name, or by their magic) are mapped, their footer
    /// read and their columns matched to the schema, a block per row group.
    /// `access` hints how the blocks will be taken ([`Access::Normal`] for a
    /// shuffled order). Nothing else is read yet.
    ///
    /// # Errors
    /// A part cannot be mapped; a Parquet part is damaged or its columns do
    /// not fit the schema ([`ReadError::NotParquet`],
    /// [`ReadError::Parquet`], [`ReadError::ParquetColumn`]).
    pub fn new(dir: &PreparedDir, block_bytes: u64, access: Access) -> Result<Self, ReadError> {
        let block_bytes = block_bytes.max(1);
        let parts = dir.parts().to_vec();
        let mut sources = Vec::with_capacity(parts.len());
        let mut blocks = Vec::new();
        let mut groups = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            // A Parquet file is known by its magic too (Spark may name
            // parts without the extension); no TFRecord file starts so (its
            // length field's checksum would not match).
            let mapped = match p.kind {
                PartKind::Parquet | PartKind::Tfrecord(Compression::None) => Some(MappedFile::open(&p.path)?),
                PartKind::Tfrecord(_) => None,
            };
            let parquet =
                mapped.as_ref().is_some_and(|m| p.kind == PartKind::Parquet || parquet_part::is_parquet(m.bytes()));
            match (p.kind, mapped) {
                (_, Some(m)) if parquet => {
                    m.advise(access);
                    let pq = ParquetPart::open(&p.path, m)?;
                    for g in 0..pq.row_groups() {
                        let (start, end) = pq.byte_range(g);
                        blocks.push(Block { part: i, start, end });
                        groups.push(g);
                    }
                    sources.push(Source::Parquet(Box::new(pq)));
                }
                (_, Some(m)) => {
                    m.advise(access);
                    let len = m.len() as u64;
                    let mut start = 0;
                    while start < len {
                        let end = (start + block_bytes).min(len);
                        blocks.push(Block { part: i, start, end });
                        groups.push(0);
                        start = end;
                    }
                    sources.push(Source::Mapped(m));
                }
                (_, None) => {
                    blocks.push(Block { part: i, start: 0, end: u64::MAX });
                    groups.push(0);
                    sources.push(Source::Stream);
                }
            }
        }
        Ok(Self { parts, sources, blocks, groups, opts: ReaderOptions::default() })
    }

    /// The blocks, in part then byte order.
    #[must_use]
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// The parts.
    #[must_use]
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Reads block `b`: each record is decoded into `row` and handed to `f`
    /// as [`Item::Row`], or as [`Item::Bad`] when its payload fails its
    /// checksum or it does not decode. `f` returns whether to go on, or an
    /// error to stop with.
    ///
    /// # Errors
    /// Damaged framing or an I/O error ([`ReadError`], converted into `E`),
    /// or the callback's error.
    pub fn read_block<E: From<ReadError>>(
        &self,
        b: usize,
        decoder: &mut RowDecoder,
        row: &mut Row,
        mut f: impl FnMut(Item<'_>) -> Result<Flow, E>,
    ) -> Result<BlockStats, E> {
        let block = self.blocks[b];
        let path = &self.parts[block.part].path;
        let mut stats = BlockStats { part: block.part, ..BlockStats::default() };
        let mut handle = |stats: &mut BlockStats, rec: Result<&[u8], sparky_tfrecord::Error>, at: RecordAt| {
            stats.records += 1;
            let item = match rec {
                Ok(bytes) => match decoder.decode(bytes, row) {
                    Ok(()) => {
                        stats.rows += 1;
                        Item::Row(row)
                    }
                    Err(fault) => Item::Bad(BadRecord { at, kind: BadKind::Row(fault) }),
                },
                Err(e) => Item::Bad(BadRecord { at, kind: BadKind::Checksum(e) }),
            };
            f(item)
        };
        match &self.sources[block.part] {
            Source::Parquet(pq) => {
                pq.read_row_group(path, self.groups[b], decoder, row, &mut stats, f)?;
            }
            Source::Mapped(m) => {
                let bytes = m.bytes();
                let Some(first) =
                    sparky_tfrecord::next_record_start(bytes, block.start as usize, self.opts.max_record_len)
                else {
                    stats.complete = true;
                    return Ok(stats); // no record starts here: the one before runs to the end
                };
                let end = block.end as usize;
                let mut r = SliceReader::new(&bytes[first..])
                    .with_path(path)
                    .with_options(self.opts)
                    .with_start_unnumbered(first as u64);
                let mut stopped = false;
                while (r.offset() as usize) < end {
                    let at = r.offset();
                    let Some(rec) = r.next_record() else { break };
                    let rec = match rec {
                        Ok(bytes) => Ok(bytes),
                        Err(e @ sparky_tfrecord::Error::PayloadChecksum { .. }) => {
                            r.step_over_corrupt_payload();
                            Err(e)
                        }
                        Err(e) => return Err(ReadError::from(e).into()),
                    };
                    let at = RecordAt { path: path.clone(), record: None, offset: Some(at), row_group: None };
                    if handle(&mut stats, rec, at)? == Flow::Stop {
                        stopped = true;
                        break;
                    }
                }
                if !stopped {
                    // The record after the range (where the next block starts)
                    // must be whole: a damaged one there would be passed over by
                    // the next block's search for a record start.
                    if (r.offset() as usize) < bytes.len()
                        && (r.offset() as usize) >= end
                        && let Some(Err(e)) = r.clone().next_record()
                    {
                        return Err(ReadError::from(e).into());
                    }
                    stats.complete = true;
                }
                // Resident memory must not grow with the data: let the pages
                // go, up to the record checked after the range, widened to
                // whole 2 MiB spans: the kernel maps file pages around a fault
                // (fault-around, large folios), and what it mapped of a
                // neighbouring block already read would otherwise stay mapped
                // for the rest of the run (epochs read blocks shuffled).
                let read_to = (r.offset() as usize).max(end);
                let from = block.start as usize & !(RELEASE_SPAN - 1);
                let to = read_to.div_ceil(RELEASE_SPAN) * RELEASE_SPAN;
                m.release(from..to.min(bytes.len()));
            }
            Source::Stream => {
                let mut r = RecordReader::open(path).map_err(ReadError::from)?.with_options(self.opts);
                let mut buf = Vec::new();
                loop {
                    let index = r.records_read();
                    let offset = r.offset();
                    let rec = match r.read_record(&mut buf) {
                        Ok(true) => Ok(buf.as_slice()),
                        Ok(false) => break,
                        Err(e @ sparky_tfrecord::Error::PayloadChecksum { .. }) => {
                            r.step_over_corrupt_payload();
                            Err(e)
                        }
                        Err(e) => return Err(ReadError::from(e).into()),
                    };
                    let at =
                        RecordAt { path: path.clone(), record: Some(index), offset: Some(offset), row_group: None };
                    if handle(&mut stats, rec, at)? == Flow::Stop {
                        return Ok(stats);
                    }
                }
                stats.complete = true;
            }
        }
        Ok(stats)
    }

    /// Checks the records counted per part over a whole pass (`records[i]`
    /// for part `i`) against the rows `_prepare.json` recorded.
    ///
    /// # Errors
    /// [`ReadError::RowCount`] naming the first part that differs.
    pub fn check_counts(&self, records: &[u64]) -> Result<(), ReadError> {
        for (p, &found) in self.parts.iter().zip(records) {
            if let Some(recorded) = p.rows
                && recorded != found
            {
                return Err(ReadError::RowCount { path: p.path.clone(), recorded, found });
            }
        }
        Ok(())
    }

    /// Checks the records counted over a whole pass of part `i` against its
    /// record.
    ///
    /// # Errors
    /// [`ReadError::RowCount`].
    pub fn check_counts_of(&self, i: usize, records: u64) -> Result<(), ReadError> {
        match self.parts[i].rows {
            Some(recorded) if recorded != records => {
                Err(ReadError::RowCount { path: self.parts[i].path.clone(), recorded, found: records })
            }
            _ => Ok(()),
        }
    }

    /// The path of part `i`.
    #[must_use]
    pub fn part_path(&self, i: usize) -> &Path {
        &self.parts[i].path
    }
}
