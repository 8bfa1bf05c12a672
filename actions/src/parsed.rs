//! Reading a handler's response from its text.
//!
//! Nearly every response has one shape: `SchemaVersion`, `Actions` made of `Type` and
//! `Parameters` objects whose fields the contract knows, maybe `TransactionAttributes`. Such a
//! response is typed straight from its text: no JSON tree is built, and each action keeps its
//! `Parameters` as the text it was ([`Parameters`]). That halves the host's share of an
//! invocation.
//!
//! Anything else (an unknown key anywhere, a value of the wrong type, a document that is not
//! JSON) is read again as a JSON tree that refuses repeated keys, and validating that tree
//! names what is wrong. So the text reader need only accept a subset of what the tree reader
//! accepts, and give the same result for it. The one way it could accept more is a repeated
//! key, which the tree reader refuses anywhere in the document; here every key the reader does
//! not know sends the response to the tree reader, derived structs refuse a repeated field,
//! and string maps refuse a repeated key ([`crate::common::UniqueStringMap`]).

use crate::common::UniqueStringMap;
use crate::error::ResponseError;
use crate::event::TransactionAttributes;
use crate::limits::Limits;
use crate::parameters::Parameters;
use crate::prelude::*;
use crate::response::{
    check_attributes, collect_actions, parse_json_text, validate_response_keeping_prefix,
    within_size, Rejection, ValidatedAction, ValidatedResponse,
};
use crate::rules::{typed_with, ParameterDecoder};
use core::fmt;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// A handler's response read from its text: one JSON document with no repeated key, not yet
/// checked against the contract ([`ParsedResponse::validate`]).
///
/// Reading tells a response that is not JSON at all (the target failed; the next one is
/// tried) from one that breaks the contract (the call engine answers it with
/// `INVALID_LAMBDA_RESPONSE`).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedResponse(Parsed);

#[derive(Debug, Clone, PartialEq)]
enum Parsed {
    /// The common shape, typed from the text; the actions' rules are not checked yet.
    Typed(TypedResponse),
    /// Any other document.
    Tree(Value),
}

#[derive(Debug, Clone, PartialEq)]
struct TypedResponse {
    schema_version: String,
    actions: Option<Vec<ValidatedAction>>,
    transaction_attributes: Option<TransactionAttributes>,
}

impl ParsedResponse {
    /// Reads a response from its text: the size limit, then JSON with no repeated key.
    pub fn read(text: &str, limits: &Limits) -> Result<Self, ResponseError> {
        within_size(text.len(), limits)?;
        if let Some(typed) = read_typed(text) {
            return Ok(Self(Parsed::Typed(typed)));
        }
        parse_json_text(text, limits).map(|value| Self(Parsed::Tree(value)))
    }

    /// [`ParsedResponse::read`] of untrusted bytes, which must also be UTF-8.
    pub fn read_bytes(body: &[u8], limits: &Limits) -> Result<Self, ResponseError> {
        // Before the UTF-8 check, which would otherwise read all of an oversize body.
        within_size(body.len(), limits)?;
        let text = core::str::from_utf8(body).map_err(|e| ResponseError::InvalidUtf8 {
            offset: e.valid_up_to(),
        })?;
        Self::read(text, limits)
    }

    /// Checks the response against the event's schema version and the limits, keeping what
    /// a partly valid response's valid part is (see [`Rejection`]).
    pub fn validate(
        self,
        expected_schema: &str,
        limits: &Limits,
    ) -> Result<ValidatedResponse, Box<Rejection>> {
        match self.0 {
            Parsed::Tree(value) => validate_response_keeping_prefix(value, expected_schema, limits),
            Parsed::Typed(typed) => typed.validate(expected_schema, limits),
        }
    }

    /// Whether the handler answered nothing: `null`, or a blank body (a Python handler that
    /// returns `None`, a Node handler that calls back with nothing).
    pub fn is_nothing(&self) -> bool {
        matches!(self.0, Parsed::Tree(Value::Null))
    }

