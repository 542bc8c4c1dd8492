//! Writes Criteo-style `tf.train.Example` records to TFRecord files, plain,
//! GZIP- and ZLIB-compressed, and reads them back three ways.
//!
//! With a folder argument the files are kept there (for example to check them
//! with TensorFlow: `tf_check.py records FOLDER/*`).

use prost::Message as _;
use sparky_io::MappedFile;
use sparky_tfrecord::example::{ExampleView, Int64ExampleEncoder, Int64SchemaDecoder};
use sparky_tfrecord::{Compression, FileWriter, RecordReader, SliceReader};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let temp = tempfile::tempdir()?;
    let dir_arg = std::env::args_os().nth(1).map(std::path::PathBuf::from);
    if let Some(d) = &dir_arg {
        std::fs::create_dir_all(d)?;
    }
    let dir = dir_arg.as_deref().unwrap_or(temp.path());
    let names = ["clicked", "integer-feature-1", "categorical-feature-1"];
    let encoder = Int64ExampleEncoder::new(&names);
    let rows = [[1i64, 5, 3], [0, -10, 1], [0, 42, 0]];

    // Write: one atomic file per compression; the name says the compression.
    let mut buf = Vec::new();
    for name in ["part-r-00000.tfrecord", "part-r-00001.tfrecord.gz", "part-r-00002.tfrecord.zlib"] {
        let path = dir.join(name);
        let mut w = FileWriter::create(&path, Compression::from_path(&path))?;
        for row in &rows {
            buf.clear();
            encoder.encode(row, &mut buf);
            w.write_record(&buf)?;
        }
        let s = w.finish()?;
        println!("wrote {name}: {} records, {} bytes on disk", s.records, s.file_bytes);
    }

    // Read 1: memory-mapped, zero-copy, decoded into a reused row.
    let mut decoder = Int64SchemaDecoder::new(&names);
    let mut row = [0i64; 3];
    let mapped = MappedFile::open(dir.join("part-r-00000.tfrecord"))?;
    for (i, record) in SliceReader::new(mapped.bytes()).with_path(mapped.path()).enumerate() {
        decoder.decode(record?, &mut row)?;
        assert_eq!(row, rows[i]);
    }
    // Read 2: streaming through the GZIP decoder, into a caller-owned buffer.
    let mut reader = RecordReader::open(dir.join("part-r-00001.tfrecord.gz"))?;
    let mut n = 0;
    while reader.read_record(&mut buf)? {
        // Read 3: the borrowed view, or prost's owned message.
        for entry in ExampleView::new(&buf).features() {
            let (name, feature) = entry?;
            let values = feature.as_int64().map(sparky_tfrecord::example::ValueList::int64s).unwrap_or_default();
            println!("record {n}: {name} = {values:?}");
        }
        let owned = sparky_tfrecord::proto::Example::decode(buf.as_slice())?;
        assert_eq!(owned.features.map(|f| f.feature.len()), Some(3));
        n += 1;
    }
    assert_eq!(n, rows.len());
    println!("read {n} records back from each file");
    Ok(())
}
