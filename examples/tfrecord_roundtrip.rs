//! Writes Criteo-style `tf.train.Example` records to TFRecord files, plain and
//! GZIP-compressed, and reads them back three ways.

use prost::Message as _;
use sparky_tfrecord::example::{ExampleView, Int64ExampleEncoder, Int64SchemaDecoder};
use sparky_tfrecord::{Compression, FileWriter, MappedFile, RecordReader};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let names = ["clicked", "integer-feature-1", "categorical-feature-1"];
    let encoder = Int64ExampleEncoder::new(&names);
    let rows = [[1i64, 5, 3], [0, -10, 1], [0, 42, 0]];

    // Write: one atomic file per compression; the name says the compression.
    let mut buf = Vec::new();
    for name in ["part-r-00000.tfrecord", "part-r-00001.tfrecord.gz"] {
        let path = dir.path().join(name);
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
    let mapped = MappedFile::open(dir.path().join("part-r-00000.tfrecord"))?;
    for (i, record) in mapped.records().enumerate() {
        decoder.decode(record?, &mut row)?;
        assert_eq!(row, rows[i]);
    }
    // Read 2: streaming through the GZIP decoder, into a caller-owned buffer.
    let mut reader = RecordReader::open(dir.path().join("part-r-00001.tfrecord.gz"))?;
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
