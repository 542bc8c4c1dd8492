//! The REST API, as TensorFlow Serving's `api_rest` documents it.
//!
//! | method | path | answer |
//! |---|---|---|
//! | `POST` | `/v1/models/{name}[/versions/{v}\|/labels/{l}]:predict` | `{"predictions": [...]}` or `{"outputs": ...}` |
//! | `POST` | `/v1/models/{name}[/versions/{v}\|/labels/{l}]:classify` | `{"results": [...]}` |
//! | `GET` | `/v1/models/{name}[/versions/{v}]` | `{"model_version_status": [...]}` |
//! | `GET` | `/v1/models/{name}[/versions/{v}]/metadata` | `{"model_spec": ..., "metadata": {"signature_def": ...}}` |
//! | `GET` | `/healthz` | `ok` once every model has a version loaded |
//! | `GET` | `/metrics` | Prometheus text |
//!
//! Errors are `{"error": "..."}` with the status of [`ApiError::http_status`].
//! axum's router cannot match `{name}:predict`, so one handler takes every
//! path and splits it here.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use sparky_linear::metrics::sigmoid;
use sparky_predict::writer::{class_scores, write_prediction};

use crate::App;
use crate::error::ApiError;
use crate::json::{Layout, Parsed, parse_classify, parse_predict};
use crate::models::{Loaded, VersionSel};

/// The router of the REST API over `app`.
pub(crate) fn router(app: Arc<App>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(app)
}

/// What a path asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Healthz,
    Metrics,
    Status { model: &'a str, version: VersionSel },
    Metadata { model: &'a str, version: VersionSel },
    Predict { model: &'a str, version: VersionSel },
    Classify { model: &'a str, version: VersionSel },
}

impl Route<'_> {
    fn api(&self) -> &'static str {
        match self {
            Route::Healthz => "healthz",
            Route::Metrics => "metrics",
            Route::Status { .. } => "status",
            Route::Metadata { .. } => "metadata",
            Route::Predict { .. } => "predict",
            Route::Classify { .. } => "classify",
        }
    }

    fn method(&self) -> Method {
        match self {
            Route::Predict { .. } | Route::Classify { .. } => Method::POST,
            _ => Method::GET,
        }
    }
}

fn version_of(kind: &str, v: &str) -> Result<VersionSel, ApiError> {
    match kind {
        "versions" => v.parse::<u64>().map(VersionSel::Number).map_err(|_| {
            ApiError::BadRequest(format!("version \"{v}\" is not a number (versions are the exports' folder names)"))
        }),
        "labels" if !v.is_empty() => Ok(VersionSel::Label(v.to_string())),
        _ => Err(ApiError::NotFound(format!("no route for \"/{kind}/{v}\""))),
    }
}

/// Splits a request path into its route.
fn route(path: &str) -> Result<Route<'_>, ApiError> {
    match path {
        "/healthz" => return Ok(Route::Healthz),
        "/metrics" => return Ok(Route::Metrics),
        _ => {}
    }
    let not_found = || ApiError::NotFound(format!("no route for \"{path}\" (see GET /v1/models/{{name}})"));
    let rest = path.strip_prefix("/v1/models/").ok_or_else(not_found)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    // A method is the part after the last ':' of the last segment.
    let (rest, method) = match rest.rsplit_once(':') {
        Some((head, m)) if !m.contains('/') => (head, Some(m)),
        _ => (rest, None),
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let (model, version, tail) = match segs.as_slice() {
        [m] => (*m, VersionSel::Latest, None),
        [m, t] => (*m, VersionSel::Latest, Some(*t)),
        [m, kind, v] => (*m, version_of(kind, v)?, None),
        [m, kind, v, t] => (*m, version_of(kind, v)?, Some(*t)),
        _ => return Err(not_found()),
    };
    if model.is_empty() {
        return Err(not_found());
    }
    match (method, tail) {
        (None, None) => Ok(Route::Status { model, version }),
        (None, Some("metadata")) => Ok(Route::Metadata { model, version }),
        (Some("predict"), None) => Ok(Route::Predict { model, version }),
        (Some("classify"), None) => Ok(Route::Classify { model, version }),
        (Some(m @ ("regress" | "multi_inference")), None) => Err(ApiError::NotFound(format!(
            "the \"{m}\" API is not served (the model is a classifier: use predict or classify)"
        ))),
        (Some(m), None) => Err(ApiError::NotFound(format!("no API \"{m}\" (predict, classify)"))),
        _ => Err(not_found()),
    }
}

fn json_response(status: u16, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn error_response(e: &ApiError) -> Response {
    let body = serde_json::to_vec(&serde_json::json!({ "error": e.to_string() })).unwrap_or_default();
    let mut r = json_response(e.http_status(), body);
    if let ApiError::MethodNotAllowed(_) = e {
        r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    }
    r
}

async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    let start = Instant::now();
    let path = req.uri().path().to_string();
    let (api, result) = match route(&path) {
        Ok(r) => (r.api(), answer(&app, r, req).await),
        Err(e) => ("other", Err(e)),
    };
    let (response, rows) = match result {
        Ok((r, rows)) => (r, rows),
        Err(e) => (error_response(&e), 0),
    };
    app.metrics.record("rest", api, response.status().as_u16(), rows, start.elapsed());
    response
}

/// Reads the body within the size limit and the request's deadline.
async fn read_body(app: &App, req: Request) -> Result<Bytes, ApiError> {
    let limit = app.config.max_body;
    let announced = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::TooLarge { limit });
    }
    let collect = Limited::new(req.into_body(), limit).collect();
    match tokio::time::timeout(app.config.request_timeout, collect).await {
        Err(_) => Err(ApiError::Timeout { seconds: app.config.request_timeout.as_secs_f64() }),
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(ApiError::TooLarge { limit }),
        Ok(Err(e)) => Err(ApiError::BadRequest(format!("the request body could not be read: {e}"))),
    }
}

