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
// `no_std` + `alloc` so that a guest can build its handler without the standard library: on
// `wasm32-wasip2`, linking `std` pulls in WASI imports (stdio, environment, exit) that every
// fresh instance then pays to instantiate (see `guest-sdk`). The host enables `std`.
#![no_std]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

/// The `alloc` names every module uses, in place of the `std` prelude.
mod prelude {
    pub(crate) use alloc::borrow::ToOwned;
    pub(crate) use alloc::boxed::Box;
    pub(crate) use alloc::format;
    pub(crate) use alloc::string::{String, ToString};
    pub(crate) use alloc::vec;
    pub(crate) use alloc::vec::Vec;
}

mod action;
mod common;
#[cfg(feature = "regex")]
mod digits_pattern;
mod error;
mod event;
mod ignored;
mod lenient;
mod limits;
mod parameters;
mod parsed;
mod response;
mod rules;
mod strict_json;

pub use action::*;
pub use common::*;
#[cfg(feature = "regex")]
pub use digits_pattern::{DigitsPattern, PatternError, BACKTRACK_LIMIT};
pub use error::{
    ActionError, ActionErrorType, Disposition, InvalidResponseType, ResponseError, Rule,
};
pub use event::*;
pub use lenient::{Flag, Int, WireEnum};
pub use limits::Limits;
pub use parameters::Parameters;
pub use parsed::ParsedResponse;
pub use response::{
    parse_json, parse_json_text, validate_response, validate_response_keeping_prefix,
    validate_response_value, Rejection, Response, ValidatedAction, ValidatedResponse,
};
pub use rules::{is_allowed_sip_header, is_e164};
