//! Handler invocation for sma: WebAssembly components ([`wasm`]), HTTP webhooks ([`webhook`]),
//! and failover between a rule's target applications ([`failover`]).
//!
//! An invocation takes the event JSON and yields the handler's response as parsed JSON, or a
//! typed [`InvokeError`]. Checking that response against the contract is the job of
//! [`sma_actions::validate_response_value`]; a response that breaks the contract is still a
//! response (the call engine answers it with `INVALID_LAMBDA_RESPONSE`), whereas an
//! `InvokeError` means the target could not be used and the next one is tried.

#![deny(missing_docs)]

pub mod cache;
mod error;
pub mod failover;
pub mod signature;
pub mod wasm;
pub mod webhook;

pub use error::InvokeError;
pub use failover::{AllFailed, Answered, Attempt, CoolDownPolicy, FailoverChain, Target};
pub use wasm::{EngineSettings, InstanceMode, WasmEngine, WasmHandler, WasmLimits, WasmSession};
pub use webhook::{WebhookClient, WebhookHandler};

use serde_json::Value;
use std::time::Duration;

/// The contract's handler deadline (§1.8): 20 s.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(20);

/// Where a target application's handler runs.
#[derive(Clone)]
pub enum HandlerEndpoint {
    /// A component hosted in this process.
    Wasm(WasmHandler),
    /// An HTTP webhook.
    Webhook(WebhookHandler),
}

impl HandlerEndpoint {
    /// Invokes the handler once. Component invocations run on tokio's blocking pool so a
    /// long-running guest never stalls the reactor.
    pub async fn invoke(
        &self,
        event_json: &str,
        transaction_id: &str,
    ) -> Result<Value, InvokeError> {
        match self {
            Self::Wasm(handler) => {
                let handler = handler.clone();
                let (event, tx) = (event_json.to_owned(), transaction_id.to_owned());
                tokio::task::spawn_blocking(move || handler.invoke(&event, &tx))
                    .await
                    .map_err(|e| InvokeError::Trap(format!("invocation task failed: {e}")))?
            }
            Self::Webhook(handler) => handler.invoke(event_json, transaction_id).await,
        }
    }
}
