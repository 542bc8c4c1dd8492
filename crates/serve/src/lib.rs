//! Online prediction with sparky exports, speaking TensorFlow Serving's APIs.
//!
//! A [`Server`] holds one or more models, each the newest complete export
//! under a base path (`JOB_DIR/export/Servo`), polled and swapped atomically,
//! and answers
//! - REST ([`rest`]): `:predict` (row and columnar formats; instances as
//!   `{"b64": Example}` of prepared rows, objects of raw Criteo fields, or raw
//!   TSV lines), `:classify`, version status, metadata, `/healthz`, `/metrics`;
//! - gRPC ([`grpc`]): `tensorflow.serving.PredictionService` (`Predict`,
//!   `Classify`, `GetModelMetadata`) and `ModelService` (`GetModelStatus`),
//!   wire-compatible with TF Serving, so its clients work unchanged.
//!
//! Raw rows are prepared with the export's vocabulary exactly as
//! criteo-prepare prepares them, and every score is computed as
//! criteo-predict computes it: the answers' objects are criteo-predict's
//! output lines, bit for bit.
//!
//! ```no_run
//! use std::sync::Arc;
//! use sparky_serve::{ServeConfig, Server};
//!
//! let mut config = ServeConfig::new(vec![("sparky".into(), "job/export/Servo".into())]);
//! config.rest_addr = "127.0.0.1:0".parse().unwrap();
//! let mut server = Server::start(config, Arc::new(|line: &str| eprintln!("{line}"))).unwrap();
//! server.catch_signals().unwrap();
//! println!("REST on {}", server.rest_addr());
//! server.wait_for_signal().unwrap();
//! server.shutdown().unwrap();
//! ```

pub mod error;
pub mod grpc;
pub mod json;
pub mod metrics;
pub mod models;
pub mod rest;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

pub use error::{ApiError, ServeError};
pub use models::{Loaded, Model, PollEvent, Registry, VersionSel};

use grpc::services::model_service_server::ModelServiceServer;
use grpc::services::prediction_service_server::PredictionServiceServer;

/// Where the server's log lines go (the binary prints them to stderr).
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// How to serve.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeConfig {
    /// The models: (name, base path of its exports).
    pub models: Vec<(String, PathBuf)>,
    /// Where REST listens (port 0: any free port).
    pub rest_addr: SocketAddr,
    /// Where gRPC listens; `None`: no gRPC.
    pub grpc_addr: Option<SocketAddr>,
    /// How often to look for new versions; `None`: only at start.
    pub poll: Option<Duration>,
    /// The largest request body (REST) or message (gRPC), in bytes.
    pub max_body: usize,
    /// The longest a request may take to arrive and wait for its turn.
    pub request_timeout: Duration,
    /// Requests scored at once; more wait their turn (within the timeout).
    pub max_concurrent: usize,
    /// Worker threads (0: one per core).
    pub threads: usize,
    /// How long a stop waits for open connections to finish their requests
    /// and close, before closing them.
    pub drain_timeout: Duration,
}

