//! The prepared-folder checks and the reader, on folders written here the way
//! criteo-prepare writes them.

use std::path::{Path, PathBuf};

use sparky_io::{Access, SUCCESS_FILE};
use sparky_prepared::artifacts::{self, COUNTS_FILE, CSV_HEADER, MANIFEST_FILE, Manifest};
use sparky_prepared::folder::{PREPARED_FILE, PREPARED_FORMAT, PREPARED_VERSION};
use sparky_prepared::schema::{CAT_FEATURES, Mode, NUM_CAT, NUM_INT};
use sparky_prepared::{
    ArtifactRef, BadKind, Flow, Item, OpenOptions, PartCompression, PartFormat, PartInfo, PreparedDir, PreparedError,
    PreparedManifest, ReadError, Reader, Row, RowDecoder, RowFault,
};
use sparky_tfrecord::example::Int64ExampleEncoder;
use sparky_tfrecord::{Compression, RecordWriter};

/// Writes artifacts with vocabularies of `size` values per feature.
fn write_artifacts(dir: &Path, size: u64) -> u32 {
    std::fs::create_dir_all(dir).unwrap();
    let mut csv = format!("{CSV_HEADER}\n");
    for name in CAT_FEATURES {
        for r in 1..=size {
            csv.push_str(&format!("{name},{r:08x},{},{r}\n", 1000 - r));
        }
    }
    let m = Manifest::new(&[size; NUM_CAT], 100, 0, 1, csv.as_bytes());
    std::fs::write(dir.join(COUNTS_FILE), &csv).unwrap();
    let json = m.to_json();
    std::fs::write(dir.join(MANIFEST_FILE), &json).unwrap();
    crc32c::crc32c(&json)
}

/// The values of row `i` of a prepared folder in `mode`.
fn values(mode: Mode, i: i64) -> Vec<i64> {
    let mut v = vec![if mode.labelled() { i % 2 } else { 1000 + i }];
    v.extend((0..NUM_INT as i64).map(|k| (i * 7 + k) % 50 - 10));
    v.extend((0..NUM_CAT as i64).map(|k| (i + k) % 4));
    v
}

/// Writes a complete prepared folder of `parts` parts of `rows` rows each
/// (part 1 GZIP-compressed when `gzip`), as criteo-prepare would.
fn write_prepared(dir: &Path, artifacts_dir: &Path, crc: u32, mode: Mode, parts: usize, rows: i64, gzip: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let enc = Int64ExampleEncoder::new(&mode.feature_names());
    let mut infos = Vec::new();
    let mut buf = Vec::new();
    for p in 0..parts {
        let compression = if gzip && p == 1 { Compression::Gzip } else { Compression::None };
        let name = format!("part-r-{p:05}.tfrecord{}", if compression == Compression::Gzip { ".gz" } else { "" });
        let mut w = RecordWriter::new(compression.encoder(Vec::new()));
        for i in 0..rows {
            buf.clear();
            enc.encode(&values(mode, p as i64 * rows + i), &mut buf);
            w.write_record(&buf).unwrap();
        }
        let bytes = w.into_inner().unwrap().finish().unwrap();
        std::fs::write(dir.join(&name), &bytes).unwrap();
        infos.push(PartInfo { file: name, rows: rows as u64, bytes: bytes.len() as u64 });
    }
    let m = PreparedManifest {
        format: PREPARED_FORMAT.into(),
        format_version: PREPARED_VERSION,
        created_by: "test".into(),
        mode,
        artifacts: ArtifactRef { dir: artifacts_dir.to_path_buf(), manifest_crc32c: crc },
        inputs: vec!["x.tsv".into()],
        lines: parts as u64 * rows as u64,
        rows: parts as u64 * rows as u64,
        rejected: 0,
        first_line: 0,
        output_format: PartFormat::Tfrecord,
        compression: if gzip { PartCompression::Gzip } else { PartCompression::None },
        parts: infos,
    };
    std::fs::write(dir.join(PREPARED_FILE), m.to_json()).unwrap();
    std::fs::write(dir.join(SUCCESS_FILE), b"").unwrap();
}

