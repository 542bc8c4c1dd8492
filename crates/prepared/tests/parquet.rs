//! Parquet parts through the one reader: files laid out as Spark or pandas
//! write them (written here with the parquet crate, and one by pyarrow in
//! `tests/data`), counts checked against `_prepare.json`, and errors that
//! name the file, the row group and the column.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::{Repetition, Type as Physical};
use parquet::data_type::{FloatType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use sparky_io::{Access, SUCCESS_FILE};
use sparky_prepared::folder::{PREPARED_FILE, PREPARED_FORMAT, PREPARED_VERSION};
use sparky_prepared::reader::BLOCK_BYTES;
use sparky_prepared::schema::{CAT_FEATURES, INT_FEATURES, MISSING_INT, Mode, NUM_CAT, NUM_INT};
use sparky_prepared::{
    ArtifactRef, Flow, Item, OpenOptions, PartCompression, PartFormat, PartInfo, PreparedDir, PreparedManifest,
    ReadError, Reader, Row, RowDecoder,
};

/// How a test column is stored.
#[derive(Clone, Copy)]
enum Kind {
    I64,
    I32,
    F32,
}

/// One column of a test file: its name, type, and values (`None`: null;
/// a column with a null is written OPTIONAL, all columns when `nullable`).
struct Column {
    name: String,
    kind: Kind,
    values: Vec<Option<i64>>,
}

/// Writes `columns` in row groups of `group` rows.
fn write_parquet(path: &Path, columns: &[Column], group: usize, nullable: bool) {
    let fields = columns
        .iter()
        .map(|c| {
            let physical = match c.kind {
                Kind::I64 => Physical::INT64,
                Kind::I32 => Physical::INT32,
                Kind::F32 => Physical::FLOAT,
            };
            let optional = nullable || c.values.iter().any(Option::is_none);
            let rep = if optional { Repetition::OPTIONAL } else { Repetition::REQUIRED };
            Arc::new(Type::primitive_type_builder(&c.name, physical).with_repetition(rep).build().unwrap())
        })
        .collect();
    let schema = Arc::new(Type::group_type_builder("spark_schema").with_fields(fields).build().unwrap());
    let file = std::fs::File::create(path).unwrap();
    let mut w = SerializedFileWriter::new(file, schema, WriterProperties::builder().build().into()).unwrap();
    let rows = columns[0].values.len();
    for start in (0..rows).step_by(group) {
        let end = (start + group).min(rows);
        let mut rg = w.next_row_group().unwrap();
        for c in columns {
            let vals = &c.values[start..end];
            let optional = nullable || c.values.iter().any(Option::is_none);
            let def: Vec<i16> = vals.iter().map(|v| i16::from(v.is_some())).collect();
            let def = optional.then_some(def.as_slice());
            let present = vals.iter().flatten();
            let mut cw = rg.next_column().unwrap().unwrap();
            match c.kind {
                Kind::I64 => {
                    let v: Vec<i64> = present.copied().collect();
                    cw.typed::<Int64Type>().write_batch(&v, def, None).unwrap();
                }
                Kind::I32 => {
                    let v: Vec<i32> = present.map(|&x| x as i32).collect();
                    cw.typed::<Int32Type>().write_batch(&v, def, None).unwrap();
                }
                Kind::F32 => {
                    let v: Vec<f32> = present.map(|&x| x as f32).collect();
                    cw.typed::<FloatType>().write_batch(&v, def, None).unwrap();
                }
            }
            cw.close().unwrap();
        }
        rg.close().unwrap();
    }
    w.close().unwrap();
}

/// The expected values of row `i`: (label, ints, ids); integer `k` is null
/// (missing) in every 7th row when `k` is a multiple of 4.
fn expected(i: i64) -> (bool, [i64; NUM_INT], [i64; NUM_CAT]) {
    let ints = std::array::from_fn(|k| if k % 4 == 0 && i % 7 == 3 { MISSING_INT } else { i * 3 + k as i64 - 5 });
    let ids = std::array::from_fn(|k| (i + k as i64) % 4);
    (i % 2 == 1, ints, ids)
}

/// The columns of `rows` rows the way Spark or pandas might write them:
/// categoricals first, integers reversed, some INT32, nulls for missing
/// integers, the label last, and an extra FLOAT column.
fn foreign_columns(rows: i64) -> Vec<Column> {
    let mut cols = Vec::new();
    cols.push(Column { name: "score".into(), kind: Kind::F32, values: (0..rows).map(|i| Some(i % 10)).collect() });
    for (k, name) in CAT_FEATURES.iter().enumerate() {
        let kind = if k % 2 == 0 { Kind::I32 } else { Kind::I64 };
        cols.push(Column { name: (*name).into(), kind, values: (0..rows).map(|i| Some(expected(i).2[k])).collect() });
    }
    for (k, name) in INT_FEATURES.iter().enumerate().rev() {
        let kind = if k % 3 == 0 { Kind::I32 } else { Kind::I64 };
        let values = (0..rows).map(|i| Some(expected(i).1[k]).filter(|&v| v != MISSING_INT)).collect();
        cols.push(Column { name: (*name).into(), kind, values });
    }
    cols.push(Column { name: "clicked".into(), kind: Kind::I32, values: (0..rows).map(|i| Some(i % 2)).collect() });
    cols
}

/// A folder as Spark leaves it: the part and `_SUCCESS`, no `_prepare.json`.
fn spark_folder(tmp: &Path, columns: &[Column], group: usize) -> PathBuf {
    let dir = tmp.join("spark");
    std::fs::create_dir_all(&dir).unwrap();
    write_parquet(&dir.join("part-00000-c000.snappy.parquet"), columns, group, true);
    std::fs::write(dir.join(SUCCESS_FILE), b"").unwrap();
    dir
}

fn open_any(dir: &Path) -> Result<Reader, ReadError> {
    let d = PreparedDir::open(dir, OpenOptions { allow_incomplete: true }).unwrap();
    Reader::new(&d, BLOCK_BYTES, Access::Normal)
}

/// What a whole pass read: rows, bad records, records per part.
type Pass = (Vec<Row>, Vec<String>, Vec<u64>);

fn read_all(reader: &Reader, decoder: &mut RowDecoder) -> Result<Pass, ReadError> {
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    let mut counts = vec![0u64; reader.parts().len()];
    let mut row = Row::default();
    for b in 0..reader.blocks().len() {
        let stats = reader.read_block(b, decoder, &mut row, |item| {
            match item {
                Item::Row(r) => rows.push(r.clone()),
                Item::Bad(b) => bad.push(b.to_string()),
            }
            Ok::<_, ReadError>(Flow::Continue)
        })?;
        assert!(stats.complete);
        counts[stats.part] += stats.records;
    }
    Ok((rows, bad, counts))
}

#[test]
fn a_foreign_layout_reads_by_column_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = spark_folder(tmp.path(), &foreign_columns(2500), 1000);
    let reader = open_any(&dir).unwrap();
    assert_eq!(reader.blocks().len(), 3, "a block per row group");
    let (rows, bad, counts) = read_all(&reader, &mut RowDecoder::new(Some([3; NUM_CAT])).labelled()).unwrap();
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(counts, [2500]);
    for (i, r) in rows.iter().enumerate() {
        let (label, ints, ids) = expected(i as i64);
        assert_eq!((r.label(), r.id(), r.ints(), r.ids()), (Some(label), None, &ints, &ids), "row {i}");
    }
    assert!(rows.iter().any(|r| r.ints()[0] == MISSING_INT), "nulls are the missing value");
}

