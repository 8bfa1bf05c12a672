//! SIP in the runtime: the endpoint task around the sans-IO core (transports are `sma-net`'s).

pub mod auth_guard;
pub mod endpoint;