    /// Whether the response was typed straight from its text (the common shape) rather than
    /// read as a JSON tree. Only speed differs; benchmarks and tests check it.
    pub fn is_typed(&self) -> bool {
        matches!(self.0, Parsed::Typed(_))
    }

    /// The response as a JSON tree. A response typed from its text comes back in the form
    /// its validated echo takes: compact, and without the members that were `null`.
    pub fn to_value(&self) -> Value {
        match &self.0 {
            Parsed::Tree(value) => value.clone(),
            Parsed::Typed(typed) => ValidatedResponse {
                schema_version: typed.schema_version.clone(),
                actions: typed.actions.clone(),
                transaction_attributes: typed.transaction_attributes.clone(),
            }
            .to_value(),
        }
    }
}

/// A document already parsed (a test's `json!`, a blank body read as `null`).
impl From<Value> for ParsedResponse {
    fn from(value: Value) -> Self {
        Self(Parsed::Tree(value))
    }
}

impl TypedResponse {
    /// The same checks, in the same order, as [`validate_response_keeping_prefix`] makes of
    /// the tree of this response.
    fn validate(
        self,
        expected_schema: &str,
        limits: &Limits,
    ) -> Result<ValidatedResponse, Box<Rejection>> {
        if self.schema_version != expected_schema {
            return Err(Rejection::of(ResponseError::SchemaVersionMismatch {
                expected: expected_schema.to_owned(),
                found: self.schema_version,
            }));
        }
        if let Some(attributes) = &self.transaction_attributes {
            check_attributes(attributes, limits).map_err(Rejection::of)?;
        }
        let actions = match self.actions {
            None => None,
            Some(list) => match collect_actions(list.into_iter().map(Ok), limits) {
                Ok(actions) => Some(actions),
                Err(mut rejection) => {
                    rejection.transaction_attributes = self.transaction_attributes;
                    return Err(rejection);
                }
            },
        };
        Ok(ValidatedResponse {
            schema_version: self.schema_version,
            actions,
            transaction_attributes: self.transaction_attributes,
        })
    }
}

/// The response typed from its text, or `None` when it is not in the common shape.
fn read_typed(text: &str) -> Option<TypedResponse> {
    let mut de = serde_json::Deserializer::from_str(text);
    let raw = de.deserialize_map(ResponseVisitor).ok()?;
    de.end().ok()?;
    let actions = match raw.actions {
        None => None,
        Some(list) => Some(
            list.into_iter()
                .map(type_action)
                .collect::<Option<Vec<_>>>()?,
        ),
    };
    Some(TypedResponse {
        schema_version: raw.schema_version,
        actions,
        transaction_attributes: raw.transaction_attributes,
    })
}

/// `None` for an action the contract does not have, as for any other refusal.
fn type_action(raw: RawAction<'_>) -> Option<ValidatedAction> {
    let text = raw.parameters.map_or("{}", RawValue::get);
    // A derived struct also reads from an array; `Parameters` must be an object.
    if !text.starts_with('{') {
        return None;
    }
    let action = typed_with(&raw.name, FromText(text))?.ok()?;
    Some(ValidatedAction {
        action,
        parameters: Parameters::from_object_text(text),
    })
}

/// Decodes a parameter struct from text, refusing any key the struct does not know.
struct FromText<'t>(&'t str);

impl ParameterDecoder for FromText<'_> {
    type Error = ();

    fn decode<T: DeserializeOwned>(self) -> Result<T, ()> {
        let mut de = serde_json::Deserializer::from_str(self.0);
        let mut unknown = false;
        let typed = crate::ignored::deserialize(&mut de, &mut unknown).map_err(|_| ())?;
        if unknown {
            return Err(());
        }
        Ok(typed)
    }
}

/// The response object's members, actions not yet typed.
struct RawResponse<'a> {
    schema_version: String,
    actions: Option<Vec<RawAction<'a>>>,
    transaction_attributes: Option<TransactionAttributes>,
}

/// One action object: its type and its `Parameters` text.
struct RawAction<'a> {
    name: String,
    parameters: Option<&'a RawValue>,
}

fn repeated<E: de::Error>(key: &str) -> E {
    E::custom(format!("duplicate key `{key}`"))
}

