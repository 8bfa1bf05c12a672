//! Calls: digit collection ([`digits`]) and the call actor that runs one transaction on real
//! SIP and media ([`actor`]) with the execution model of `sma-engine`.

pub mod actor;
mod bridging;
pub mod digits;
mod legs;
pub mod meeting;
