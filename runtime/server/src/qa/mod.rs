//! The QA tool: `sma call` dials a scenario like a caller would (one call, or many in load
//! mode), and `sma simulate` runs a handler through a scripted call flow without SIP.
//!
//! The scenario state machine ([`run`]) is sans-IO; [`dialer`] and [`caller`] are its IO
//! shell on the project's SIP and media crates.

pub mod call_cmd;
pub mod caller;
pub mod dialer;
pub mod listen;
pub mod load;
pub mod report;
pub mod run;
pub mod scenario;
pub mod simulate;