#[test]
fn bad_values_are_records_naming_the_row_group_and_row() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cols = foreign_columns(300);
    // Row 150 (row group 1, row 150 of the file): a null vocabulary id;
    // row 260: a label of 2; row 270: an id above the vocabulary.
    let c3 = cols.iter_mut().find(|c| c.name == "categorical-feature-3").unwrap();
    c3.values[150] = None;
    c3.values[270] = Some(9);
    cols.iter_mut().find(|c| c.name == "clicked").unwrap().values[260] = Some(2);
    let dir = spark_folder(tmp.path(), &cols, 100);
    let (rows, bad, counts) =
        read_all(&open_any(&dir).unwrap(), &mut RowDecoder::new(Some([3; NUM_CAT])).labelled()).unwrap();
    assert_eq!((rows.len(), counts[0]), (297, 300));
    assert_eq!(bad.len(), 3, "{bad:?}");
    assert!(bad[0].contains("part-00000-c000.snappy.parquet: row group 1, row 150"), "{}", bad[0]);
    assert!(bad[0].contains("categorical-feature-3 is null"), "{}", bad[0]);
    assert!(bad[1].contains("row group 2, row 260") && bad[1].contains("clicked"), "{}", bad[1]);
    assert!(bad[2].contains("row 270") && bad[2].contains("categorical-feature-3 is 9"), "{}", bad[2]);
}

