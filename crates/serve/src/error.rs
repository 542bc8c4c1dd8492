//! Errors: of a request (answered to the client, over REST and gRPC alike)
//! and of the server itself (starting, binding).

use std::net::SocketAddr;

/// Why a request is refused. Each kind maps to one HTTP status and one gRPC
/// code; the message says what was wrong and where (instance index, field).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The request is malformed (HTTP 400, gRPC `INVALID_ARGUMENT`).
    #[error("{0}")]
    BadRequest(String),
    /// No such model, version or route (HTTP 404, gRPC `NOT_FOUND`).
    #[error("{0}")]
    NotFound(String),
    /// The method does not apply to the route (HTTP 405, gRPC `UNIMPLEMENTED`).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The body is over the limit (HTTP 413, gRPC `RESOURCE_EXHAUSTED`).
    #[error("the request body is over the limit of {limit} bytes (criteo-serve --max-body)")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The request did not complete in time (HTTP 408, gRPC `DEADLINE_EXCEEDED`).
    #[error("the request did not complete within {seconds} s (criteo-serve --request-timeout)")]
    Timeout {
        /// The limit, in seconds.
        seconds: f64,
    },
    /// No version loaded yet, or the server is saturated or stopping (HTTP
    /// 503, gRPC `UNAVAILABLE`).
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    /// The HTTP status code.
    #[must_use]
    pub fn http_status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::NotFound(_) => 404,
            Self::MethodNotAllowed(_) => 405,
            Self::Timeout { .. } => 408,
            Self::TooLarge { .. } => 413,
            Self::Unavailable(_) => 503,
        }
    }

    /// The gRPC status.
    #[must_use]
    pub fn grpc_status(&self) -> tonic::Status {
        let msg = self.to_string();
        match self {
            Self::BadRequest(_) => tonic::Status::invalid_argument(msg),
            Self::NotFound(_) => tonic::Status::not_found(msg),
            Self::MethodNotAllowed(_) => tonic::Status::unimplemented(msg),
            Self::Timeout { .. } => tonic::Status::deadline_exceeded(msg),
            Self::TooLarge { .. } => tonic::Status::resource_exhausted(msg),
            Self::Unavailable(_) => tonic::Status::unavailable(msg),
        }
    }

    /// A short name of the kind, for metrics labels.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::Timeout { .. } => "timeout",
            Self::TooLarge { .. } => "too_large",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// No model was given.
    #[error("no model to serve: give --model-base-path or --model NAME=PATH")]
    NoModels,
    /// A listening address could not be bound.
    #[error("cannot listen on {addr} for {api}")]
    Bind {
        /// REST or gRPC.
        api: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The runtime could not start.
    #[error("cannot start the server's runtime")]
    Runtime(#[source] std::io::Error),
    /// Connections were still open after the drain timeout and were closed.
    #[error("{api} connections were still open after {seconds} s of draining and were closed")]
    Drain {
        /// REST or gRPC.
        api: &'static str,
        /// The drain timeout, in seconds.
        seconds: f64,
    },
    /// A listener failed while serving.
    #[error("the {api} listener failed")]
    Serve {
        /// REST or gRPC.
        api: &'static str,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}
