//! The API's HTTP shell: hyper on a TCP listener. Each request is read (bounded), its SigV4
//! signature verified, its operation found in the model, and answered in the rest-json
//! shapes botocore parses: JSON bodies, and for errors the `x-amzn-ErrorType` header with a
//! `{"Code", "Message"}` body.
//!
//! Implemented so far: `ListAvailableVoiceConnectorRegions`, `GetGlobalSettings`,
//! `UpdateGlobalSettings`. Every other operation of the model answers `BadRequestException`
//! saying it is not supported by this runtime yet: never a 500, never a fake success.

use crate::routes::{RouteError, Router};
use crate::sigv4::{self, Verifier};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tracing::{debug, info, warn};

/// What the API is configured with.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Access key id → secret access key.
    pub access_keys: HashMap<String, String>,
    /// `ListAvailableVoiceConnectorRegions`: the regions this deployment has.
    pub regions: Vec<String>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
}

/// The API's state.
pub struct Api {
    router: Router,
    verifier: Verifier,
    regions: Vec<String>,
    max_body: usize,
    global: Mutex<GlobalSettings>,
    requests: AtomicU64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct VoiceConnectorSettings {
    #[serde(rename = "CdrBucket")]
    cdr_bucket: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct GlobalSettings {
    #[serde(rename = "VoiceConnector")]
    voice_connector: Option<VoiceConnectorSettings>,
}

/// An error in the shape a client parses.
struct ApiError {
    status: u16,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn bad_request(message: String) -> ApiError {
        ApiError {
            status: 400,
            code: "BadRequestException",
            message,
        }
    }
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
            router: Router::chime_sdk_voice(),
            verifier: Verifier::new(config.access_keys, "chime"),
            regions: config.regions,
            max_body: config.max_body_bytes,
            global: Mutex::new(GlobalSettings::default()),
            requests: AtomicU64::new(0),
        }
    }

    /// Answers one request whose body has been read.
    fn dispatch(
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
        let matched = self.router.find(method, target).map_err(|e| match e {
            RouteError::UnknownPath(_) => ApiError {
                status: 404,
                code: "NotFoundException",
                message: e.to_string(),
            },
            RouteError::WrongMethod { .. } => ApiError {
                status: 405,
                code: "BadRequestException",
                message: e.to_string(),
            },
        })?;
        let route = matched.route;
        debug!(operation = %route.name, "API request");
        let ok = route.code;
        match route.name.as_str() {
            "ListAvailableVoiceConnectorRegions" => {
                Ok((ok, Some(json!({"VoiceConnectorRegions": self.regions}))))
            }
            "GetGlobalSettings" => {
                let settings = self
                    .global
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                let vc = settings.voice_connector.unwrap_or_default();
                let mut voice_connector = serde_json::Map::new();
                if let Some(bucket) = vc.cdr_bucket {
                    voice_connector.insert("CdrBucket".into(), Value::from(bucket));
                }
                Ok((ok, Some(json!({"VoiceConnector": voice_connector}))))
            }
            "UpdateGlobalSettings" => {
                let de = &mut serde_json::Deserializer::from_slice(body);
                let settings: GlobalSettings =
                    serde_path_to_error::deserialize(de).map_err(|e| {
                        ApiError::bad_request(format!(
                            "Invalid request body at `{}`: {}",
                            e.path(),
                            e.inner()
                        ))
                    })?;
                if let Some(bucket) = settings
                    .voice_connector
                    .as_ref()
                    .and_then(|v| v.cdr_bucket.as_ref())
                {
                    if !(3..=63).contains(&bucket.len()) {
                        return Err(ApiError::bad_request(format!(
                            "VoiceConnector.CdrBucket `{bucket}` must be 3 to 63 characters"
                        )));
                    }
                }
                *self.global.lock().unwrap_or_else(|p| p.into_inner()) = settings;
                Ok((ok, None))
            }
            other => Err(ApiError::bad_request(format!(
                "{other} is not supported by this runtime yet"
            ))),
        }
    }

    async fn serve_request(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
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
                    code: "BadRequestException",
                    message: format!(
                        "the request body could not be read or is over {} bytes: {e}",
                        self.max_body
                    ),
                };
                return error_response(&err, &request_id);
            }
        };
        match self.dispatch(&method, &target, &headers, &body, SystemTime::now()) {
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
