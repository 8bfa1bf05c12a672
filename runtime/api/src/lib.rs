//! The management API the AWS SDKs and CLI talk to (`chime-sdk-voice`, rest-json). So far:
//! verification of their AWS Signature Version 4 request signatures ([`sigv4`]), sans-IO and
//! checked against requests botocore signed.

pub mod routes;
pub mod sigv4;
