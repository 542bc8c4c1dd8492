//! Parquet parts, for [`crate::reader::Reader`]: the columns of a file
//! matched to the schema by name, and a row group read into [`Row`]s.
//!
//! A part is mapped and read through [`Bytes`] (no copy); its footer is read
//! when the [`Reader`](crate::reader::Reader) opens it. Each row group is a
//! block: its columns are read side by side in batches of [`BATCH`] rows,
//! each value widened to `i64` (INT32 columns) and nulls marked, then each
//! row is checked like a TFRecord Example ([`RowDecoder::check`]).

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use parquet::basic::Type as Physical;
use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::data_type::{Int32Type, Int64Type};
use parquet::errors::ParquetError;
use parquet::file::reader::{FileReader, RowGroupReader};
use parquet::file::serialized_reader::SerializedFileReader;
use sparky_io::MappedFile;

use crate::reader::{
    BadKind, BadRecord, BlockStats, Flow, ID, IDS, Item, LABEL, ReadError, RecordAt, Row, RowDecoder, RowFault, SLOTS,
    slot_names,
};
use crate::schema::{CAT_FEATURES, MISSING_INT};

/// Rows read from every column before they are handed over as rows.
const BATCH: usize = 1024;

/// The magic bytes at the start and the end of a Parquet file.
pub(crate) const MAGIC: &[u8; 4] = b"PAR1";

/// True for bytes that start and end with Parquet's magic.
pub(crate) fn is_parquet(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && &bytes[..4] == MAGIC && &bytes[bytes.len() - 4..] == MAGIC
}

/// The mapped file, as the owner of a [`Bytes`].
struct Mapped(Arc<MappedFile>);

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        self.0.bytes()
    }
}

/// Where a slot's values are in the file.
#[derive(Debug, Clone, Copy)]
struct Col {
    index: usize,
    int32: bool,
    nullable: bool,
}

/// An open Parquet part.
pub(crate) struct ParquetPart {
    file: SerializedFileReader<Bytes>,
    map: Arc<MappedFile>,
    cols: [Option<Col>; SLOTS],
}

impl ParquetPart {
    /// Maps `path`, reads its footer and matches its columns to the schema.
    pub(crate) fn open(path: &Path, map: MappedFile) -> Result<Self, ReadError> {
        let bytes = map.bytes();
        if !is_parquet(bytes) {
            return Err(ReadError::NotParquet { path: path.to_path_buf(), bytes: bytes.len() as u64 });
        }
        let map = Arc::new(map);
        let file = SerializedFileReader::new(Bytes::from_owner(Mapped(Arc::clone(&map))))
            .map_err(|source| ReadError::Parquet { path: path.to_path_buf(), row_group: None, column: None, source })?;
        let schema = file.metadata().file_metadata().schema_descr();
        let names = slot_names();
        let mut cols = [None; SLOTS];
        for (slot, name) in names.iter().enumerate() {
            let found = schema.columns().iter().position(|c| c.path().parts().len() == 1 && c.name() == *name);
            let Some(index) = found else {
                if slot == LABEL || slot == ID {
                    continue; // optional, as in Examples
                }
                return Err(ReadError::ParquetColumn {
                    path: path.to_path_buf(),
                    column: name,
                    what: "missing (columns are matched by name)".into(),
                });
            };
            let c = schema.column(index);
            let int32 = match c.physical_type() {
                Physical::INT64 => false,
                Physical::INT32 => true,
                other => {
                    return Err(ReadError::ParquetColumn {
                        path: path.to_path_buf(),
                        column: name,
                        what: format!("of physical type {other}, expected INT64 or INT32"),
                    });
                }
            };
            if c.max_rep_level() > 0 {
                return Err(ReadError::ParquetColumn {
                    path: path.to_path_buf(),
                    column: name,
                    what: "repeated, expected one value a row".into(),
                });
            }
            cols[slot] = Some(Col { index, int32, nullable: c.max_def_level() > 0 });
        }
        Ok(Self { file, map, cols })
    }

    /// Row groups.
    pub(crate) fn row_groups(&self) -> usize {
        self.file.num_row_groups()
    }

    /// The byte range of row group `g`'s column chunks.
    pub(crate) fn byte_range(&self, g: usize) -> (u64, u64) {
        let rg = self.file.metadata().row_group(g);
        let mut start = u64::MAX;
        let mut end = 0;
        for c in rg.columns() {
            let (s, len) = c.byte_range();
            start = start.min(s);
            end = end.max(s + len);
        }
        if start > end { (0, 0) } else { (start, end) }
    }

    /// The first row of row group `g` within the file.
    fn first_row(&self, g: usize) -> u64 {
        self.file.metadata().row_groups()[..g].iter().map(|r| r.num_rows().max(0) as u64).sum()
    }

