//! SIP in the runtime: transports and the endpoint task around the sans-IO core.

pub mod auth_guard;
pub mod endpoint;
pub mod tls;
pub mod transport;
