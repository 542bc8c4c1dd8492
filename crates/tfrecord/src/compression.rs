//! Whole-stream compression, as TensorFlow's `compression_type`.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::str::FromStr;

use flate2::Compression as Level;
use flate2::bufread::{MultiGzDecoder, ZlibDecoder};
use flate2::write::{GzEncoder, ZlibEncoder};

/// Size of the read buffers this crate puts in front of files and decoders.
pub const READ_BUFFER: usize = 256 * 1024;

/// How a TFRecord stream is compressed: the whole stream, not each record, as
/// TensorFlow's `TFRecordOptions(compression_type=...)` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Plain records (`compression_type=""`).
    #[default]
    None,
    /// A gzip stream (`"GZIP"`); file names end in `.gz`.
    Gzip,
    /// A zlib stream (`"ZLIB"`); file names end in `.zlib`.
    Zlib,
}

impl Compression {
    /// Guesses the compression from a file name: `.gz` is GZIP, `.zlib` is
    /// ZLIB, anything else none.
    #[must_use]
    pub fn from_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some("gz") => Compression::Gzip,
            Some("zlib") => Compression::Zlib,
            _ => Compression::None,
        }
    }

    /// The file name suffix for this compression, with its dot (`""` for none).
    #[must_use]
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Zlib => ".zlib",
        }
    }

    /// TensorFlow's name for this compression (`""`, `"GZIP"`, `"ZLIB"`).
    #[must_use]
    pub fn tensorflow_name(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => "GZIP",
            Compression::Zlib => "ZLIB",
        }
    }

    /// Wraps a reader so that it yields decompressed bytes, buffered.
    pub fn decoder<'a, R: Read + Send + 'a>(self, inner: R) -> Box<dyn BufRead + Send + 'a> {
        let buffered = BufReader::with_capacity(READ_BUFFER, inner);
        match self {
            Compression::None => Box::new(buffered),
            // Multi-member: `cat a.gz b.gz` is a valid gzip stream too.
            Compression::Gzip => Box::new(BufReader::with_capacity(READ_BUFFER, MultiGzDecoder::new(buffered))),
            Compression::Zlib => Box::new(BufReader::with_capacity(READ_BUFFER, ZlibDecoder::new(buffered))),
        }
    }

    /// Wraps a writer so that what is written to it is compressed. Call
    /// [`Encoder::finish`] to write the compressed stream's trailer.
    pub fn encoder<W: Write>(self, inner: W) -> Encoder<W> {
        // Level 6 is zlib's and TensorFlow's default.
        match self {
            Compression::None => Encoder::Plain(inner),
            Compression::Gzip => Encoder::Gzip(GzEncoder::new(inner, Level::new(6))),
            Compression::Zlib => Encoder::Zlib(ZlibEncoder::new(inner, Level::new(6))),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zlib => "zlib",
        })
    }
}

/// The error of parsing a [`Compression`] name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compression {0:?}: expected none, gzip or zlib")]
pub struct UnknownCompression(pub String);

impl FromStr for Compression {
    type Err = UnknownCompression;

    /// Accepts `none`/`""`, `gzip`/`gz`, `zlib`, in any case (TensorFlow's
    /// `"GZIP"` and `"ZLIB"` included).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "" | "none" => Ok(Compression::None),
            "gzip" | "gz" => Ok(Compression::Gzip),
            "zlib" => Ok(Compression::Zlib),
            _ => Err(UnknownCompression(s.to_string())),
        }
    }
}

/// A writer that compresses (or not) what it is given; see
/// [`Compression::encoder`].
#[derive(Debug)]
pub enum Encoder<W: Write> {
    /// No compression.
    Plain(W),
    /// GZIP.
    Gzip(GzEncoder<W>),
    /// ZLIB.
    Zlib(ZlibEncoder<W>),
}

impl<W: Write> Encoder<W> {
    /// Writes the compressed stream's trailer and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Plain(w) => Ok(w),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zlib(e) => e.finish(),
        }
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        match self {
            Encoder::Plain(w) => w,
            Encoder::Gzip(e) => e.get_ref(),
            Encoder::Zlib(e) => e.get_ref(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Plain(w) => w.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zlib(e) => e.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Encoder::Plain(w) => w.write_all(buf),
            Encoder::Gzip(e) => e.write_all(buf),
            Encoder::Zlib(e) => e.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Plain(w) => w.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zlib(e) => e.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert_eq!(Compression::from_path(Path::new("a/part-r-00000.tfrecord.gz")), Compression::Gzip);
        assert_eq!(Compression::from_path(Path::new("x.zlib")), Compression::Zlib);
        assert_eq!(Compression::from_path(Path::new("x.tfrecord")), Compression::None);
        assert_eq!("GZIP".parse::<Compression>().unwrap(), Compression::Gzip);
        assert_eq!("".parse::<Compression>().unwrap(), Compression::None);
        assert!("lz4".parse::<Compression>().is_err());
        for c in [Compression::None, Compression::Gzip, Compression::Zlib] {
            assert_eq!(c.to_string().parse::<Compression>().unwrap(), c);
        }
    }

    #[test]
    fn round_trip_every_kind() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        for c in [Compression::None, Compression::Gzip, Compression::Zlib] {
            let mut enc = c.encoder(Vec::new());
            enc.write_all(&data).unwrap();
            let bytes = enc.finish().unwrap();
            if c != Compression::None {
                assert!(bytes.len() < data.len() / 4, "{c} did not compress");
            }
            let mut back = Vec::new();
            c.decoder(bytes.as_slice()).read_to_end(&mut back).unwrap();
            assert_eq!(back, data, "{c}");
        }
    }
}
