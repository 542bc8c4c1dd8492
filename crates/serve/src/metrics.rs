//! Counters for `/metrics`, in Prometheus' text format: requests by API and
//! status, rows scored, a latency histogram, and each model's loaded version.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::models::Registry;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    rows: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len() + 1],
    latency_nanos: AtomicU64,
    latency_count: AtomicU64,
}

impl Metrics {
    /// Counts one finished request: its protocol (`rest`, `grpc`), API
    /// (`predict`, `classify`, `status`, `metadata`, ...), status code, rows
    /// scored and time taken.
    pub fn record(&self, protocol: &'static str, api: &'static str, code: u16, rows: u64, took: Duration) {
        *self.requests.lock().unwrap_or_else(PoisonError::into_inner).entry((protocol, api, code)).or_default() += 1;
        self.rows.fetch_add(rows, Relaxed);
        let s = took.as_secs_f64();
        let b = BUCKETS.iter().position(|&ub| s <= ub).unwrap_or(BUCKETS.len());
        self.buckets[b].fetch_add(1, Relaxed);
        self.latency_nanos.fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Relaxed);
        self.latency_count.fetch_add(1, Relaxed);
    }

    /// Rows scored so far.
    #[must_use]
    pub fn rows(&self) -> u64 {
        self.rows.load(Relaxed)
    }

    /// The text of `/metrics`.
    #[must_use]
    pub fn render(&self, models: &Registry) -> String {
        let mut out = String::new();
        out.push_str("# HELP sparky_requests_total Requests answered, by protocol, API and status code.\n");
        out.push_str("# TYPE sparky_requests_total counter\n");
        for ((protocol, api, code), n) in self.requests.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            let _ = writeln!(out, "sparky_requests_total{{protocol=\"{protocol}\",api=\"{api}\",code=\"{code}\"}} {n}");
        }
        out.push_str("# HELP sparky_rows_scored_total Rows scored.\n# TYPE sparky_rows_scored_total counter\n");
        let _ = writeln!(out, "sparky_rows_scored_total {}", self.rows());
        out.push_str("# HELP sparky_request_seconds Time from a request's arrival to its answer.\n");
        out.push_str("# TYPE sparky_request_seconds histogram\n");
        let mut cumulative = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            cumulative += b.load(Relaxed);
            let le = BUCKETS.get(i).map_or_else(|| "+Inf".to_string(), ToString::to_string);
            let _ = writeln!(out, "sparky_request_seconds_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "sparky_request_seconds_sum {}", self.latency_nanos.load(Relaxed) as f64 / 1e9);
        let _ = writeln!(out, "sparky_request_seconds_count {}", self.latency_count.load(Relaxed));
        out.push_str("# HELP sparky_model_version The version each model serves (0: none loaded yet).\n");
        out.push_str("# TYPE sparky_model_version gauge\n");
        for m in models.iter() {
            let v = m.current().map_or(0, |l| l.version);
            let _ = writeln!(out, "sparky_model_version{{model=\"{}\"}} {v}", m.name());
        }
        out
    }
}
