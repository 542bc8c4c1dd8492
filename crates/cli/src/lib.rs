//! Shared plumbing of sparky's command-line tools, so that every binary
//! behaves the same way:
//!
//! - [`main_wrapper`]: runs the tool, prints `NAME: error: ...` with the whole
//!   cause chain, treats a broken pipe as success, and maps the outcome to the
//!   documented exit codes ([`EXIT_OK`], [`EXIT_FAILURE`], [`EXIT_USAGE`],
//!   [`EXIT_INTERRUPTED`]).
//! - [`ProgressBar`]: a live progress line on standard error (phase, work
//!   done, rate, time left; `indicatif`), drawn only when standard error is a
//!   terminal and `--quiet` was not given.
//! - [`stop_on_signals`]: the first SIGINT or SIGTERM asks the running job to
//!   stop cleanly (it removes what it started and exits with
//!   [`EXIT_INTERRUPTED`]; the trainer checkpoints and exports); a second
//!   one ends the process at once.
//! - [`human_bytes`], [`human_count`], [`human_rate`]: figures for people.
//!
//! Libraries report through a `sparky_io::Progress`; this crate only reads it.
//!
//! ```
//! assert_eq!(sparky_cli::human_bytes(1_536), "1.5 KiB");
//! assert_eq!(sparky_cli::human_count(2_500_000), "2.50M");
//! ```

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::time::Duration;

use sparky_io::{Progress, Unit};

/// The run succeeded.
pub const EXIT_OK: u8 = 0;
/// The run failed: bad input, I/O error, refused overwrite... The message on
/// standard error says what and where.
pub const EXIT_FAILURE: u8 = 1;
/// The command line is wrong (unknown flag, missing value, a value out of
/// range); clap prints the usage.
pub const EXIT_USAGE: u8 = 2;
/// The run was stopped by SIGINT or SIGTERM before its end (128 + SIGINT,
/// as shells report it); nothing was left under a final name.
pub const EXIT_INTERRUPTED: u8 = 130;

/// The exit-code section every tool's `--help` ends with.
pub const EXIT_CODES_HELP: &str = "Exit codes: 0 success; 1 failure (the message says what and where; no partial output is left \
behind); 2 invalid command line; 130 stopped by Ctrl-C or SIGTERM (nothing partial left behind).";

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

pub use sparky_io::error_chain;

/// True when `e` or one of its causes is an interrupt
/// ([`sparky_io::Error::Interrupted`]).
#[must_use]
pub fn is_interrupted(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if matches!(err.downcast_ref::<sparky_io::Error>(), Some(sparky_io::Error::Interrupted)) {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Runs a tool's body and turns its result into an exit code, printing
/// `NAME: error: ...` on failure.
pub fn main_wrapper<E: std::error::Error + 'static>(name: &str, run: impl FnOnce() -> Result<(), E>) -> ExitCode {
    match run() {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) if is_broken_pipe(&e) => ExitCode::from(EXIT_OK),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{name}: error: {}", error_chain(&e));
            // A run that failed after a stop signal was stopped by it (the
            // interrupt may sit behind a transparent error that hides it).
            let stopped = is_interrupted(&e) || SIGNALLED.load(Ordering::SeqCst);
            ExitCode::from(if stopped { EXIT_INTERRUPTED } else { EXIT_FAILURE })
        }
    }
}

/// The job a signal asks to stop.
static STOP_TARGET: AtomicPtr<Progress> = AtomicPtr::new(std::ptr::null_mut());
/// Set by the first signal.
static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    if SIGNALLED.swap(true, Ordering::SeqCst) {
        // A second signal: the user insists.
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(i32::from(EXIT_INTERRUPTED)) };
    }
    let p = STOP_TARGET.load(Ordering::SeqCst);
    // SAFETY: the pointer is null or comes from a `&'static Progress`; the
    // request is an atomic store, which is async-signal-safe.
    if let Some(progress) = unsafe { p.as_ref() } {
        progress.request_stop();
    }
}

/// Makes SIGINT and SIGTERM ask `progress`'s job to stop cleanly; a second
/// signal ends the process at once with [`EXIT_INTERRUPTED`].
pub fn stop_on_signals(progress: &'static Progress) {
    STOP_TARGET.store(std::ptr::from_ref(progress).cast_mut(), Ordering::SeqCst);
    #[cfg(unix)]
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only touches atomics and calls _exit.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
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

/// A live progress line on standard error, redrawn a few times a second
/// from a job's [`Progress`]: its phase, work done of the total, rows, rate
/// and time left. Hidden when `quiet` or when standard error is not a
/// terminal (logs and pipes get the summary lines only). Dropping it clears
/// the line.
pub struct ProgressBar {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    bar: Option<indicatif::ProgressBar>,
}

impl ProgressBar {
    /// Starts drawing `progress`.
    #[must_use]
    pub fn start(quiet: bool, progress: &'static Progress) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr_with_hz(5));
        if quiet || bar.is_hidden() {
            return Self { stop, thread: None, bar: None };
        }
        let flag = stop.clone();
        let shown = bar.clone();
        let thread = std::thread::spawn(move || {
            let (mut phase, mut unit, mut known) = ("", Unit::Bytes, false);
            while !flag.load(Ordering::Relaxed) {
                let s = progress.snapshot();
                if s.phase != phase || s.unit != unit || (s.total > 0) != known {
                    (phase, unit, known) = (s.phase, s.unit, s.total > 0);
                    let counts = match unit {
                        Unit::Bytes => "{bytes}/{total_bytes} ({bytes_per_sec}",
                        Unit::Rows => "{human_pos}/{human_len} ({per_sec}",
                    };
                    let template = if known {
                        format!("{{prefix}} [{{bar:24}}] {{percent:>3}}% {counts}, {{eta}} left){{msg}}")
                    } else {
                        format!(
                            "{{prefix}} {{spinner}} {}{{msg}}",
                            counts.replace("/{total_bytes}", "").replace("/{human_len}", "")
                        )
                    };
                    if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
                        bar.set_style(style.progress_chars("#> "));
                    }
                    bar.reset();
                    bar.set_prefix(phase);
                    bar.set_length(s.total);
                }
                bar.set_position(s.done.min(if known { s.total } else { u64::MAX }));
                if unit == Unit::Bytes && s.rows > 0 {
                    bar.set_message(format!("), {} rows", human_count(s.rows)));
                } else {
                    bar.set_message(")");
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            bar.finish_and_clear();
        });
        Self { stop, thread: Some(thread), bar: Some(shown) }
    }

    /// Prints a line on standard error above the progress line (or plainly,
    /// when none is drawn).
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(b) => b.println(line),
            None => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        }
    }

    /// True when the progress line is drawn.
    #[must_use]
    pub fn is_drawn(&self) -> bool {
        self.bar.is_some()
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
    fn interrupts_are_recognised_through_the_chain() {
        let e = Outer(std::io::Error::other(sparky_io::Error::Interrupted));
        assert!(!is_interrupted(&e), "an io::Error wrapping it is not walked into by source()");
        let e = sparky_io::Error::Interrupted;
        assert!(is_interrupted(&e));
        assert!(EXIT_CODES_HELP.contains("130"));
        // Hidden when standard error is not a terminal (as under the test harness) or quiet.
        static P: Progress = Progress::new();
        let bar = ProgressBar::start(true, &P);
        assert!(bar.thread.is_none());
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
