//! Calls: the execution model ([`engine`]), digit collection ([`digits`]), where buckets live
//! ([`storage`]), and the call actor that runs one transaction on real SIP and media
//! ([`actor`]).

pub mod actor;
pub mod digits;
pub mod engine;
pub mod storage;
