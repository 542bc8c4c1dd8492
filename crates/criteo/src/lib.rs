//! Criteo display-advertising data: parsing, vocabularies, artifacts, and the
//! prepare job that turns raw TSV into ranked TFRecord (or Parquet) parts.
//!
//! The pieces, in the order data flows through them:
//!
//! - [`parse`]: one TSV line into a [`parse::Row`] (label, 13 integers, 26
//!   categorical values) without allocating; malformed lines give a
//!   [`parse::RowError`] naming the column.
//! - [`vocab`]: per-column value counting ([`vocab::Counts`], mergeable across
//!   threads) and ranking ([`vocab::Vocabulary`]: by count descending, ties by
//!   value ascending; id 0 for values not in the vocabulary).
//! - [`artifacts`]: the vocabulary's files (`categorical-value-counts.csv` and
//!   `manifest.json`), written by train mode and checked when loaded.
//! - [`prepare`]: the whole job, parallel over line-aligned chunks, with
//!   outputs identical whatever the thread count.
//!
//! The schema (feature names, counts, the missing value, [`Mode`]) and the
//! prepared folder's contract live in `sparky-prepared`.
//!
//! [`Mode`]: sparky_prepared::schema::Mode
//!
//! ```
//! use sparky_criteo::parse::parse_line;
//! use sparky_prepared::schema::Mode;
//! use sparky_criteo::vocab::{Counts, Vocabulary};
//!
//! let lines = ["0\t1\t\t\t\t\t\t\t\t\t\t\t\t\taaaaaaaa", "1\t2\t\t\t\t\t\t\t\t\t\t\t\t\tbbbbbbbb", "0\t\t\t\t\t\t\t\t\t\t\t\t\t\tbbbbbbbb"];
//! let mut counts = Counts::default();
//! for l in lines {
//!     counts.add_row(&parse_line(l.as_bytes(), Mode::Train)?);
//! }
//! let vocab = Vocabulary::from_counts(&counts, 1);
//! let row = parse_line(lines[0].as_bytes(), Mode::Train)?;
//! let mut ids = [0i64; 26];
//! vocab.ids(&row, &mut ids);
//! assert_eq!(ids[0], 2); // "aaaaaaaa" is second: "bbbbbbbb" was seen twice
//! assert_eq!(ids[1], 1); // C2 is missing in every row: rank 1
//! # Ok::<(), sparky_criteo::parse::RowError>(())
//! ```

pub mod artifacts;
pub mod input;
pub mod parse;
pub mod prepare;
mod spill;
pub mod vocab;