struct Fixture {
    _tmp: tempfile::TempDir,
    model: PathBuf,
    data: PathBuf,
}

fn fixture(gzip: bool) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    let data = tmp.path().join("train");
    let crc = write_artifacts(&model, 3);
    write_prepared(&data, &model, crc, Mode::Train, 3, 2000, gzip);
    Fixture { _tmp: tmp, model, data }
}

fn open(dir: &Path) -> Result<PreparedDir, PreparedError> {
    PreparedDir::open(dir, OpenOptions::default())
}

/// What a whole pass read: rows, bad records, records per part.
type Pass = (Vec<Row>, Vec<String>, Vec<u64>);

/// Reads every block in order.
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
fn a_complete_folder_reads_every_row_once_in_order() {
    for gzip in [false, true] {
        let f = fixture(gzip);
        let dir = open(&f.data).unwrap();
        assert_eq!(dir.mode(), Some(Mode::Train));
        assert_eq!(dir.recorded_rows(), Some(6000));
        let a = dir.artifacts().unwrap().unwrap();
        assert_eq!(a.sizes(), [3; NUM_CAT]);
        // Small blocks: records straddle block boundaries.
        let reader = Reader::new(&dir, 4096, Access::Normal).unwrap();
        assert!(reader.blocks().len() > 10);
        let mut decoder = RowDecoder::new(Some(a.sizes())).labelled();
        let (rows, bad, counts) = read_all(&reader, &mut decoder).unwrap();
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(rows.len(), 6000);
        for (i, r) in rows.iter().enumerate() {
            let v = values(Mode::Train, i as i64);
            assert_eq!(r.label(), Some(v[0] == 1));
            assert_eq!(r.id(), None);
            assert_eq!(&r.ints()[..], &v[1..=NUM_INT]);
            assert_eq!(&r.ids()[..], &v[1 + NUM_INT..]);
        }
        reader.check_counts(&counts).unwrap();
        let e = reader.check_counts(&[2000, 1999, 2000]).unwrap_err();
        assert!(matches!(e, ReadError::RowCount { recorded: 2000, found: 1999, .. }), "{e}");
    }
}

