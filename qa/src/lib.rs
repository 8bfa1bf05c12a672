//! The QA tool: `sma call` dials a scenario like a caller would (one call, or many in load
//! mode), `sma simulate` runs a handler through a scripted call flow without SIP, and
//! `sma invoke` runs a handler against one event.
//!
//! The scenario state machine ([`run`]) is sans-IO; [`dialer`] and [`caller`] are its IO
//! shell on the project's SIP and media crates. The simulator runs the execution model of
//! `sma-engine`, the same one `sma serve` runs, so the two cannot drift apart.

pub mod call_cmd;
pub mod caller;
pub mod dialer;
pub mod invoke;
pub mod listen;
pub mod load;
pub mod report;
pub mod run;
pub mod scenario;
pub mod simulate;