#[test]
fn columns_that_do_not_fit_are_refused_naming_file_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    // A float where an integer is expected.
    let mut cols = foreign_columns(10);
    cols.iter_mut().find(|c| c.name == "integer-feature-7").unwrap().kind = Kind::F32;
    let dir = spark_folder(tmp.path(), &cols, 10);
    let e = open_any(&dir).unwrap_err();
    assert!(matches!(&e, ReadError::ParquetColumn { column: "integer-feature-7", .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("part-00000-c000.snappy.parquet") && msg.contains("FLOAT"), "{msg}");
    // A missing column.
    let mut cols = foreign_columns(10);
    cols.retain(|c| c.name != "categorical-feature-26");
    let dir = spark_folder(tmp.path(), &cols, 10);
    let e = open_any(&dir).unwrap_err().to_string();
    assert!(e.contains("column \"categorical-feature-26\" missing"), "{e}");
    // No label: a labelled read refuses each row; an unlabelled one reads them.
    let mut cols = foreign_columns(10);
    cols.retain(|c| c.name != "clicked");
    let dir = spark_folder(tmp.path(), &cols, 10);
    let reader = open_any(&dir).unwrap();
    let (_, bad, _) = read_all(&reader, &mut RowDecoder::new(None).labelled()).unwrap();
    assert_eq!(bad.len(), 10);
    assert!(bad[0].contains("clicked"), "{}", bad[0]);
    let (rows, bad, _) = read_all(&reader, &mut RowDecoder::new(None)).unwrap();
    assert_eq!((rows.len(), bad.len(), rows[0].label()), (10, 0, None));
}

#[test]
fn damaged_files_are_refused_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = spark_folder(tmp.path(), &foreign_columns(500), 100);
    let part = dir.join("part-00000-c000.snappy.parquet");
    let good = std::fs::read(&part).unwrap();
    // Truncated: the footer's magic is gone.
    std::fs::write(&part, &good[..good.len() - 100]).unwrap();
    let e = open_any(&dir).unwrap_err();
    assert!(matches!(e, ReadError::NotParquet { .. }), "{e:?}");
    assert!(e.to_string().contains("part-00000-c000.snappy.parquet: not a Parquet file"), "{e}");
    // Bad magic at the start.
    let mut bytes = good.clone();
    bytes[..4].copy_from_slice(b"PAR0");
    std::fs::write(&part, &bytes).unwrap();
    assert!(matches!(open_any(&dir).unwrap_err(), ReadError::NotParquet { .. }));
    // A damaged footer length.
    let mut bytes = good.clone();
    let n = bytes.len();
    bytes[n - 8..n - 4].copy_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(&part, &bytes).unwrap();
    let e = open_any(&dir).unwrap_err();
    assert!(matches!(&e, ReadError::Parquet { row_group: None, .. }), "{e:?}");
    // Damaged column data: the error names the row group and the column.
    let mut bytes = good.clone();
    let reader = {
        std::fs::write(&part, &good).unwrap();
        open_any(&dir).unwrap()
    };
    let b = reader.blocks()[2];
    drop(reader);
    for x in &mut bytes[b.start as usize..b.end as usize] {
        *x = 0xff;
    }
    std::fs::write(&part, &bytes).unwrap();
    let e = read_all(&open_any(&dir).unwrap(), &mut RowDecoder::new(None)).unwrap_err();
    assert!(matches!(&e, ReadError::Parquet { row_group: Some(2), .. }), "{e:?}");
    assert!(e.to_string().contains("part-00000-c000.snappy.parquet: row group 2"), "{e}");
}

