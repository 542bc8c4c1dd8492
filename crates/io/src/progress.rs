//! What a long run reports while it works, and the stop request it honours.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What the work done and the total of a [`Progress`] phase count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unit {
    /// Input bytes.
    #[default]
    Bytes,
    /// Rows or records.
    Rows,
}

/// Counters a job updates as it goes (from any thread, lock-free) and a
/// display reads a few times a second; and a stop request (a signal
/// handler's) that the job checks between units of work, ending with
/// [`crate::Error::Interrupted`] and leaving nothing under a final name.
#[derive(Debug, Default)]
pub struct Progress {
    phase: Mutex<(&'static str, Unit)>,
    total: AtomicU64,
    done: AtomicU64,
    rows: AtomicU64,
    stop: AtomicBool,
}

/// One reading of a [`Progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// What is being done.
    pub phase: &'static str,
    /// What `done` and `total` count.
    pub unit: Unit,
    /// Work done.
    pub done: u64,
    /// Work in all (0 when unknown).
    pub total: u64,
    /// Rows done in this phase.
    pub rows: u64,
}

impl Progress {
    /// A new report, for a `static` (signal handlers reach statics).
    #[must_use]
    pub const fn new() -> Self {
        Self {
            phase: Mutex::new(("", Unit::Bytes)),
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        }
    }

    /// Starts a phase of `total` units (0: unknown); the counters restart.
    pub fn start(&self, phase: &'static str, unit: Unit, total: u64) {
        *self.phase.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = (phase, unit);
        self.total.store(total, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        self.rows.store(0, Ordering::Relaxed);
    }

    /// Adds work done and rows done.
    #[inline]
    pub fn add(&self, done: u64, rows: u64) {
        self.done.fetch_add(done, Ordering::Relaxed);
        self.rows.fetch_add(rows, Ordering::Relaxed);
    }

    /// The counters now.
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        let (phase, unit) = *self.phase.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Snapshot {
            phase,
            unit,
            done: self.done.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
            rows: self.rows.load(Ordering::Relaxed),
        }
    }

    /// Asks the job to stop at its next check (for signal handlers: one
    /// atomic store).
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// True once a stop was requested.
    #[inline]
    #[must_use]
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// [`crate::Error::Interrupted`] once a stop was requested.
    ///
    /// # Errors
    /// When a stop was requested.
    #[inline]
    pub fn check(&self) -> crate::Result<()> {
        if self.stop_requested() { Err(crate::Error::Interrupted) } else { Ok(()) }
    }

    /// The stop flag itself, for jobs that take one.
    #[must_use]
    pub fn stop_flag(&self) -> &AtomicBool {
        &self.stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_restart_per_phase_and_stops_are_seen() {
        let p = Progress::default();
        p.start("counting", Unit::Bytes, 100);
        p.add(40, 3);
        p.add(10, 1);
        assert_eq!(p.snapshot(), Snapshot { phase: "counting", unit: Unit::Bytes, done: 50, total: 100, rows: 4 });
        p.start("writing", Unit::Rows, 0);
        assert_eq!(p.snapshot().done, 0);
        assert!(p.check().is_ok());
        p.request_stop();
        assert!(matches!(p.check(), Err(crate::Error::Interrupted)));
    }
}