#[test]
fn altered_folders_are_refused_naming_the_file() {
    let f = fixture(false);
    let part = |n: usize| f.data.join(format!("part-r-{n:05}.tfrecord"));

    // Truncated at a record boundary: the size differs.
    let bytes = std::fs::read(part(1)).unwrap();
    std::fs::write(part(1), &bytes[..bytes.len() / 2]).unwrap();
    let e = open(&f.data).unwrap_err();
    assert!(matches!(e, PreparedError::PartSize { .. }), "{e}");
    assert!(e.to_string().contains("part-r-00001.tfrecord"), "{e}");
    // With --allow-incomplete the parts present are read, without a record of their rows.
    let d = PreparedDir::open(&f.data, OpenOptions { allow_incomplete: true }).unwrap();
    assert_eq!(d.parts().len(), 3);
    assert_eq!(d.recorded_rows(), None);
    std::fs::write(part(1), &bytes).unwrap();
    open(&f.data).unwrap();

    // Deleted.
    std::fs::remove_file(part(2)).unwrap();
    let e = open(&f.data).unwrap_err();
    assert!(matches!(&e, PreparedError::MissingPart { part, .. } if part == "part-r-00002.tfrecord"), "{e}");
    std::fs::write(part(2), b"").unwrap();
    assert!(matches!(open(&f.data), Err(PreparedError::PartSize { found: 0, .. })));
    std::fs::remove_file(part(2)).unwrap();

    // A foreign part.
    let f = fixture(false);
    std::fs::copy(f.data.join("part-r-00000.tfrecord"), f.data.join("part-r-00009.tfrecord")).unwrap();
    let e = open(&f.data).unwrap_err();
    assert!(matches!(e, PreparedError::UnlistedPart { .. }), "{e}");
    assert!(e.to_string().contains("part-r-00009.tfrecord"), "{e}");
    std::fs::remove_file(f.data.join("part-r-00009.tfrecord")).unwrap();

    // A part that is a folder: refused even with --allow-incomplete.
    std::fs::create_dir(f.data.join("part-r-00010")).unwrap();
    for opts in [OpenOptions::default(), OpenOptions { allow_incomplete: true }] {
        let e = PreparedDir::open(&f.data, opts).unwrap_err();
        assert!(matches!(e, PreparedError::PartNotAFile { what: "a folder", .. }), "{e}");
    }
    std::fs::remove_dir(f.data.join("part-r-00010")).unwrap();

    // No _SUCCESS: a run that did not finish.
    std::fs::remove_file(f.data.join(SUCCESS_FILE)).unwrap();
    let e = open(&f.data).unwrap_err();
    assert!(matches!(e, PreparedError::Incomplete(_)), "{e}");
    assert!(e.to_string().contains("did not finish"), "{e}");
    std::fs::write(f.data.join(SUCCESS_FILE), b"").unwrap();

    // A damaged _prepare.json names itself.
    let mpath = f.data.join(PREPARED_FILE);
    let json = std::fs::read_to_string(&mpath).unwrap();
    std::fs::write(&mpath, &json[..json.len() - 20]).unwrap();
    let e = open(&f.data).unwrap_err();
    assert!(matches!(e, PreparedError::ManifestJson { .. }), "{e}");
    assert!(e.to_string().contains(PREPARED_FILE), "{e}");
    std::fs::write(&mpath, json.replace("\"format_version\": 1", "\"format_version\": \"1\"")).unwrap();
    let e = open(&f.data).unwrap_err();
    assert!(e.to_string().contains("format version \"1\""), "{e}");
    std::fs::write(&mpath, json.replace("\"mode\": \"train\"", "\"mode\": \"guess\"")).unwrap();
    assert!(matches!(open(&f.data), Err(PreparedError::ManifestJson { .. })));
    std::fs::write(&mpath, json.replace("part-r-00000.tfrecord", "../x")).unwrap();
    assert!(matches!(open(&f.data), Err(PreparedError::BadManifest { .. })));
    std::fs::remove_file(&mpath).unwrap();
    let e = open(&f.data).unwrap_err();
    assert!(matches!(e, PreparedError::NoManifest(_)), "{e}");
    assert!(e.to_string().contains("--allow-incomplete"), "{e}");
}

#[test]
fn artifacts_are_verified_once_and_matched_by_checksum() {
    let f = fixture(false);
    // The artifacts missing.
    std::fs::rename(&f.model, f.model.with_extension("moved")).unwrap();
    let dir = open(&f.data).unwrap();
    let e = dir.artifacts().unwrap_err();
    assert!(matches!(e, PreparedError::Artifacts(artifacts::ArtifactError::Missing { .. })), "{e}");
    assert!(e.to_string().contains("model"), "{e}");
    std::fs::rename(f.model.with_extension("moved"), &f.model).unwrap();

    // The artifacts' CSV altered: their own checksum catches it.
    let csv = f.model.join(COUNTS_FILE);
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(&csv, text.replacen(",999,", ",998,", 1)).unwrap();
    let e = dir.artifacts().unwrap_err();
    assert!(e.to_string().contains(COUNTS_FILE), "{e}");
    std::fs::write(&csv, &text).unwrap();

    // Other artifacts, intact, written over these: the recorded checksum differs.
    write_artifacts(&f.model, 2);
    let e = dir.artifacts().unwrap_err();
    assert!(matches!(e, PreparedError::OtherArtifacts { .. }), "{e}");
    assert!(e.to_string().contains("prepared with other artifacts"), "{e}");
}

