//! The management API the AWS SDKs and CLI talk to (`chime-sdk-voice`, rest-json): request
//! authentication by AWS Signature Version 4 ([`sigv4`], sans-IO, checked against requests
//! botocore signed), the model's routes ([`routes`]), the operations on the store ([`voice`])
//! and the HTTP shell ([`http`]).

pub mod error;
pub mod http;
pub mod meetings;
pub mod routes;
pub mod sigv4;
pub mod voice;
