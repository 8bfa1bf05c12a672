//! Errors in the model's shapes: a code botocore maps to its exception class (the service's
//! error shapes), the status the model gives that shape, and a message naming what was wrong.

use sma_store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequestException", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, "NotFoundException", message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(409, "ConflictException", message)
    }

    pub fn limit_exceeded(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "ResourceLimitExceededException", message)
    }

    /// `chime-sdk-meetings`' limit error (the voice model calls its own
    /// `ResourceLimitExceededException`).
    pub fn meetings_limit_exceeded(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "LimitExceededException", message)
    }

    pub fn throttled(message: impl Into<String>) -> ApiError {
        ApiError::new(429, "ThrottledClientException", message)
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(503, "ServiceUnavailableException", message)
    }

    pub fn service_failure(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "ServiceFailureException", message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        tracing::error!(error = %e, "store failure");
        ApiError::service_failure(format!("the store failed: {e}"))
    }
}
