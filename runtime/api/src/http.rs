//! The API's HTTP shell: hyper on a TCP listener. Each request is read (bounded), its SigV4
//! signature verified, its operation found in the model, and answered in the rest-json
//! shapes botocore parses: JSON bodies, and for errors the `x-amzn-ErrorType` header with a
//! `{"Code", "Message"}` body.
//!
//! The operations themselves are in [`crate::voice`]. An operation of the model this runtime
//! does not implement answers `BadRequestException` saying so: never a 500, never a fake
//! success.

use crate::error::ApiError;
use crate::routes::{query_pairs, RouteError, Router};
use crate::sigv4::{self, Verifier};
use crate::voice::{Deployment, OpRequest, Runtime, Service};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use sma_store::Store;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;
use tracing::{debug, info, warn};

/// The longest request target (path and query) answered with the API's own JSON error; the
/// HTTP layer refuses targets over 64 KiB itself, with an empty 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// What the API is configured with.
pub struct ApiConfig {
    /// Access key id → secret access key.
    pub access_keys: HashMap<String, String>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Who this deployment is and the limits it enforces.
    pub deployment: Deployment,
    pub store: Arc<dyn Store>,
    pub runtime: Arc<dyn Runtime>,
}

/// The API's state.
pub struct Api {
    router: Router,
    verifier: Verifier,
    max_body: usize,
    service: Service,
    requests: AtomicU64,
}

fn respond(status: u16, body: Option<Value>, request_id: &str) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("x-amzn-RequestId", request_id);
    let body = match body {
        Some(v) => {
            builder = builder.header("content-type", "application/json");
            Bytes::from(v.to_string())
        }
        None => Bytes::new(),
    };
    builder
        .body(Full::new(body))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn error_response(e: &ApiError, request_id: &str) -> Response<Full<Bytes>> {
    let mut response = respond(
        e.status,
        Some(json!({"Code": e.code, "Message": e.message})),
        request_id,
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(e.code) {
        response.headers_mut().insert("x-amzn-ErrorType", v);
    }
    response
}

impl Api {
    pub fn new(config: ApiConfig) -> Api {
        Api {
            router: Router::chime_sdk(),
            verifier: Verifier::new(config.access_keys, "chime")
                .with_regions(config.deployment.regions.clone()),
            max_body: config.max_body_bytes,
            service: Service::new(config.store, config.runtime, config.deployment),
            requests: AtomicU64::new(0),
        }
    }

    /// Answers one request whose body has been read: authentication, routing, then the
    /// operation (on a blocking thread: the store is synchronous).
    pub fn dispatch(
        &self,
        method: &str,
        target: &str,
        headers: &[(String, String)],
        body: &[u8],
        now: SystemTime,
    ) -> Result<(u16, Option<Value>), ApiError> {
        let request = sigv4::Request {
            method,
            target,
            headers,
            body,
        };
        self.verifier.verify(&request, now).map_err(|e| ApiError {
            status: e.status(),
            code: e.code(),
            message: e.to_string(),
        })?;
        // What AWS front ends answer for a request that is no operation (AWS Common Errors):
        // an unknown path or a method the path does not take is an unknown operation.
        let matched = self.router.find(method, target).map_err(|e| match e {
            RouteError::UnknownPath(_) | RouteError::WrongMethod { .. } => ApiError {
                status: 404,
                code: "UnknownOperationException",
                message: e.to_string(),
            },
        })?;
        let route = matched.route;
        debug!(operation = %route.name, "API request");
        if !Service::supports(&route.name) {
            return Err(ApiError::bad_request(format!(
                "{} is not supported by this runtime",
                route.name
            )));
        }
        let query = target
            .split_once('?')
            .map(|(_, q)| query_pairs(q))
            .unwrap_or_default();
        let op = OpRequest {
            labels: &matched.labels,
            query: &query,
            body,
        };
        let reply = self.service.call(&route.name, method != "GET", &op)?;
        Ok((route.code, reply))
    }

    async fn serve_request(self: Arc<Self>, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let started = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let request_id = format!("sma-{started:x}-{n}");
        let method = request.method().as_str().to_owned();
        let target = request
            .uri()
            .path_and_query()
            .map_or("/".to_owned(), |p| p.as_str().to_owned());
        if target.len() > MAX_URI_BYTES {
            let err = ApiError {
                status: 414,
                code: "MalformedHttpRequestException",
                message: format!(
                    "the request URI is {} bytes; at most {MAX_URI_BYTES} are accepted",
                    target.len()
                ),
            };
            return error_response(&err, &request_id);
        }
        let mut headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        // HTTP/1.1 carries the host in its header; keep it as the signer saw it.
        if !headers.iter().any(|(k, _)| k == "host") {
            if let Some(authority) = request.uri().authority() {
                headers.push(("host".into(), authority.to_string()));
            }
        }
        let body = match Limited::new(request.into_body(), self.max_body)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                let err = ApiError {
                    status: 413,
                    code: "RequestEntityTooLargeException",
                    message: format!(
                        "the request body could not be read or is over {} bytes: {e}",
                        self.max_body
                    ),
                };
                return error_response(&err, &request_id);
            }
        };
        let api = self.clone();
        let (m, t) = (method.clone(), target.clone());
        let answered = tokio::task::spawn_blocking(move || {
            api.dispatch(&m, &t, &headers, &body, SystemTime::now())
        })
        .await
        .unwrap_or_else(|e| {
            Err(ApiError::service_failure(format!(
                "the request's handling failed: {e}"
            )))
        });
        match answered {
            Ok((status, value)) => respond(status, value, &request_id),
            Err(e) => {
                info!(%method, %target, status = e.status, code = e.code, "API request refused");
                error_response(&e, &request_id)
            }
        }
    }
}

/// Serves the API on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, api: Arc<Api>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "API accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let api = api.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let api = api.clone();
                async move { Ok::<_, std::convert::Infallible>(api.serve_request(request).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                debug!(%peer, error = %e, "API connection ended");
            }
        });
    }
}