impl ServeConfig {
    /// Defaults as `criteo-serve` has them: REST on 127.0.0.1:8501, gRPC on
    /// 127.0.0.1:8500, polling every second, 64 MiB bodies, 30 s requests,
    /// 1024 requests scored at once, one thread per core, 30 s to drain.
    #[must_use]
    pub fn new(models: Vec<(String, PathBuf)>) -> Self {
        Self {
            models,
            rest_addr: SocketAddr::from(([127, 0, 0, 1], 8501)),
            grpc_addr: Some(SocketAddr::from(([127, 0, 0, 1], 8500))),
            poll: Some(Duration::from_secs(1)),
            max_body: 64 << 20,
            request_timeout: Duration::from_secs(30),
            max_concurrent: 1024,
            threads: 0,
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// What every request sees: the models, the counters, the limits.
pub(crate) struct App {
    pub(crate) models: Registry,
    pub(crate) metrics: metrics::Metrics,
    pub(crate) config: ServeConfig,
    admission: tokio::sync::Semaphore,
}

impl App {
    /// Waits for a turn to score, within the request timeout.
    pub(crate) async fn admit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        let busy = || {
            ApiError::Unavailable(format!(
                "the server is at its limit of {} requests scored at once (criteo-serve --max-concurrent)",
                self.config.max_concurrent
            ))
        };
        match tokio::time::timeout(self.config.request_timeout, self.admission.acquire()).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(ApiError::Unavailable("the server is stopping".into())),
            Err(_) => Err(busy()),
        }
    }
}

/// A listener's task: serves until the stop signal, then drains.
type Listener = tokio::task::JoinHandle<Result<(), Box<dyn std::error::Error + Send + Sync>>>;

/// Stops the poller: a flag and a condition variable to wake it early.
type StopFlag = Arc<(Mutex<bool>, Condvar)>;

/// A running server. Dropping it without [`shutdown`](Self::shutdown) stops
/// it abruptly.
pub struct Server {
    app: Arc<App>,
    rest_addr: SocketAddr,
    grpc_addr: Option<SocketAddr>,
    runtime: tokio::runtime::Runtime,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<(&'static str, Listener)>,
    poller: Option<std::thread::JoinHandle<()>>,
    stop_poll: StopFlag,
    signalled: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Drop for Server {
    /// A server dropped without [`shutdown`](Server::shutdown) stops at once:
    /// the runtime closes its connections, and the poller ends at its next wake.
    fn drop(&mut self) {
        let (lock, cv) = &*self.stop_poll;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        cv.notify_all();
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("rest_addr", &self.rest_addr).field("grpc_addr", &self.grpc_addr).finish()
    }
}

fn log_events(log: &Log, events: &[PollEvent]) {
    for e in events {
        match e {
            PollEvent::Loaded { model, version, replaced: None } => {
                log(&format!("model {model}: version {version} loaded, serving"));
            }
            PollEvent::Loaded { model, version, replaced: Some(old) } => {
                log(&format!("model {model}: version {version} loaded, serving in place of version {old}"));
            }
            PollEvent::Skipped { model, version, reason } => {
                log(&format!("model {model}: version {version} skipped, not loadable: {reason}"));
            }
        }
    }
}

impl Server {
    /// Loads the newest version of every model that has one, binds the
    /// listeners and starts serving (requests for a model with no version yet
    /// are answered 503 until the poller finds one).
    ///
    /// # Errors
    /// No model given, an address that cannot be bound, no runtime.
    pub fn start(config: ServeConfig, log: Log) -> Result<Self, ServeError> {
        if config.models.is_empty() {
            return Err(ServeError::NoModels);
        }
        let mut models = Registry::new();
        for (name, base) in &config.models {
            models.add(Model::new(name.clone(), base.clone()));
        }
        log_events(&log, &models.poll());
        for m in models.iter().filter(|m| m.current().is_none()) {
            log(&format!(
                "model {}: no complete export under {} yet; answering 503 until one appears",
                m.name(),
                m.base().display()
            ));
        }

        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if config.threads > 0 {
            builder.worker_threads(config.threads);
        }
        let runtime = builder.enable_all().thread_name("criteo-serve").build().map_err(ServeError::Runtime)?;
        let bind = |api: &'static str, addr: SocketAddr| -> Result<std::net::TcpListener, ServeError> {
            let l = std::net::TcpListener::bind(addr).map_err(|source| ServeError::Bind { api, addr, source })?;
            l.set_nonblocking(true).map_err(|source| ServeError::Bind { api, addr, source })?;
            Ok(l)
        };
        let rest_std = bind("REST", config.rest_addr)?;
        let grpc_std = config.grpc_addr.map(|a| bind("gRPC", a)).transpose()?;
        let rest_addr =
            rest_std.local_addr().map_err(|source| ServeError::Bind { api: "REST", addr: config.rest_addr, source })?;
        let grpc_addr = match (&grpc_std, config.grpc_addr) {
            (Some(l), Some(a)) => {
                Some(l.local_addr().map_err(|source| ServeError::Bind { api: "gRPC", addr: a, source })?)
            }
            _ => None,
        };

        let app = Arc::new(App {
            models,
            metrics: metrics::Metrics::default(),
            admission: tokio::sync::Semaphore::new(config.max_concurrent.max(1)),
            config,
        });
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        {
            let _guard = runtime.enter();
            let listener = tokio::net::TcpListener::from_std(rest_std).map_err(|source| ServeError::Bind {
                api: "REST",
                addr: rest_addr,
                source,
            })?;
            let router = rest::router(Arc::clone(&app));
            let mut rx = stopped.clone();
            let task = runtime.spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = rx.wait_for(|s| *s).await;
                    })
                    .await
                    .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
            });
            tasks.push(("REST", task));
            if let (Some(l), Some(addr)) = (grpc_std, grpc_addr) {
                let listener = tokio::net::TcpListener::from_std(l).map_err(|source| ServeError::Bind {
                    api: "gRPC",
                    addr,
                    source,
                })?;
                let svc = grpc::Grpc { app: Arc::clone(&app) };
                let limit = app.config.max_body;
                let mut rx = stopped.clone();
                let task = runtime.spawn(async move {
                    tonic::transport::Server::builder()
                        .add_service(
                            PredictionServiceServer::new(svc.clone())
                                .max_decoding_message_size(limit)
                                .max_encoding_message_size(usize::MAX),
                        )
                        .add_service(ModelServiceServer::new(svc).max_decoding_message_size(limit))
                        .serve_with_incoming_shutdown(
                            tonic::transport::server::TcpIncoming::from(listener),
                            async move {
                                let _ = rx.wait_for(|s| *s).await;
                            },
                        )
                        .await
                        .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
                });
                tasks.push(("gRPC", task));
            }
        }

        let stop_poll: StopFlag = Arc::new((Mutex::new(false), Condvar::new()));
        let poller = app.config.poll.map(|every| {
            let app = Arc::clone(&app);
            let stop_poll = Arc::clone(&stop_poll);
            std::thread::Builder::new()
                .name("criteo-serve-poll".into())
                .spawn(move || {
                    let (lock, cv) = &*stop_poll;
                    let mut stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
                    loop {
                        stopped = cv.wait_timeout(stopped, every).unwrap_or_else(PoisonError::into_inner).0;
                        if *stopped {
                            return;
                        }
                        drop(stopped);
                        log_events(&log, &app.models.poll());
                        stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
                    }
                })
                .expect("spawning the poller thread")
        });
        Ok(Self { app, rest_addr, grpc_addr, runtime, stop, tasks, poller, stop_poll, signalled: None })
    }

    /// The REST address (with the port chosen when 0 was asked).
    #[must_use]
    pub fn rest_addr(&self) -> SocketAddr {
        self.rest_addr
    }

    /// The gRPC address, if gRPC is served.
    #[must_use]
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    /// The models served.
    #[must_use]
    pub fn models(&self) -> &Registry {
        &self.app.models
    }

    /// Looks for new versions now (as the poller does every period).
    pub fn poll_now(&self) -> Vec<PollEvent> {
        self.app.models.poll()
    }

    /// Rows scored so far.
    #[must_use]
    pub fn rows_scored(&self) -> u64 {
        self.app.metrics.rows()
    }

    /// Starts catching SIGINT and SIGTERM: from now on they no longer end the
    /// process but wake [`wait_for_signal`](Self::wait_for_signal). Call it
    /// before telling anyone the server is up, so that a signal sent as soon
    /// as the address is known is not lost. (A library user that handles
    /// signals itself never calls it.)
    ///
    /// # Errors
    /// The handlers cannot be installed.
    pub fn catch_signals(&mut self) -> Result<(), ServeError> {
        if self.signalled.is_some() {
            return Ok(());
        }
        let (tx, rx) = tokio::sync::watch::channel(false);
        let _guard = self.runtime.enter();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = signal(SignalKind::terminate()).map_err(ServeError::Runtime)?;
            let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Runtime)?;
            self.runtime.spawn(async move {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                let _ = tx.send(true);
            });
        }
        #[cfg(not(unix))]
        self.runtime.spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            let _ = tx.send(true);
        });
        self.signalled = Some(rx);
        Ok(())
    }

    /// Blocks until SIGINT or SIGTERM arrives (catching them first if
    /// [`catch_signals`](Self::catch_signals) was not called).
    ///
    /// # Errors
    /// The handlers cannot be installed.
    pub fn wait_for_signal(&mut self) -> Result<(), ServeError> {
        self.catch_signals()?;
        if let Some(rx) = &mut self.signalled {
            let _ = self.runtime.block_on(rx.wait_for(|s| *s));
        }
        Ok(())
    }

    /// Stops accepting connections, lets the requests in flight finish, and
    /// stops.
    ///
    /// # Errors
    /// A listener had failed while serving.
    pub fn shutdown(mut self) -> Result<(), ServeError> {
        let _ = self.stop.send(true);
        {
            let (lock, cv) = &*self.stop_poll;
            *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
            cv.notify_all();
        }
        if let Some(p) = self.poller.take() {
            let _ = p.join();
        }
        let tasks = std::mem::take(&mut self.tasks);
        let drain = self.app.config.drain_timeout;
        let result = self.runtime.block_on(async {
            let deadline = tokio::time::Instant::now() + drain;
            for (api, mut task) in tasks {
                match tokio::time::timeout_at(deadline, &mut task).await {
                    Ok(Ok(Ok(()))) => {}
                    Ok(Ok(Err(source))) => return Err(ServeError::Serve { api, source }),
                    Ok(Err(join)) => return Err(ServeError::Serve { api, source: Box::new(join) }),
                    Err(_) => {
                        task.abort();
                        return Err(ServeError::Drain { api, seconds: drain.as_secs_f64() });
                    }
                }
            }
            Ok(())
        });
        // Whatever is left (connections of a listener that did not drain) is
        // closed with the runtime.
        result
    }
}