#[test]
fn counts_are_checked_against_the_record() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("prepared");
    std::fs::create_dir_all(&dir).unwrap();
    let cols = foreign_columns(40);
    let name = "part-r-00000.parquet";
    write_parquet(&dir.join(name), &cols, 16, false);
    let bytes = std::fs::metadata(dir.join(name)).unwrap().len();
    let m = PreparedManifest {
        format: PREPARED_FORMAT.into(),
        format_version: PREPARED_VERSION,
        created_by: "test".into(),
        mode: Mode::Evaluate,
        artifacts: ArtifactRef { dir: tmp.path().join("model"), manifest_crc32c: 0 },
        inputs: vec!["x.tsv".into()],
        lines: 41,
        rows: 41,
        rejected: 0,
        first_line: 0,
        output_format: PartFormat::Parquet,
        compression: PartCompression::None,
        parts: vec![PartInfo { file: name.into(), rows: 41, bytes }],
    };
    std::fs::write(dir.join(PREPARED_FILE), m.to_json()).unwrap();
    std::fs::write(dir.join(SUCCESS_FILE), b"").unwrap();
    let d = PreparedDir::open(&dir, OpenOptions::default()).unwrap();
    let reader = Reader::new(&d, BLOCK_BYTES, Access::Sequential).unwrap();
    assert_eq!(reader.blocks().len(), 3);
    let (_, _, counts) = read_all(&reader, &mut RowDecoder::new(None)).unwrap();
    let e = reader.check_counts(&counts).unwrap_err();
    assert!(matches!(e, ReadError::RowCount { recorded: 41, found: 40, .. }), "{e:?}");
}

/// `tests/data/pyarrow-foreign.parquet`, written by pyarrow (see the
/// README there): snappy, every column nullable, columns reversed, INT32 and
/// INT64, an extra string column, row groups of 5 of 12 rows.
#[test]
fn a_file_pyarrow_wrote_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pandas");
    std::fs::create_dir_all(&dir).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pyarrow-foreign.parquet");
    std::fs::copy(fixture, dir.join("part-0.parquet")).unwrap();
    let reader = open_any(&dir).unwrap();
    assert_eq!(reader.blocks().len(), 3);
    let (rows, bad, counts) = read_all(&reader, &mut RowDecoder::new(Some([4; NUM_CAT])).labelled()).unwrap();
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(counts, [12]);
    for (i, r) in rows.iter().enumerate() {
        let i = i as i64;
        let ints: [i64; NUM_INT] = std::array::from_fn(|k| {
            let j = k as i64 + 1;
            if j % 3 == 0 && j % 12 == i { MISSING_INT } else { i * 13 + j }
        });
        let ids: [i64; NUM_CAT] = std::array::from_fn(|k| (i * 7 + k as i64 + 1) % 5);
        assert_eq!((r.label(), r.ints(), r.ids()), (Some(i % 2 == 1), &ints, &ids), "row {i}");
    }
}