async fn answer(app: &App, route: Route<'_>, req: Request) -> Result<(Response, u64), ApiError> {
    if req.method() != route.method() {
        return Err(ApiError::MethodNotAllowed(format!(
            "{} {} takes {}",
            req.method(),
            req.uri().path(),
            route.method()
        )));
    }
    match route {
        Route::Healthz => {
            let missing: Vec<&str> = app.models.iter().filter(|m| m.current().is_none()).map(|m| m.name()).collect();
            if missing.is_empty() {
                Ok((json_response(200, b"{\"status\": \"ok\"}".to_vec()), 0))
            } else {
                Err(ApiError::Unavailable(format!("no version loaded yet for: {}", missing.join(", "))))
            }
        }
        Route::Metrics => {
            let mut r = Response::new(Body::from(app.metrics.render(&app.models)));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
            Ok((r, 0))
        }
        Route::Status { model, version } => {
            let loaded = app.models.get(model)?.select(&version)?;
            Ok((json_response(200, status_json(&loaded)), 0))
        }
        Route::Metadata { model, version } => {
            let loaded = app.models.get(model)?.select(&version)?;
            Ok((json_response(200, metadata_json(model, &loaded)), 0))
        }
        Route::Predict { .. } | Route::Classify { .. } => {
            let classify = matches!(route, Route::Classify { .. });
            let (Route::Predict { model, version } | Route::Classify { model, version }) = route else {
                unreachable!("matched above")
            };
            let m = Arc::clone(app.models.get(model)?);
            let _permit = app.admit().await?;
            let body = read_body(app, req).await?;
            // The version is taken once the body is in: a swap meanwhile is
            // seen, and the request finishes on the version it took.
            let loaded = m.select(&version)?;
            let (out, rows) = if classify { classify_body(&body, &loaded)? } else { predict_body(&body, &loaded)? };
            Ok((json_response(200, out), rows as u64))
        }
    }
}

/// The request path of `:predict` once the body is in: parse, score, write.
/// Returns the answer's JSON and the rows scored.
///
/// # Errors
/// A malformed body ([`ApiError::BadRequest`], naming the instance and field).
pub fn predict_body(body: &[u8], loaded: &Loaded) -> Result<(Vec<u8>, usize), ApiError> {
    let b = parse_predict(body, loaded)?;
    Ok((predict_json(loaded, &b.rows, b.layout), b.rows.len()))
}

/// The request path of `:classify` once the body is in: parse, score, write.
///
/// # Errors
/// As [`predict_body`].
pub fn classify_body(body: &[u8], loaded: &Loaded) -> Result<(Vec<u8>, usize), ApiError> {
    let rows = parse_classify(body, loaded)?;
    Ok((classify_json(loaded, &rows), rows.len()))
}

fn p_click(loaded: &Loaded, r: &Parsed) -> f32 {
    // As criteo-predict computes it: the logit, then the sigmoid.
    sigmoid(loaded.scorer.logit(&r.ints, &r.ids))
}

/// The answer of `:predict`: each row's object exactly as criteo-predict
/// writes it as a line, in request order.
pub(crate) fn predict_json(loaded: &Loaded, rows: &[Parsed], layout: Layout) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + rows.len() * 64);
    match layout {
        Layout::Rows => {
            out.extend_from_slice(b"{\"predictions\": [");
            for (i, r) in rows.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_prediction(&mut out, r.id, p_click(loaded, r));
            }
            out.extend_from_slice(b"]}");
        }
        Layout::Columnar => {
            let scores: Vec<[f32; 2]> = rows.iter().map(|r| class_scores(p_click(loaded, r))).collect();
            out.extend_from_slice(b"{\"outputs\": {\"classes\": [");
            for i in 0..rows.len() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(b"[\"0\", \"1\"]");
            }
            out.extend_from_slice(b"], \"scores\": [");
            let mut f = ryu::Buffer::new();
            for (i, [p0, p1]) in scores.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                out.push(b'[');
                out.extend_from_slice(f.format_finite(*p0).as_bytes());
                out.extend_from_slice(b", ");
                out.extend_from_slice(f.format_finite(*p1).as_bytes());
                out.push(b']');
            }
            out.extend_from_slice(b"]}}");
        }
    }
    out
}

