//! The prepared-data contract of sparky: what criteo-prepare writes and what
//! every reader (the trainer, the predictor, the server) relies on, in one
//! place.
//!
//! - [`schema`]: the Criteo layout and the Example schema (feature names,
//!   counts, the missing value, the out-of-vocabulary id, [`Mode`]).
//! - [`artifacts`]: the vocabulary artifacts' manifest, read and checked
//!   without building the vocabulary ([`artifacts::verify`]).
//! - [`folder`]: `_prepare.json` ([`PreparedManifest`]) and
//!   [`PreparedDir::open`], which checks that a folder holds exactly what the
//!   prepare run recorded: `_SUCCESS`, the listed parts with their sizes, and
//!   (on request) the artifacts it names, by checksum.
//! - [`reader`]: the one reader of prepared records: blocks of mapped or
//!   streamed TFRecord parts, or Parquet row groups, decoded into a
//!   caller-owned [`Row`], bad records handed over with their positions,
//!   counts checked against the record.
//!
//! ```
//! use sparky_prepared::{OpenOptions, PreparedDir, PreparedError};
//!
//! let tmp = tempfile::tempdir()?;
//! // An empty folder is not prepared data: the error says what is missing.
//! let e = PreparedDir::open(tmp.path(), OpenOptions::default()).unwrap_err();
//! assert!(matches!(e, PreparedError::NoManifest(_)));
//! assert!(e.to_string().contains("_prepare.json"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod artifacts;
pub mod folder;
mod parquet_part;
pub mod reader;
pub mod schema;

pub use artifacts::{ArtifactError, CheckedArtifacts};
pub use folder::{
    ArtifactRef, OpenOptions, Part, PartCompression, PartFormat, PartInfo, PartKind, PreparedDir, PreparedError,
    PreparedManifest,
};
pub use reader::{
    BadKind, BadRecord, Block, BlockStats, Flow, Item, ReadError, Reader, RecordAt, Row, RowDecoder, RowFault,
};
pub use schema::{Mode, NUM_CAT, NUM_INT};
