//! sparky's file plumbing, shared by every crate that writes or maps files.
//!
//! - [`AtomicFile`] and [`write_atomic`]: a file appears under its final name
//!   only when it is complete (temporary name, optional sync, rename). Every
//!   error names the final path, never the temporary one.
//! - [`OutputDir`]: the commit protocol of an output folder. Opening it takes
//!   an exclusive lock (a second run on the same folder fails at once),
//!   removes temporary files a killed run left, refuses a non-empty folder
//!   unless told to overwrite, and withdraws an old `_SUCCESS` first.
//!   [`OutputDir::commit`] removes stale outputs and writes `_SUCCESS` last;
//!   dropping it uncommitted removes this run's outputs.
//! - [`DirLock`]: the lock alone, for folders with a protocol of their own
//!   (the artifacts folder, a training job folder).
//! - [`Progress`]: the counters a long run updates and a display reads, and
//!   the stop request (a signal's) the run honours.
//! - [`MappedFile`]: a read-only file mapping with page-release and access
//!   hints (from `sparky-memhint`), so that readers streaming through large
//!   files keep their resident memory flat.
//!
//! ```
//! use sparky_io::OutputDir;
//! use std::io::Write;
//!
//! let tmp = tempfile::tempdir()?;
//! let out = tmp.path().join("out");
//! let mut dir = OutputDir::open(&out, false, |n| n.starts_with("part-"))?;
//! let mut f = dir.create("part-00000")?;
//! f.write_all(b"rows")?;
//! dir.committed(f.commit()?);
//! dir.commit()?;
//! assert!(out.join("_SUCCESS").exists());
//! // A second run refuses the folder unless told to overwrite it.
//! assert!(OutputDir::open(&out, false, |n| n.starts_with("part-")).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod atomic;
mod error;
mod lock;
mod mmap;
mod output;
pub mod progress;

pub use atomic::{AtomicFile, is_temp_name, sync_all, sync_dir, write_atomic, write_atomic_unsynced};
pub use error::{Error, Result, error_chain};
pub use lock::DirLock;
pub use mmap::MappedFile;
pub use output::{OutputDir, SUCCESS_FILE};
pub use progress::{Progress, Snapshot, Unit};
pub use sparky_memhint::Access;
