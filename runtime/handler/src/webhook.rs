//! Handlers as HTTP webhooks: a POST of the event JSON, the response JSON in the body.

use crate::error::InvokeError;
use crate::signature::{sign, SIGNATURE_HEADER};
use serde_json::Value;
use sma_actions::ParsedResponse;
use sma_actions::{Limits, ResponseError};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Connection pool shared by every webhook target of the node: keep-alive connections are
/// reused across calls, so an invocation on a warm connection costs one round trip.
#[derive(Clone)]
pub struct WebhookClient {
    client: reqwest::Client,
}

impl WebhookClient {
    /// A pool with idle connections kept 90 s, up to 32 per host.
    pub fn new() -> Result<Self, InvokeError> {
        let client = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(32)
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("sma/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| InvokeError::Load(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { client })
    }
}

/// One webhook target. Cheap to clone.
#[derive(Clone)]
pub struct WebhookHandler {
    inner: Arc<Settings>,
}

struct Settings {
    client: WebhookClient,
    url: reqwest::Url,
    secret: Option<Arc<[u8]>>,
    deadline: Duration,
    limits: Limits,
}

/// Longest error-body excerpt kept in an [`InvokeError::HttpStatus`].
const BODY_EXCERPT: usize = 200;

impl WebhookHandler {
    /// A webhook at `url` (`http` or `https`), signing with `secret` when given.
    pub fn new(
        client: WebhookClient,
        url: &str,
        secret: Option<&[u8]>,
        deadline: Duration,
    ) -> Result<Self, InvokeError> {
        let url = reqwest::Url::parse(url)
            .map_err(|e| InvokeError::Load(format!("invalid webhook URL {url:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(InvokeError::Load(format!(
                "webhook URL {url} must be http or https"
            )));
        }
        Ok(Self {
            inner: Arc::new(Settings {
                client,
                url,
                secret: secret.map(Arc::from),
                deadline,
                limits: Limits::default(),
            }),
        })
    }

    /// The URL.
    pub fn url(&self) -> &str {
        self.inner.url.as_str()
    }

    /// POSTs the event and reads the response, within the deadline.
    pub async fn invoke(
        &self,
        event_json: &str,
        transaction_id: &str,
    ) -> Result<ParsedResponse, InvokeError> {
        let deadline = self.inner.deadline;
        match tokio::time::timeout(deadline, self.exchange(event_json, transaction_id)).await {
            Ok(result) => result,
            Err(_) => Err(InvokeError::DeadlineExceeded(deadline)),
        }
    }

    async fn exchange(
        &self,
        event_json: &str,
        transaction_id: &str,
    ) -> Result<ParsedResponse, InvokeError> {
        let this = &*self.inner;
        let body = event_json.as_bytes().to_vec();
        let mut request = this
            .client
            .client
            .post(this.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Sma-Transaction-Id", transaction_id);
        if let Some(secret) = &this.secret {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            request = request.header(SIGNATURE_HEADER, sign(secret, now, &body));
        }
        let mut response = request
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = response.status();
        let limit = this.limits.max_response_bytes;
        if let Some(length) = response.content_length() {
            if length > limit as u64 && status.is_success() {
                return Err(InvokeError::InvalidResponse(ResponseError::TooLarge {
                    size: usize::try_from(length).unwrap_or(usize::MAX),
                    limit,
                }));
            }
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(e))? {
            if body.len() + chunk.len() > limit {
                if !status.is_success() {
                    break;
                }
                return Err(InvokeError::InvalidResponse(ResponseError::TooLarge {
                    size: body.len() + chunk.len(),
                    limit,
                }));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(BODY_EXCERPT)]).into_owned();
            return Err(InvokeError::HttpStatus {
                status: status.as_u16(),
                body: text,
            });
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null.into());
        }
        ParsedResponse::read_bytes(&body, &this.limits).map_err(InvokeError::InvalidResponse)
    }

    fn transport(&self, e: reqwest::Error) -> InvokeError {
        let detail = error_chain(&e);
        let url = &self.inner.url;
        if e.is_timeout() {
            InvokeError::DeadlineExceeded(self.inner.deadline)
        } else if e.is_connect() {
            InvokeError::Connect(format!("{url}: {detail}"))
        } else {
            InvokeError::Transport(format!("{url}: {detail}"))
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
