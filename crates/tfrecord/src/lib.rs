//! TFRecord files, exactly as TensorFlow reads and writes them, and fast
//! `tf.train.Example` codecs.
//!
//! A TFRecord file is a sequence of records, each framed as
//!
//! ```text
//! u64 length (little-endian) | u32 masked CRC32C of the length | payload | u32 masked CRC32C of the payload
//! ```
//!
//! where the mask is `((crc >> 15) | (crc << 17)) + 0xa282ead8`. A whole file
//! may be GZIP or ZLIB compressed ([`Compression`]).
//!
//! What this crate offers:
//!
//! - [`RecordReader`]: streams records out of any reader (files, pipes,
//!   decompressors) into a buffer the caller owns: no allocation per record.
//! - [`SliceReader`]: records of a byte slice (a memory-mapped file:
//!   `sparky_io::MappedFile`) as borrowed `&[u8]`, with no copy.
//! - Both verify both checksums by default, refuse a length above a limit
//!   before allocating, and report every fault with its file, record number
//!   and byte offset ([`Error`]). A stream that ends inside a length header is
//!   an error here (TensorFlow silently stops there). Recovery is possible
//!   where it is safe: see [`ReaderOptions`].
//! - [`RecordWriter`] writes to any writer; [`FileWriter`] writes a file
//!   atomically (temporary name, sync, rename: `sparky_io::AtomicFile`),
//!   compressed or not.
//! - [`example`]: a borrowed, allocation-free `Example` reader, a decoder for
//!   fixed int64 schemas into `&mut [i64]`, and an encoder that writes exactly
//!   prost's bytes for such a schema.
//!
//! ```
//! use sparky_tfrecord::example::{Int64ExampleEncoder, Int64SchemaDecoder};
//! use sparky_tfrecord::{Compression, FileWriter, SliceReader};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("part-r-00000.tfrecord");
//! let names = ["clicked", "integer-feature-1"];
//! let encoder = Int64ExampleEncoder::new(&names);
//!
//! let mut writer = FileWriter::create(&path, Compression::None)?;
//! let mut buf = Vec::new();
//! for (clicked, i1) in [(0, 5), (1, -10)] {
//!     buf.clear();
//!     encoder.encode(&[clicked, i1], &mut buf);
//!     writer.write_record(&buf)?;
//! }
//! writer.finish()?;
//!
//! let file = std::fs::read(&path)?;
//! let mut decoder = Int64SchemaDecoder::new(&names);
//! let mut row = [0i64; 2];
//! let mut rows = Vec::new();
//! for record in SliceReader::new(&file).with_path(&path) {
//!     decoder.decode(record?, &mut row)?;
//!     rows.push(row);
//! }
//! assert_eq!(rows, vec![[0, 5], [1, -10]]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod compression;
pub mod crc;
mod error;
pub mod example;
mod reader;
mod writer;

pub use compression::Compression;
pub use error::{Error, Position, Result, UNKNOWN_RECORD};
pub use reader::{
    DEFAULT_MAX_RECORD_LEN, ReaderOptions, RecordReader, SliceReader, next_record_start, record_blocks,
    record_blocks_from,
};
pub use writer::{FileSummary, FileWriter, RecordWriter, WRITE_BUFFER, append_record, record_header};

/// The generated protobuf messages (`tf.train.Example` and friends).
pub use sparky_proto::tensorflow as proto;

/// Bytes before a record's payload: the length and its masked CRC.
pub const HEADER_LEN: usize = 12;
/// Bytes after a record's payload: its masked CRC.
pub const FOOTER_LEN: usize = 4;