    /// Reads row group `g` into `row`, one row at a time, handing each to `f`.
    pub(crate) fn read_row_group<E: From<ReadError>>(
        &self,
        path: &Path,
        g: usize,
        decoder: &mut RowDecoder,
        row: &mut Row,
        stats: &mut BlockStats,
        mut f: impl FnMut(Item<'_>) -> Result<Flow, E>,
    ) -> Result<(), E> {
        let err = |column: Option<&'static str>, source: ParquetError| ReadError::Parquet {
            path: path.to_path_buf(),
            row_group: Some(g),
            column,
            source,
        };
        let rg = self.file.get_row_group(g).map_err(|e| err(None, e))?;
        let names = slot_names();
        let mut readers: Vec<(usize, ColState)> = Vec::with_capacity(SLOTS);
        for (slot, col) in self.cols.iter().enumerate() {
            if let Some(col) = col {
                readers.push((slot, ColState::new(rg.as_ref(), *col).map_err(|e| err(Some(names[slot]), e))?));
            }
        }
        let rows = rg.metadata().num_rows().max(0) as u64;
        let first = self.first_row(g);
        let mut done = 0u64;
        while done < rows {
            let k = (rows - done).min(BATCH as u64) as usize;
            for (slot, r) in &mut readers {
                let got = r.fill(k).map_err(|e| err(Some(names[*slot]), e))?;
                if got != k {
                    let what = format!("{} rows in the row group, the column ends after {}", rows, done + got as u64);
                    return Err(err(Some(names[*slot]), ParquetError::General(what)).into());
                }
            }
            for i in 0..k {
                let mut label = false;
                let mut id = false;
                let mut null = None;
                for (slot, r) in &readers {
                    let present = r.present(i);
                    row.values[*slot] = if present { r.values[i] } else { MISSING_INT };
                    match *slot {
                        LABEL => label = present,
                        ID => id = present,
                        s if s >= IDS && !present && null.is_none() => null = Some(CAT_FEATURES[s - IDS]),
                        _ => {}
                    }
                }
                let checked = match null {
                    Some(feature) => Err(RowFault::Null { feature }),
                    None => decoder.check(row, label, id),
                };
                stats.records += 1;
                let item = match checked {
                    Ok(()) => {
                        stats.rows += 1;
                        Item::Row(row)
                    }
                    Err(fault) => Item::Bad(BadRecord {
                        at: RecordAt {
                            path: path.to_path_buf(),
                            record: Some(first + done + i as u64),
                            offset: None,
                            row_group: Some(g as u64),
                        },
                        kind: BadKind::Row(fault),
                    }),
                };
                if f(item)? == Flow::Stop {
                    return Ok(());
                }
            }
            done += k as u64;
        }
        stats.complete = true;
        let (s, e) = self.byte_range(g);
        self.map.release(s as usize..e as usize);
        Ok(())
    }
}

/// The values of one column, by batch.
enum Values {
    I64(ColumnReaderImpl<Int64Type>),
    I32(ColumnReaderImpl<Int32Type>, Vec<i32>),
}

struct ColState {
    reader: Values,
    nullable: bool,
    def: Vec<i16>,
    /// The batch's values, nulls included (as placeholders) when nullable.
    values: Vec<i64>,
}

impl ColState {
    fn new(rg: &dyn RowGroupReader, col: Col) -> Result<Self, ParquetError> {
        let reader = match rg.get_column_reader(col.index)? {
            ColumnReader::Int64ColumnReader(r) if !col.int32 => Values::I64(r),
            ColumnReader::Int32ColumnReader(r) if col.int32 => Values::I32(r, Vec::with_capacity(BATCH)),
            _ => return Err(ParquetError::General("the column's type differs from the schema's".into())),
        };
        Ok(Self { reader, nullable: col.nullable, def: Vec::with_capacity(BATCH), values: Vec::with_capacity(BATCH) })
    }

    /// Reads the next `k` rows; returns how many there were.
    fn fill(&mut self, k: usize) -> Result<usize, ParquetError> {
        self.values.clear();
        self.def.clear();
        let mut rows = 0;
        while rows < k {
            let def = if self.nullable { Some(&mut self.def) } else { None };
            let (n, _, _) = match &mut self.reader {
                Values::I64(r) => r.read_records(k - rows, def, None, &mut self.values)?,
                Values::I32(r, buf) => {
                    let start = buf.len();
                    let out = r.read_records(k - rows, def, None, buf)?;
                    self.values.extend(buf[start..].iter().map(|&v| i64::from(v)));
                    out
                }
            };
            if n == 0 {
                break;
            }
            rows += n;
        }
        if let Values::I32(_, buf) = &mut self.reader {
            buf.clear();
        }
        if self.nullable {
            // Spread the packed values over the rows, nulls where the
            // definition level says so.
            if self.def.len() != rows {
                return Err(ParquetError::General(format!("{} definition levels for {rows} rows", self.def.len())));
            }
            let present = self.def.iter().filter(|&&d| d > 0).count();
            if present != self.values.len() {
                return Err(ParquetError::General(format!("{} values for {present} non-null rows", self.values.len())));
            }
            self.values.resize(rows, 0);
            let mut v = present;
            for i in (0..rows).rev() {
                if self.def[i] > 0 {
                    v -= 1;
                    self.values[i] = self.values[v];
                }
            }
        } else if self.values.len() != rows {
            return Err(ParquetError::General(format!("{} values for {rows} rows", self.values.len())));
        }
        Ok(rows)
    }

    #[inline]
    fn present(&self, i: usize) -> bool {
        !self.nullable || self.def[i] > 0
    }
}

/// Names `path`'s parts in errors, for the `ReadError` variants.
pub(crate) fn describe(path: &Path, row_group: Option<usize>, column: Option<&str>) -> String {
    let mut s = path.display().to_string();
    if let Some(g) = row_group {
        s.push_str(&format!(": row group {g}"));
    }
    if let Some(c) = column {
        s.push_str(&format!(", column \"{c}\""));
    }
    s
}
