//! Value types shared by several actions and events.

use crate::prelude::*;
use alloc::collections::BTreeMap;
use core::fmt;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// SIP headers carried on a leg or sent on an outgoing INVITE, by header name as received.
pub type SipHeaders = BTreeMap<String, String>;

/// A string map that refuses a repeated key. A map type keeps the last of two equal keys;
/// a response is read straight from its text (see `parsed`), where nothing else would
/// notice, and `{"X-A":"1","X-A":"2"}` is ambiguous input to refuse, not to guess at.
pub(crate) struct UniqueStringMap(pub(crate) BTreeMap<String, String>);

impl<'de> Deserialize<'de> for UniqueStringMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = UniqueStringMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut map = BTreeMap::new();
                while let Some((key, value)) = access.next_entry::<String, String>()? {
                    if let Some((key, _)) = map.remove_entry(&key) {
                        return Err(de::Error::custom(format!("duplicate key `{key}`")));
                    }
                    map.insert(key, value);
                }
                Ok(UniqueStringMap(map))
            }
        }
        deserializer.deserialize_map(MapVisitor)
    }
}

/// `deserialize_with` for an optional string map whose keys must not repeat.
pub(crate) fn optional_unique_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    Option::<UniqueStringMap>::deserialize(deserializer).map(|map| map.map(|m| m.0))
}

crate::lenient::wire_enum! {
    /// Which leg of a transaction a participant or an action refers to.
    pub enum ParticipantTag {
        /// The first leg: the inbound caller, or the callee of an API-created call.
        LegA = "LEG-A",
        /// The second leg, created by `CallAndBridge` or `JoinChimeMeeting`.
        LegB = "LEG-B",
    }
}

/// Where audio for `PlayAudio` and friends comes from. The contract knows one kind, `S3`: a
/// bucket and key in object storage (a local directory tree in a self-hosted runtime).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AudioSource {
    /// Always `S3`; anything else fails with `InvalidAudioSource`.
    pub r#type: String,
    /// Bucket holding the audio file.
    pub bucket_name: String,
    /// Object key of the audio file.
    pub key: String,
}

/// Whether a `Type` names the one storage kind the contract has, `S3`, in any case.
pub fn is_s3(kind: &str) -> bool {
    kind.trim().eq_ignore_ascii_case("S3")
}

impl AudioSource {
    /// An `S3` audio source for `bucket`/`key`.
    pub fn s3(bucket: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            r#type: "S3".into(),
            bucket_name: bucket.into(),
            key: key.into(),
        }
    }
}

crate::lenient::wire_enum! {
    /// Text-to-speech engine class.
    pub enum Engine {
        /// The default engine.
        Standard = "standard",
        /// A neural engine where the operator configured one.
        Neural = "neural",
    }
}

crate::lenient::wire_enum! {
    /// Whether speech text is plain text or SSML.
    pub enum TextType {
        /// Plain text (the default).
        Text = "text",
        /// Speech Synthesis Markup Language.
        Ssml = "ssml",
    }
}

/// Speech prompt of `SpeakAndGetDigits` (`SpeechParameters`, `FailureSpeechParameters`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SpeechParameters {
    /// Text or SSML to speak; at most 1,000 characters.
    pub text: String,
    /// Engine, `standard` by default.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_enum"
    )]
    pub engine: Option<Engine>,
    /// Language code, e.g. `en-US`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub language_code: Option<String>,
    /// `text` (default) or `ssml`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_enum"
    )]
    pub text_type: Option<TextType>,
    /// Voice name, `Joanna` by default.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub voice_id: Option<String>,
}

/// Where `RecordAudio` stores its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordingDestination {
    /// Always `S3`.
    pub r#type: String,
    /// Bucket to write into.
    pub bucket_name: String,
    /// Key prefix (at most 979 characters); the bucket root when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The object key of the finished recording; only in `ACTION_SUCCESSFUL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Where `StartCallRecording` stores its file: `bucket` or `bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CallRecordingDestination {
    /// Always `S3`.
    pub r#type: String,
    /// `bucket[/prefix]` when requested; the full object location when reported.
    pub location: String,
}

/// The call direction of a leg, as seen from the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// A call into the runtime.
    Inbound,
    /// A call placed by the runtime (API calls, bridged and meeting legs).
    Outbound,
}

/// Whether a leg is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// The leg exists and media can flow (set on `NEW_INBOUND_CALL` even before answer).
    Connected,
    /// The leg has ended.
    Disconnected,
}
