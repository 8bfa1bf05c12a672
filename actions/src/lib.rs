//! The wire contract between the sma runtime and SIP media application handlers.
//!
//! It is the same JSON the Amazon Chime SDK PSTN audio service exchanges with its Lambda
//! handlers (`shared/contract/pstn-audio-contract.md` in the project): invocation events the
//! runtime sends ([`InvocationEvent`]), actions a handler returns ([`Action`], inside a
//! [`Response`]), the `ActionData` echoed back ([`ActionData`]), and the error types both sides
//! use. [`validate_response`] reads a handler's reply from untrusted bytes and either returns a
//! [`ValidatedResponse`] or a [`ResponseError`] that names the action index, the field and the
//! rule broken, and says what the call engine does with it ([`Disposition`]).

#![deny(missing_docs)]

mod action;
mod common;
mod error;
mod event;
mod lenient;
mod limits;
mod response;
mod rules;
mod strict_json;

pub use action::*;
pub use common::*;
pub use error::{
    ActionError, ActionErrorType, Disposition, InvalidResponseType, ResponseError, Rule,
};
pub use event::*;
pub use lenient::{Flag, Int};
pub use limits::Limits;
pub use response::{
    parse_json, validate_response, validate_response_value, Response, ValidatedAction,
    ValidatedResponse,
};
pub use rules::{is_allowed_sip_header, is_e164};
