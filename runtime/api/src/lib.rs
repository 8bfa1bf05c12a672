//! The management API the AWS SDKs and CLI talk to (`chime-sdk-voice`, rest-json): request
//! authentication by AWS Signature Version 4 ([`sigv4`], sans-IO, checked against requests
//! botocore signed), the model's routes ([`routes`]) and the HTTP shell ([`http`]). Only a
//! few operations are implemented yet; the rest answer that they are not supported.

pub mod http;
pub mod routes;
pub mod sigv4;
