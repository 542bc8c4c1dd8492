//! Errors of the record reader and writer.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// [`Position::record`] when the record's number is not known (a reader that
/// started in the middle of a file: see [`crate::next_record_start`]).
pub const UNKNOWN_RECORD: u64 = u64::MAX;

/// Where in a stream something went wrong: the file (when the caller named
/// one), the byte offset of the record's first header byte, and how many
/// records came before it.
///
/// For compressed input the offset counts bytes of the decompressed stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The file being read or written, when known.
    pub path: Option<PathBuf>,
    /// Byte offset of the start of the record (its length header).
    pub offset: u64,
    /// Records (valid or skipped) before this one, or [`UNKNOWN_RECORD`].
    pub record: u64,
}

impl Position {
    pub(crate) fn new(path: Option<&Path>, offset: u64, record: u64) -> Self {
        Self { path: path.map(Path::to_path_buf), offset, record }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.path {
            write!(f, "{}: ", p.display())?;
        }
        if self.record == UNKNOWN_RECORD {
            write!(f, "record at byte {}", self.offset)
        } else {
            write!(f, "record {} at byte {}", self.record, self.offset)
        }
    }
}

/// An error reading or writing TFRecords. Every stream error carries its
/// [`Position`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The stream ends inside a 12-byte length header. TensorFlow treats this
    /// as a clean end of file and silently drops the partial record; sparky
    /// reports it, so no data is lost without notice.
    #[error("{at}: truncated record: the stream ends {got} byte(s) into the 12-byte length header")]
    TruncatedHeader {
        /// Where the partial header starts.
        at: Position,
        /// Header bytes present.
        got: usize,
    },
    /// The stream ends inside a record's payload or its 4-byte footer.
    #[error(
        "{at}: truncated record: the header announces {len} payload bytes, the stream ends after {got} of the {} payload and footer bytes",
        len + 4
    )]
    TruncatedPayload {
        /// Where the record starts.
        at: Position,
        /// The payload length the header announced.
        len: u64,
        /// Payload and footer bytes present.
        got: u64,
    },
    /// The length field does not match its checksum: the record boundaries
    /// that follow cannot be trusted.
    #[error(
        "{at}: corrupted record: the length field ({len}) does not match its checksum (stored {stored:#010x}, computed {computed:#010x})"
    )]
    LengthChecksum {
        /// Where the record starts.
        at: Position,
        /// The length field as read.
        len: u64,
        /// The masked CRC stored in the header.
        stored: u32,
        /// The masked CRC of the length field.
        computed: u32,
    },
    /// The payload does not match its checksum.
    #[error(
        "{at}: corrupted record: the {len}-byte payload does not match its checksum (stored {stored:#010x}, computed {computed:#010x})"
    )]
    PayloadChecksum {
        /// Where the record starts; the payload starts 12 bytes later.
        at: Position,
        /// Payload length.
        len: u64,
        /// The masked CRC stored in the footer.
        stored: u32,
        /// The masked CRC of the payload.
        computed: u32,
    },
    /// The length field announces more than the reader's limit allows. Nothing
    /// was allocated for it.
    #[error(
        "{at}: record of {len} bytes is larger than the limit of {limit} bytes (see ReaderOptions::max_record_len)"
    )]
    RecordTooLarge {
        /// Where the record starts.
        at: Position,
        /// The announced length.
        len: u64,
        /// The configured limit.
        limit: u64,
    },
    /// An I/O error while reading or writing a stream.
    #[error("{at}: {source}")]
    Io {
        /// Where the failing record starts.
        at: Position,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Creating or committing an output file failed.
    #[error(transparent)]
    Output(sparky_io::Error),
    /// An I/O error opening, creating or committing a file.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The position of a stream error, or `None` for file errors.
    #[must_use]
    pub fn position(&self) -> Option<&Position> {
        match self {
            Error::TruncatedHeader { at, .. }
            | Error::TruncatedPayload { at, .. }
            | Error::LengthChecksum { at, .. }
            | Error::PayloadChecksum { at, .. }
            | Error::RecordTooLarge { at, .. }
            | Error::Io { at, .. } => Some(at),
            Error::File { .. } | Error::Output(_) => None,
        }
    }

    /// The byte offset TensorFlow's reader names for the same fault
    /// ("corrupted record at N", "truncated record at N"): the record start
    /// for length and truncation faults, the payload start (record + 12) for a
    /// payload checksum fault. `None` where TensorFlow reports no error (a
    /// stream ending inside a header) or for errors that are not data faults.
    #[must_use]
    pub fn tensorflow_offset(&self) -> Option<u64> {
        match self {
            Error::LengthChecksum { at, .. } | Error::TruncatedPayload { at, .. } => Some(at.offset),
            Error::PayloadChecksum { at, .. } => Some(at.offset + crate::HEADER_LEN as u64),
            _ => None,
        }
    }

    /// True when the data itself is damaged (truncated, checksum mismatch,
    /// absurd length), as opposed to an I/O failure.
    #[must_use]
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::TruncatedHeader { .. }
                | Error::TruncatedPayload { .. }
                | Error::LengthChecksum { .. }
                | Error::PayloadChecksum { .. }
                | Error::RecordTooLarge { .. }
        )
    }
}

impl From<Error> for io::Error {
    /// Keeps the underlying I/O error's kind where there is one; data faults
    /// become `InvalidData`. The message keeps the position.
    fn from(e: Error) -> Self {
        let kind = match &e {
            Error::Io { source, .. } | Error::File { source, .. } => source.kind(),
            Error::Output(sparky_io::Error::Io { source, .. }) => source.kind(),
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