#[test]
fn bad_records_are_handed_over_with_their_positions() {
    let f = fixture(false);
    let dir = open(&f.data).unwrap();
    let part0 = f.data.join("part-r-00000.tfrecord");
    let mut bytes = std::fs::read(&part0).unwrap();
    // Flip a payload byte of record 3 (records of one part have equal lengths here? find it by walking).
    let offsets: Vec<usize> = {
        let mut v = Vec::new();
        let mut p = 0;
        while p < bytes.len() {
            v.push(p);
            let len = u64::from_le_bytes(bytes[p..p + 8].try_into().unwrap()) as usize;
            p += 16 + len;
        }
        v
    };
    bytes[offsets[3] + 20] ^= 0x01;
    std::fs::write(&part0, &bytes).unwrap();
    let reader = Reader::new(&dir, 1 << 20, Access::Sequential).unwrap();
    let mut decoder = RowDecoder::new(Some([3; NUM_CAT]));
    let (rows, bad, counts) = read_all(&reader, &mut decoder).unwrap();
    assert_eq!(rows.len(), 5999);
    assert_eq!(bad.len(), 1);
    assert!(bad[0].contains(&format!("part-r-00000.tfrecord: record at byte {}", offsets[3])), "{bad:?}");
    assert!(bad[0].contains("checksum"), "{bad:?}");
    reader.check_counts(&counts).unwrap();

    // Ids beyond the vocabulary (2 values per feature where ids go to 3).
    let mut decoder = RowDecoder::new(Some([2; NUM_CAT]));
    let mut row = Row::default();
    let mut first = None;
    reader
        .read_block(1, &mut decoder, &mut row, |item| {
            if let Item::Bad(b) = item
                && let BadKind::Row(RowFault::Id { feature, value, size }) = b.kind
            {
                first.get_or_insert((feature, value, size));
            }
            Ok::<_, ReadError>(Flow::Continue)
        })
        .unwrap();
    assert_eq!(first.map(|x| (x.1, x.2)), Some((3, 2)));

    // Damaged framing (a length field) is an error, not a bad row.
    let mut bytes = std::fs::read(&part0).unwrap();
    bytes[offsets[5]] ^= 0x01;
    std::fs::write(&part0, &bytes).unwrap();
    let e = read_all(&reader, &mut RowDecoder::new(None)).unwrap_err();
    assert!(matches!(e, ReadError::Record(sparky_tfrecord::Error::LengthChecksum { .. })), "{e}");
}

#[test]
fn predict_mode_rows_carry_ids_and_are_refused_where_labels_are_needed() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    let crc = write_artifacts(&model, 3);
    let data = tmp.path().join("test");
    write_prepared(&data, &model, crc, Mode::Predict, 2, 10, false);
    let dir = open(&data).unwrap();
    let e = dir.require_labels("training needs labelled data").unwrap_err();
    assert!(e.to_string().contains("prepared in predict mode"), "{e}");
    let reader = Reader::new(&dir, 1 << 20, Access::Sequential).unwrap();
    let (rows, bad, _) = read_all(&reader, &mut RowDecoder::new(None)).unwrap();
    assert!(bad.is_empty());
    assert_eq!(rows.iter().map(|r| r.id().unwrap()).collect::<Vec<_>>(), (1000..1020).collect::<Vec<_>>());
    let (rows, bad, _) = read_all(&reader, &mut RowDecoder::new(None).labelled()).unwrap();
    assert!(rows.is_empty());
    assert_eq!(bad.len(), 20);

    // Files given one by one: listed parts of one complete folder.
    let one = vec![data.join("part-r-00001.tfrecord")];
    let d = PreparedDir::open_files(&one, OpenOptions::default()).unwrap();
    assert_eq!(d.parts().len(), 1);
    assert_eq!(d.recorded_rows(), Some(10));
    std::fs::write(data.join("part-r-00007.tfrecord"), b"").unwrap();
    let e = PreparedDir::open_files(&[data.join("part-r-00007.tfrecord")], OpenOptions::default()).unwrap_err();
    assert!(matches!(e, PreparedError::UnlistedPart { .. }), "{e}");
}