struct ResponseVisitor;

impl<'de> Visitor<'de> for ResponseVisitor {
    type Value = RawResponse<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a response object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut schema_version = None;
        let mut actions = None;
        let mut attributes = None;
        while let Some(key) = access.next_key::<ResponseKey>()? {
            match key {
                ResponseKey::SchemaVersion if schema_version.is_none() => {
                    schema_version = Some(access.next_value::<String>()?);
                }
                ResponseKey::Actions if actions.is_none() => {
                    actions = Some(access.next_value::<Option<ActionList<'de>>>()?);
                }
                ResponseKey::TransactionAttributes if attributes.is_none() => {
                    attributes = Some(access.next_value::<Option<UniqueStringMap>>()?);
                }
                _ => return Err(repeated(key.name())),
            }
        }
        Ok(RawResponse {
            schema_version: schema_version
                .ok_or_else(|| de::Error::missing_field("SchemaVersion"))?,
            actions: actions.flatten().map(|list| list.0),
            transaction_attributes: attributes.flatten().map(|map| map.0),
        })
    }
}

/// A member of the response object; any other key is refused.
enum ResponseKey {
    SchemaVersion,
    Actions,
    TransactionAttributes,
}

impl ResponseKey {
    fn name(&self) -> &'static str {
        match self {
            Self::SchemaVersion => "SchemaVersion",
            Self::Actions => "Actions",
            Self::TransactionAttributes => "TransactionAttributes",
        }
    }
}

impl<'de> Deserialize<'de> for ResponseKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(KeyVisitor(|key: &str| match key {
            "SchemaVersion" => Some(ResponseKey::SchemaVersion),
            "Actions" => Some(ResponseKey::Actions),
            "TransactionAttributes" => Some(ResponseKey::TransactionAttributes),
            _ => None,
        }))
    }
}

/// An action object's member; any other key is refused.
enum ActionKey {
    Type,
    Parameters,
}

impl ActionKey {
    fn name(&self) -> &'static str {
        match self {
            Self::Type => "Type",
            Self::Parameters => "Parameters",
        }
    }
}

impl<'de> Deserialize<'de> for ActionKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(KeyVisitor(|key: &str| match key {
            "Type" => Some(ActionKey::Type),
            "Parameters" => Some(ActionKey::Parameters),
            _ => None,
        }))
    }
}

/// Matches an object key against the ones a reader knows.
struct KeyVisitor<F>(F);

impl<'de, K, F: FnOnce(&str) -> Option<K>> Visitor<'de> for KeyVisitor<F> {
    type Value = K;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a known key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<K, E> {
        (self.0)(key).ok_or_else(|| E::custom("unknown key"))
    }
}

/// `Actions`: an array of action objects.
struct ActionList<'a>(Vec<RawAction<'a>>);

impl<'de> Deserialize<'de> for ActionList<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = ActionList<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of actions")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
                while let Some(action) = seq.next_element::<RawAction<'de>>()? {
                    list.push(action);
                }
                Ok(ActionList(list))
            }
        }
        deserializer.deserialize_seq(ListVisitor)
    }
}

impl<'de> Deserialize<'de> for RawAction<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ActionVisitor;
        impl<'de> Visitor<'de> for ActionVisitor {
            type Value = RawAction<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an action object")
            }
            // Only `visit_map`: an action given as an array goes to the tree reader, which
            // refuses it.
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut name = None;
                let mut parameters = None;
                while let Some(key) = access.next_key::<ActionKey>()? {
                    match key {
                        ActionKey::Type if name.is_none() => {
                            name = Some(access.next_value::<String>()?);
                        }
                        ActionKey::Parameters if parameters.is_none() => {
                            parameters = Some(access.next_value::<Option<&'de RawValue>>()?);
                        }
                        _ => return Err(repeated(key.name())),
                    }
                }
                Ok(RawAction {
                    name: name.ok_or_else(|| de::Error::missing_field("Type"))?,
                    parameters: parameters.flatten(),
                })
            }
        }
        deserializer.deserialize_map(ActionVisitor)
    }
}
