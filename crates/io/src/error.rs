//! The error of this crate.

use std::io;
use std::path::PathBuf;

/// Why a file or folder could not be written, locked or mapped. Every
/// variant names the path the caller gave (for an atomic file: its final
/// name, not the temporary one).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error on a path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A path that must be a regular file is something else.
    #[error("{}: exists and is not a regular file ({what})", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is: "a folder", "a device"...
        what: &'static str,
    },
    /// A path that must be a folder is something else.
    #[error("{}: exists and is not a folder", path.display())]
    NotAFolder {
        /// The path.
        path: PathBuf,
    },
    /// The output folder holds files and overwriting was not asked for.
    #[error("{} is not empty; pass --overwrite to replace its contents", path.display())]
    OutputExists {
        /// The folder.
        path: PathBuf,
    },
    /// A stop was requested (a signal): the run ended early, leaving nothing
    /// under a final name.
    #[error("interrupted: stopped on request before the end; nothing was left under a final name")]
    Interrupted,
    /// Another process holds the folder's lock.
    #[error("{} is in use by another sparky run (it holds the folder's lock); wait for it to finish, or choose another folder", path.display())]
    Locked {
        /// The folder.
        path: PathBuf,
    },
}

impl Error {
    /// An [`Error::Io`] on `path`.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// The path the error is about, if any.
    #[must_use]
    pub fn path(&self) -> &std::path::Path {
        match self {
            Error::Io { path, .. }
            | Error::NotAFile { path, .. }
            | Error::NotAFolder { path }
            | Error::OutputExists { path }
            | Error::Locked { path } => path,
            Error::Interrupted => std::path::Path::new(""),
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of file system object `meta` describes, for messages.
pub(crate) fn kind_name(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a folder"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_file() {
        "a file"
    } else {
        "a device, pipe or socket"
    }
}

/// Formats an error and its causes on one line: `a: b: c`, skipping causes
/// whose text the outer message already contains.
#[must_use]
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(err) = cur {
        let s = err.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = err.source();
    }
    out
}
