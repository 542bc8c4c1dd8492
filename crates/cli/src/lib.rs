//! Shared plumbing of sparky's command-line tools, so that every binary
//! behaves the same way:
//!
//! - [`main_wrapper`]: runs the tool, prints `error: ...` with the whole cause
//!   chain, treats a broken pipe as success, and maps the outcome to the
//!   documented exit codes ([`EXIT_OK`], [`EXIT_FAILURE`], [`EXIT_USAGE`]).
//! - [`ProgressBar`]: a one-line progress display on standard error, drawn
//!   only when standard error is a terminal.
//! - [`human_bytes`], [`human_count`], [`human_rate`]: figures for people.
//!
//! ```
//! assert_eq!(sparky_cli::human_bytes(1_536), "1.5 KiB");
//! assert_eq!(sparky_cli::human_count(2_500_000), "2.50M");
//! ```

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The run succeeded.
pub const EXIT_OK: u8 = 0;
/// The run failed: bad input, I/O error, refused overwrite... The message on
/// standard error says what and where.
pub const EXIT_FAILURE: u8 = 1;
/// The command line is wrong (unknown flag, missing value); clap prints the usage.
pub const EXIT_USAGE: u8 = 2;

/// The exit-code section every tool's `--help` ends with.
pub const EXIT_CODES_HELP: &str = "Exit codes: 0 success; 1 failure (the message says what and where; no partial output is left \
behind); 2 invalid command line.";

/// True when `e` or one of its causes is a broken pipe (the reader of our
/// output went away, as with `| head`): not a failure.
#[must_use]
pub fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::BrokenPipe
        {
            return true;
        }
        cur = err.source();
    }
    false
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

/// Runs a tool's body and turns its result into an exit code, printing
/// `NAME: error: ...` on failure.
pub fn main_wrapper<E: std::error::Error + 'static>(name: &str, run: impl FnOnce() -> Result<(), E>) -> ExitCode {
    match run() {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) if is_broken_pipe(&e) => ExitCode::from(EXIT_OK),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{name}: error: {}", error_chain(&e));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// `1.5 KiB`, `3.2 GiB`.
#[must_use]
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// `950`, `12.3k`, `2.50M`.
#[must_use]
pub fn human_count(n: u64) -> String {
    let v = n as f64;
    if n < 1_000 {
        n.to_string()
    } else if n < 1_000_000 {
        format!("{:.1}k", v / 1e3)
    } else if n < 1_000_000_000 {
        format!("{:.2}M", v / 1e6)
    } else {
        format!("{:.2}G", v / 1e9)
    }
}

/// `1.23M/s` for `n` things in `seconds`.
#[must_use]
pub fn human_rate(n: u64, seconds: f64) -> String {
    if seconds <= 0.0 {
        return "-".into();
    }
    format!("{}/s", human_count((n as f64 / seconds) as u64))
}

/// What a progress display shows at one instant.
#[derive(Debug, Clone, Default)]
pub struct ProgressState {
    /// What is being done.
    pub phase: String,
    /// Work done, in bytes (or other units).
    pub done: u64,
    /// Work in all (0 when unknown).
    pub total: u64,
    /// Rows (or records) done.
    pub rows: u64,
}

/// A progress line redrawn on standard error a few times a second while a
/// job runs, when standard error is a terminal. Dropping it clears the line.
pub struct ProgressBar {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProgressBar {
    /// Starts drawing what `poll` returns, unless `quiet` or standard error is
    /// not a terminal.
    pub fn start(quiet: bool, poll: impl Fn() -> ProgressState + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        if quiet || !std::io::stderr().is_terminal() {
            return Self { stop, thread: None };
        }
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut phase = String::new();
            let mut since = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let s = poll();
                if s.phase != phase {
                    phase.clone_from(&s.phase);
                    since = Instant::now();
                }
                let secs = since.elapsed().as_secs_f64();
                let mut line = format!("{}: ", s.phase);
                if s.total > 0 {
                    let frac = (s.done as f64 / s.total as f64).min(1.0);
                    let width = 24;
                    let filled = (frac * width as f64) as usize;
                    line.push_str(&format!(
                        "[{}{}] {:5.1}% {} / {}",
                        "#".repeat(filled),
                        " ".repeat(width - filled),
                        frac * 100.0,
                        human_bytes(s.done),
                        human_bytes(s.total)
                    ));
                    if frac > 0.01 && frac < 1.0 {
                        let left = secs * (1.0 - frac) / frac;
                        line.push_str(&format!(", {left:.0} s left"));
                    }
                } else if s.done > 0 {
                    line.push_str(&human_bytes(s.done));
                }
                if s.rows > 0 {
                    line.push_str(&format!(", {} rows, {}", human_count(s.rows), human_rate(s.rows, secs)));
                }
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[2K{line}");
                let _ = err.flush();
            }
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        });
        Self { stop, thread: Some(thread) }
    }
}

impl Drop for ProgressBar {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny error type with a source.
    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "writing out.json")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn chains_and_pipes() {
        let e = Outer(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "pipe closed"));
        assert!(is_broken_pipe(&e));
        assert_eq!(error_chain(&e), "writing out.json: pipe closed");
        let e = Outer(std::io::Error::other("disk full"));
        assert!(!is_broken_pipe(&e));
        assert_eq!(error_chain(&e), "writing out.json: disk full");
    }

    #[test]
    fn figures() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
        assert_eq!(human_count(999), "999");
        assert_eq!(human_count(12_345), "12.3k");
        assert_eq!(human_rate(3_000_000, 2.0), "1.50M/s");
        assert_eq!(human_rate(1, 0.0), "-");
    }
}
