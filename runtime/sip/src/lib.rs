//! sans-IO SIP for the sma runtime.
//!
//! Nothing in this crate owns a socket, spawns a task or reads a clock. Callers hand it
//! `(bytes, source, transport)` and the current [`std::time::Instant`], and poll it for bytes
//! to send, the next timer to arm and events for the application. That keeps every
//! retransmission and timer path testable with simulated time (see `tests/`), the way str0m and
//! quinn-proto test their protocol cores.
//!
//! Layers, bottom up, each importing only from the ones below it:
//! - [`message`]: parse and serialize SIP messages (RFC 3261 §7, §20, §25), rejecting hostile
//!   bytes with the status and reason the RFC prescribes.
//! - [`sdp`]: session descriptions (RFC 4566) and offer/answer (RFC 3264).
//! - [`auth`]: digest authentication (RFC 7616 / RFC 8760), server and client side.
//! - [`transaction`]: the four transaction state machines of RFC 3261 §17 with timers A–K.
//! - [`ua`]: the user agent core: dialogs, UAS and UAC behaviour, CANCEL, OPTIONS, session
//!   timers (RFC 4028).

pub mod auth;
pub mod message;
pub mod rng;
pub mod sdp;
pub mod transaction;
pub mod ua;

pub use message::{Message, Method, Request, Response, Transport};