/// The answer of `:classify`: `{"results": [[["0", p0], ["1", p1]], ...]}`.
pub(crate) fn classify_json(loaded: &Loaded, rows: &[Parsed]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + rows.len() * 40);
    let mut f = ryu::Buffer::new();
    out.extend_from_slice(b"{\"results\": [");
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        let [p0, p1] = class_scores(p_click(loaded, r));
        out.extend_from_slice(b"[[\"0\", ");
        out.extend_from_slice(f.format_finite(p0).as_bytes());
        out.extend_from_slice(b"], [\"1\", ");
        out.extend_from_slice(f.format_finite(p1).as_bytes());
        out.extend_from_slice(b"]]");
    }
    out.extend_from_slice(b"]}");
    out
}

/// The version status, as TF Serving answers `GET /v1/models/{name}`.
fn status_json(loaded: &Loaded) -> Vec<u8> {
    let v = serde_json::json!({
        "model_version_status": [{
            "version": loaded.version.to_string(),
            "state": "AVAILABLE",
            "status": { "error_code": "OK", "error_message": "" }
        }]
    });
    serde_json::to_vec_pretty(&v).unwrap_or_default()
}

/// The metadata, as TF Serving answers `GET /v1/models/{name}/metadata`: the
/// `serving_default` signature in protobuf's JSON mapping.
fn metadata_json(model: &str, loaded: &Loaded) -> Vec<u8> {
    use sparky_proto::tensorflow::tensor_info::Encoding;
    let sig = sparky_savedmodel::serving_signature();
    let tensors = |m: &std::collections::BTreeMap<String, sparky_proto::tensorflow::TensorInfo>| {
        m.iter()
            .map(|(k, t)| {
                let dims: Vec<serde_json::Value> = t
                    .tensor_shape
                    .iter()
                    .flat_map(|s| &s.dim)
                    .map(|d| serde_json::json!({ "size": d.size.to_string(), "name": d.name }))
                    .collect();
                let name = match &t.encoding {
                    Some(Encoding::Name(n)) => n.clone(),
                    None => String::new(),
                };
                let dtype = sparky_proto::tensorflow::DataType::try_from(t.dtype)
                    .map_or_else(|_| t.dtype.to_string(), |d| d.as_str_name().to_string());
                (k.clone(), serde_json::json!({ "dtype": dtype, "tensor_shape": { "dim": dims, "unknown_rank": false }, "name": name }))
            })
            .collect::<serde_json::Map<String, serde_json::Value>>()
    };
    let v = serde_json::json!({
        "model_spec": { "name": model, "signature_name": "", "version": loaded.version.to_string() },
        "metadata": { "signature_def": { "signature_def": {
            sparky_savedmodel::SERVING_SIGNATURE: {
                "inputs": tensors(&sig.inputs),
                "outputs": tensors(&sig.outputs),
                "method_name": sig.method_name,
            }
        } } }
    });
    serde_json::to_vec_pretty(&v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_split_names_versions_and_methods() {
        assert_eq!(route("/v1/models/m:predict").unwrap(), Route::Predict { model: "m", version: VersionSel::Latest });
        assert_eq!(
            route("/v1/models/m/versions/17:classify").unwrap(),
            Route::Classify { model: "m", version: VersionSel::Number(17) }
        );
        assert_eq!(
            route("/v1/models/m/labels/stable:predict").unwrap(),
            Route::Predict { model: "m", version: VersionSel::Label("stable".into()) }
        );
        assert_eq!(route("/v1/models/m").unwrap(), Route::Status { model: "m", version: VersionSel::Latest });
        assert_eq!(
            route("/v1/models/m/versions/3").unwrap(),
            Route::Status { model: "m", version: VersionSel::Number(3) }
        );
        assert_eq!(
            route("/v1/models/m/metadata").unwrap(),
            Route::Metadata { model: "m", version: VersionSel::Latest }
        );
        assert_eq!(
            route("/v1/models/m/versions/3/metadata").unwrap(),
            Route::Metadata { model: "m", version: VersionSel::Number(3) }
        );
        assert!(
            matches!(route("/v1/models/m/versions/x:predict"), Err(ApiError::BadRequest(m)) if m.contains("\"x\""))
        );
        assert!(matches!(route("/v1/models/m:explode"), Err(ApiError::NotFound(_))));
        assert!(matches!(route("/v1/models/m:regress"), Err(ApiError::NotFound(_))));
        assert!(matches!(route("/v2/models/m"), Err(ApiError::NotFound(_))));
        assert!(matches!(route("/v1/models/"), Err(ApiError::NotFound(_))));
        assert!(matches!(route("/v1/models/m/a/b/c/d"), Err(ApiError::NotFound(_))));
    }
}
