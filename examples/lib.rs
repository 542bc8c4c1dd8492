//! Examples of using sparky's crates from another Rust project. Run them with
//! `cargo run --release -p sparky-examples --example <name>`:
//!
//! - `tfrecord_roundtrip`: write `tf.train.Example` records to a TFRecord
//!   file (plain and GZIP) and read them back, streaming and memory-mapped.
//! - `build_vocabulary`: parse Criteo TSV lines, count categorical values,
//!   rank them and write the preprocessing artifacts.
//! - `train_in_memory`: train the linear classifier on rows held in memory
//!   and evaluate it.
//! - `score_export`: write an export, load it back, and score raw TSV lines
//!   in-process.
//!
//! In your own `Cargo.toml`, depend on the crates you need, for example
//! `sparky-tfrecord = { git = "...", package = "sparky-tfrecord" }`.
