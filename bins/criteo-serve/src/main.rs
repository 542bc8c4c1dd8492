//! `criteo-serve`: online prediction with TensorFlow Serving's APIs. See `criteo-serve --help`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use sparky_serve::{ServeConfig, ServeError, Server};

/// Serves models exported by criteo-train online, as TensorFlow Serving
/// serves the guide's SavedModel: the same REST and gRPC APIs, so TF
/// Serving's clients work unchanged, and the same scores as criteo-predict.
///
/// Each model serves the newest complete export under its base path
/// (JOB_DIR/export/Servo/VERSION/), checked against its manifest; the base
/// path is polled every --poll-seconds and a newer export is swapped in once
/// it verifies (a damaged one is logged and skipped while the old version
/// keeps serving; requests in flight finish on the version they began with).
///
/// REST (--port):
///   POST /v1/models/NAME[/versions/V]:predict   {"instances": [...]} or {"inputs": [...]}
///        an instance is {"b64": "BASE64 OF A PREPARED tf.train.Example"}, an object
///        of raw fields by the Example's names ({"integer-feature-1": 5,
///        "categorical-feature-1": "68fd1e64", ...}; absent or null: missing), or a
///        raw TSV line (39 fields, or 40 with the label first).
///        Answer: {"predictions": [{"classes": ["0", "1"], "scores": [p0, p1]}, ...]}
///   POST /v1/models/NAME[/versions/V]:classify  {"examples": [{feature: value}], "context": {...}}
///        Answer: {"results": [[["0", p0], ["1", p1]], ...]}
///   GET  /v1/models/NAME[/versions/V]           version status
///   GET  /v1/models/NAME[/versions/V]/metadata  the serving_default signature
///   GET  /healthz                               200 once every model has a version
///   GET  /metrics                               Prometheus counters
///
/// gRPC (--grpc-port): tensorflow.serving.PredictionService (Predict, Classify,
/// GetModelMetadata) and ModelService (GetModelStatus).
///
/// Errors are {"error": "..."}: 400 a malformed request (naming the instance and
/// the field), 404 an unknown model or version, 408 a body not received within
/// --request-timeout, 413 a body over --max-body, 503 no version loaded yet.
/// SIGTERM or Ctrl-C stops accepting, lets requests in flight finish, exits 0.
///
/// Examples:
///
///   criteo-serve --model-base-path job/export/Servo
///
///   curl -d '{"instances": ["1\t5\t...\t68fd1e64"]}' localhost:8501/v1/models/sparky:predict
///
///   criteo-serve --model ctr=jobs/ctr --model ctr2=jobs/ctr2 --port 9000 --grpc-port 0
#[derive(Debug, Parser)]
#[command(name = "criteo-serve", version, after_help = sparky_cli::EXIT_CODES_HELP)]
struct Args {
    /// Where the model's versions are: JOB_DIR/export/Servo (or the job folder).
    #[arg(long, value_name = "PATH", required_unless_present = "model")]
    model_base_path: Option<PathBuf>,

    /// The name the model of --model-base-path is served under.
    #[arg(long, value_name = "NAME", default_value = "sparky")]
    model_name: String,

    /// Another model to serve, as NAME=PATH (repeat for several).
    #[arg(long, value_name = "NAME=PATH", value_parser = parse_model)]
    model: Vec<(String, PathBuf)>,

    /// The address to listen on (0.0.0.0 for every interface; 127.0.0.1 keeps
    /// the server to this machine).
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    address: IpAddr,

    /// The REST port (0: any free port, printed at start).
    #[arg(long, value_name = "PORT", default_value_t = 8501)]
    port: u16,

    /// The gRPC port (0: any free port, printed at start).
    #[arg(long, value_name = "PORT", default_value_t = 8500)]
    grpc_port: u16,

    /// Serve REST only.
    #[arg(long)]
    no_grpc: bool,

    /// Seconds between looks for new versions (0: only at start).
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    poll_seconds: f64,

    /// The largest request body (REST) or message (gRPC), e.g. 64M, 512K, 1G.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_size)]
    max_body: usize,

    /// Seconds a request may take to arrive and wait for its turn.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    request_timeout: f64,

    /// Seconds a stop (SIGTERM, Ctrl-C) waits for requests in flight to finish
    /// and clients to close; connections still open then are closed.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    drain_timeout: f64,

    /// Requests scored at once; more wait their turn within --request-timeout.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent: u32,

    /// Worker threads [default: one per core]. A load generator or other
    /// work on the same cores keeps tail latency lower with fewer.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,

    /// Print nothing but errors.
    #[arg(short, long)]
    quiet: bool,
}

fn parse_model(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((n, p)) if !n.is_empty() && !p.is_empty() && !n.contains(['/', ':']) => {
            Ok((n.to_string(), PathBuf::from(p)))
        }
        _ => Err(format!("expected NAME=PATH (a name without '/' or ':'), found {s:?}")),
    }
}

fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 1usize << 10),
        Some((i, 'M' | 'm')) => (&t[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    num.trim()
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("expected a size such as 64M, 512K or 1048576, found {s:?}"))
}

fn seconds(what: &str, s: f64) -> Duration {
    if !(s.is_finite() && s >= 0.0) {
        use clap::CommandFactory;
        Args::command()
            .error(clap::error::ErrorKind::ValueValidation, format!("{what} must be a number of seconds, at least 0"))
            .exit()
    }
    Duration::from_secs_f64(s)
}

fn run(args: Args) -> Result<(), ServeError> {
    let mut models = Vec::new();
    if let Some(base) = &args.model_base_path {
        models.push((args.model_name.clone(), base.clone()));
    }
    models.extend(args.model.iter().cloned());
    let mut config = ServeConfig::new(models);
    config.rest_addr = SocketAddr::new(args.address, args.port);
    config.grpc_addr = (!args.no_grpc).then_some(SocketAddr::new(args.address, args.grpc_port));
    let poll = seconds("--poll-seconds", args.poll_seconds);
    config.poll = (!poll.is_zero()).then_some(poll);
    config.max_body = args.max_body;
    config.request_timeout = seconds("--request-timeout", args.request_timeout).max(Duration::from_millis(1));
    config.max_concurrent = args.max_concurrent as usize;
    config.drain_timeout = seconds("--drain-timeout", args.drain_timeout);
    config.threads = args.threads.map_or(0, usize::from);
    let quiet = args.quiet;
    let log: sparky_serve::Log = Arc::new(move |line: &str| {
        if !quiet {
            eprintln!("criteo-serve: {line}");
        }
    });
    let mut server = Server::start(config, Arc::clone(&log))?;
    // Before the addresses are printed: a signal sent as soon as they are
    // known must drain the server, not kill it.
    server.catch_signals()?;
    log(&format!("REST on http://{}", server.rest_addr()));
    if let Some(g) = server.grpc_addr() {
        log(&format!("gRPC on {g}"));
    }
    server.wait_for_signal()?;
    log("stopping: no new connections; letting requests in flight finish");
    let rows = server.rows_scored();
    match server.shutdown() {
        // Clients that keep idle connections open are not the server's failure.
        Err(e @ ServeError::Drain { .. }) => log(&format!("{e}")),
        other => other?,
    }
    log(&format!("stopped after scoring {rows} rows"));
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    sparky_cli::main_wrapper("criteo-serve", || run(args))
}
