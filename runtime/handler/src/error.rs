//! Why an invocation produced no usable response.

use sma_actions::ResponseError;
use std::time::Duration;
use thiserror::Error;

/// A failed invocation. Each variant is a distinct failure class: the failover chain moves on
/// to the next target for any of them, and logs and call records carry [`InvokeError::kind`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvokeError {
    /// The component could not be compiled, loaded or linked.
    #[error("component could not be loaded: {0}")]
    Load(String),
    /// No instance slot was free: more invocations in flight than the engine allows.
    #[error("no instance available: {0}")]
    Capacity(String),
    /// The guest trapped (a panic, `unreachable`, an out-of-bounds access, ...).
    #[error("handler trapped: {0}")]
    Trap(String),
    /// The invocation ran past its deadline and was stopped.
    #[error("handler exceeded its deadline of {} ms", .0.as_millis())]
    DeadlineExceeded(Duration),
    /// The guest tried to grow memory past its cap.
    #[error("handler exceeded its memory limit of {limit_bytes} bytes")]
    OutOfMemory {
        /// The cap.
        limit_bytes: usize,
    },
    /// The guest returned `err(message)` from `handle-event`.
    #[error("handler returned an error: {0}")]
    HandlerError(String),
    /// The response body is not JSON (or too large, or not UTF-8).
    #[error("handler response is unreadable: {0}")]
    InvalidResponse(ResponseError),
    /// A webhook answered with a status other than 2xx.
    #[error("webhook answered HTTP {status}: {body}")]
    HttpStatus {
        /// The status code.
        status: u16,
        /// The start of the body, for the log.
        body: String,
    },
    /// A webhook could not be reached.
    #[error("webhook connection failed: {0}")]
    Connect(String),
    /// A webhook exchange failed after connecting.
    #[error("webhook transport error: {0}")]
    Transport(String),
    /// The target is cooling down after repeated failures and was not tried.
    #[error("skipped: cooling down after {failures} consecutive failures")]
    CoolingDown {
        /// Consecutive failures that started the cool-down.
        failures: u32,
    },
}

impl InvokeError {
    /// A short, stable name for logs, metrics and call records.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Load(_) => "load",
            Self::Capacity(_) => "capacity",
            Self::Trap(_) => "trap",
            Self::DeadlineExceeded(_) => "deadline",
            Self::OutOfMemory { .. } => "out_of_memory",
            Self::HandlerError(_) => "handler_error",
            Self::InvalidResponse(_) => "invalid_response",
            Self::HttpStatus { .. } => "http_status",
            Self::Connect(_) => "connect",
            Self::Transport(_) => "transport",
            Self::CoolingDown { .. } => "cooling_down",
        }
    }
}
