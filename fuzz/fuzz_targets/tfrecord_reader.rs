//! Arbitrary bytes as a TFRecord stream.
//!
//! Asserts, for several `ReaderOptions`:
//! - the stream reader (`RecordReader`) and the memory reader (`SliceReader`)
//!   return the same payloads, skip the same records and stop with the same
//!   error (same kind, position and message); with `resync_after_bad_length`
//!   the stream reader stops at the first bad length while the slice reader
//!   goes on, so there the stream's records are a prefix of the slice's;
//! - `record_blocks` fails exactly where the first framing fault is (the
//!   error the slice reader gives once payload faults are skipped), and
//!   otherwise returns blocks that tile the input and, read one by one, give
//!   the same records;
//! - the input as a gzip or zlib stream never makes the reader panic, and
//!   whatever decompresses reads the same through both readers.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use sparky_tfrecord::{Compression, Error, ReaderOptions, RecordReader, SliceReader, record_blocks};

/// Records, skipped count, and the error (as its message and kind).
#[derive(Debug, PartialEq)]
struct Outcome {
    records: Vec<Vec<u8>>,
    skipped: u64,
    /// Where the reader stands at the end: past the last record, or at the
    /// record it failed on.
    offset: u64,
    error: Option<(String, String)>,
}

fn describe(e: &Error) -> (String, String) {
    let kind = format!("{e:?}").split([' ', '{']).next().unwrap_or_default().to_string();
    (kind, e.to_string())
}

fn drain<R: std::io::BufRead>(mut r: RecordReader<R>) -> Outcome {
    let mut buf = Vec::new();
    let mut records = Vec::new();
    let error = loop {
        match r.read_record(&mut buf) {
            Ok(true) => records.push(buf.clone()),
            Ok(false) => break None,
            Err(e) => {
                assert!(!r.read_record(&mut buf).expect("finished after an error"), "records after an error");
                break Some(describe(&e));
            }
        }
    };
    assert_eq!(r.records_read(), records.len() as u64);
    Outcome { records, skipped: r.skipped(), offset: r.offset(), error }
}

fn slice_all(data: &[u8], opts: ReaderOptions) -> Outcome {
    let mut r = SliceReader::new(data).with_options(opts);
    let mut records = Vec::new();
    let mut error = None;
    for rec in r.by_ref() {
        assert!(error.is_none(), "records after an error");
        match rec {
            Ok(p) => records.push(p.to_vec()),
            Err(e) => error = Some(describe(&e)),
        }
    }
    assert!(r.next().is_none(), "the iterator ends for good");
    assert_eq!(r.records(), records.len() as u64 + r.skipped());
    Outcome { records, skipped: r.skipped(), offset: r.offset(), error }
}

/// The stream reader over `data`: as `RecordReader::new` builds it (one
/// large buffer) when `cap` is `None`, else through a `cap`-byte buffer, so
/// that headers, payloads and footers arrive in pieces.
fn stream_plain(data: &[u8], cap: Option<usize>, opts: ReaderOptions) -> Outcome {
    match cap {
        None => drain(RecordReader::new(data).with_options(opts)),
        Some(cap) => {
            drain(RecordReader::from_buf_read(std::io::BufReader::with_capacity(cap, data)).with_options(opts))
        }
    }
}

fn check_plain(data: &[u8], cap: Option<usize>, opts: ReaderOptions) {
    let stream = stream_plain(data, cap, opts);
    let slice = slice_all(data, opts);
    if opts.resync_after_bad_length && opts.verify_checksums {
        match &stream.error {
            Some((kind, _)) if kind == "LengthChecksum" => {
                assert!(slice.records.starts_with(&stream.records), "{stream:?} {slice:?}");
                assert!(slice.skipped >= stream.skipped);
                assert!(slice.error.as_ref().is_none_or(|(k, _)| k != "LengthChecksum"), "{slice:?}");
            }
            _ => assert_eq!(stream, slice),
        }
    } else {
        assert_eq!(stream, slice);
    }
    if !opts.verify_checksums {
        // Without checks nothing can be skipped.
        assert_eq!(slice.skipped, 0);
    }
}

