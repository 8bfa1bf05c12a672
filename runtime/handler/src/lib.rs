//! Handler invocation for sma: WebAssembly components ([`wasm`]), HTTP webhooks ([`webhook`]),
//! and failover between a rule's target applications ([`failover`]).
//!
//! An invocation takes the event JSON and yields the handler's response read as JSON
//! ([`ParsedResponse`]), or a typed [`InvokeError`]. Checking that response against the
//! contract is the job of [`ParsedResponse::validate`]; a response that breaks the contract is still a
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

use sma_actions::ParsedResponse;
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
    /// Logic of the runtime's own, in process (a meeting dial-in answers its calls with
    /// actions like any handler, so the call engine runs them the same way).
    Builtin(std::sync::Arc<dyn BuiltinHandler>),
}

/// A handler the runtime itself provides: the event JSON in, the response out.
pub trait BuiltinHandler: Send + Sync {
    /// Answers one event.
    fn invoke(&self, event_json: &str) -> Result<ParsedResponse, InvokeError>;
}

impl HandlerEndpoint {
    /// Invokes the handler once. Component invocations run on tokio's blocking pool so a
    /// long-running guest never stalls the reactor.
    pub async fn invoke(
        &self,
        event_json: &str,
        transaction_id: &str,
    ) -> Result<ParsedResponse, InvokeError> {
        match self {
            Self::Wasm(handler) => {
                let handler = handler.clone();
                let (event, tx) = (event_json.to_owned(), transaction_id.to_owned());
                tokio::task::spawn_blocking(move || handler.invoke(&event, &tx))
                    .await
                    .map_err(|e| InvokeError::Trap(format!("invocation task failed: {e}")))?
            }
            Self::Webhook(handler) => handler.invoke(event_json, transaction_id).await,
            Self::Builtin(handler) => handler.invoke(event_json),
        }
    }

    /// An invoker for one call, honouring the handler's [`InstanceMode`]: with
    /// `ReusePerCall` a component keeps one instance for the call's invocations.
    pub fn for_call(&self) -> CallInvoker {
        match self {
            Self::Wasm(handler) if handler.limits().instance_mode == InstanceMode::ReusePerCall => {
                CallInvoker::Session(Box::new(handler.session()))
            }
            other => CallInvoker::Shared(other.clone()),
        }
    }
}

/// Invokes one call's events on its handler. Held by whoever owns the call for its lifetime,
/// and dropped with it (which releases a reused instance).
pub enum CallInvoker {
    /// A fresh instance (or a webhook request) per invocation.
    Shared(HandlerEndpoint),
    /// One instance for the whole call.
    Session(Box<WasmSession>),
}

impl CallInvoker {
    /// Invokes the handler for one of the call's events. A reused instance runs on the
    /// current thread: call this from a blocking-capable context.
    pub async fn invoke(
        &mut self,
        event_json: &str,
        transaction_id: &str,
    ) -> Result<ParsedResponse, InvokeError> {
        match self {
            Self::Shared(endpoint) => endpoint.invoke(event_json, transaction_id).await,
            Self::Session(session) => {
                tokio::task::block_in_place(|| session.invoke(event_json, transaction_id))
            }
        }
    }
}
