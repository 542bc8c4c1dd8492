//! Parallel GZIP: pieces of one stream compressed independently on worker
//! threads, then joined into a single standard gzip member (as pigz does).
//!
//! Each piece is raw deflate ending in a sync flush, so it ends on a byte
//! boundary and the pieces concatenate into one deflate stream; the writer
//! adds the gzip header, a final empty block, and the trailer with the CRC32
//! combined from the pieces' CRCs. Any gzip reader (TensorFlow's
//! `compression_type="GZIP"` included) sees one ordinary member.

use std::io::{self, Write};

use flate2::{Compress, FlushCompress};

/// Compression level for prepared outputs (zlib's and TensorFlow's default).
pub const LEVEL: u32 = 6;

/// One compressed piece: raw deflate bytes and the CRC32 of the input.
#[derive(Debug)]
pub struct Piece {
    /// Raw deflate ending in a sync flush.
    pub deflate: Vec<u8>,
    /// CRC32 (gzip's) state of the uncompressed bytes, with their length.
    pub crc: crc32fast::Hasher,
    /// Uncompressed length.
    pub len: u64,
}

/// Compresses `data` into a piece.
#[must_use]
pub fn compress_piece(data: &[u8]) -> Piece {
    let mut c = Compress::new(flate2::Compression::new(LEVEL), false);
    let mut out = Vec::with_capacity(data.len() / 3 + 1024);
    let mut consumed = 0usize;
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(4096));
        }
        let before_in = c.total_in();
        c.compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
            .expect("deflate of in-memory data cannot fail");
        consumed += (c.total_in() - before_in) as usize;
        // Done once all input is in and the flush fitted (spare room left).
        if consumed == data.len() && out.capacity() - out.len() >= 16 {
            break;
        }
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(data);
    Piece { deflate: out, crc, len: data.len() as u64 }
}

/// Writes one gzip member made of pieces.
#[derive(Debug)]
pub struct GzipJoiner<W: Write> {
    inner: W,
    crc: crc32fast::Hasher,
    len: u64,
}

impl<W: Write> GzipJoiner<W> {
    /// Writes the gzip header (no name, time 0: outputs are reproducible).
    pub fn new(mut inner: W) -> io::Result<Self> {
        inner.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])?;
        Ok(Self { inner, crc: crc32fast::Hasher::new(), len: 0 })
    }

    /// Appends a piece.
    pub fn append(&mut self, piece: &Piece) -> io::Result<()> {
        self.inner.write_all(&piece.deflate)?;
        self.crc.combine(&piece.crc);
        self.len += piece.len;
        Ok(())
    }

    /// Ends the deflate stream and writes the trailer.
    pub fn finish(mut self) -> io::Result<W> {
        // An empty final block with fixed codes: BFINAL=1, BTYPE=01, end-of-block.
        self.inner.write_all(&[0x03, 0x00])?;
        let crc = self.crc.finalize();
        self.inner.write_all(&crc.to_le_bytes())?;
        // ISIZE: the length modulo 2^32.
        self.inner.write_all(&(self.len as u32).to_le_bytes())?;
        Ok(self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn joined_pieces_are_one_gzip_member() {
        let parts: Vec<Vec<u8>> = vec![
            b"hello ".repeat(1000),
            Vec::new(),
            (0..200_000u32).flat_map(|i| (i.wrapping_mul(2_654_435_761)).to_le_bytes()).collect(),
            b"end".to_vec(),
        ];
        let mut j = GzipJoiner::new(Vec::new()).unwrap();
        for p in &parts {
            j.append(&compress_piece(p)).unwrap();
        }
        let gz = j.finish().unwrap();
        // A single-member decoder reads it all.
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice()).read_to_end(&mut out).unwrap();
        assert_eq!(out, parts.concat());
        // No pieces at all: a valid empty member.
        let gz = GzipJoiner::new(Vec::new()).unwrap().finish().unwrap();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice()).read_to_end(&mut out).unwrap();
        assert!(out.is_empty());
    }
}