fn check_blocks(data: &[u8], per_block: u64, opts: ReaderOptions) {
    // The first framing fault: what the slice reader stops at once payload
    // faults are skipped (record_blocks checks lengths, not payloads).
    let framing = slice_all(
        data,
        ReaderOptions { verify_checksums: true, skip_corrupt_payloads: true, resync_after_bad_length: false, ..opts },
    );
    match record_blocks(data, per_block, None, opts) {
        Err(e) => assert_eq!(Some(describe(&e)), framing.error, "record_blocks failed where the reader does not"),
        Ok(blocks) => {
            assert!(framing.error.is_none(), "record_blocks missed {:?}", framing.error);
            let mut at = 0;
            let mut n = 0u64;
            let mut all = Vec::new();
            for (range, first) in blocks {
                assert_eq!(range.start, at, "blocks tile the input");
                assert!(range.end > range.start, "no empty block");
                assert_eq!(first, n);
                at = range.end;
                let start = range.start as u64;
                let r = SliceReader::new(&data[range])
                    .with_options(ReaderOptions { verify_checksums: false, ..opts })
                    .with_start(start, first);
                let got: Vec<Vec<u8>> = r.map(|p| p.expect("framing was checked").to_vec()).collect();
                assert!(got.len() as u64 <= per_block.max(1));
                n += got.len() as u64;
                all.extend(got);
            }
            assert_eq!(at, data.len());
            assert_eq!(n, framing.records.len() as u64 + framing.skipped);
            let unchecked = slice_all(data, ReaderOptions { verify_checksums: false, ..opts });
            assert_eq!(all, unchecked.records);
        }
    }
}

/// Decompresses at most `limit` bytes; `None` when the stream is damaged.
fn inflate(c: Compression, data: &[u8], limit: u64) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    c.decoder(data).take(limit).read_to_end(&mut out).ok()?;
    Some(out)
}

fn check_compressed(data: &[u8], c: Compression) {
    // A small record limit keeps bombs and absurd lengths cheap.
    let opts = ReaderOptions { max_record_len: 1 << 16, ..Default::default() };
    let stream =
        drain(RecordReader::from_buf_read(std::io::BufReader::new(c.decoder(data).take(1 << 20))).with_options(opts));
    if let Some(plain) = inflate(c, data, 1 << 20)
        && (plain.len() as u64) < 1 << 20
    {
        assert_eq!(stream, slice_all(&plain, opts), "{c}");
    }
}

fuzz_target!(|data: &[u8]| {
    let first = data.first().copied().unwrap_or(0);
    let last = data.last().copied().unwrap_or(0);
    let small_limit = u64::from(first);
    let cap = Some(usize::from(last % 32) + 1);
    let base = ReaderOptions::default();
    let variants = [
        (None, base),
        (cap, ReaderOptions { skip_corrupt_payloads: true, ..base }),
        (cap, ReaderOptions { resync_after_bad_length: true, ..base }),
        (cap, ReaderOptions { skip_corrupt_payloads: true, resync_after_bad_length: true, ..base }),
        (cap, ReaderOptions { verify_checksums: false, ..base }),
        (cap, ReaderOptions { max_record_len: small_limit, skip_corrupt_payloads: true, ..base }),
    ];
    for (cap, opts) in variants {
        check_plain(data, cap, opts);
    }
    let per_block = u64::from(last % 8);
    for (_, opts) in [variants[0], variants[1], variants[2], variants[5]] {
        check_blocks(data, per_block, opts);
    }
    // Only inputs that start like a gzip or zlib stream get past the
    // decoder's first bytes: spare the others its buffers.
    if data.starts_with(&[0x1f, 0x8b]) {
        check_compressed(data, Compression::Gzip);
    }
    if data.len() >= 2 && data[0] & 0x0f == 8 && (u16::from(data[0]) << 8 | u16::from(data[1])) % 31 == 0 {
        check_compressed(data, Compression::Zlib);
    }
});
