//! An action's `Parameters` object kept as the JSON text the handler sent.
//!
//! The runtime echoes an action's parameters in its `ActionData` (§2.5), but only the actions
//! that report (and the one that fails) ever carry them back to the handler. Keeping the text
//! instead of a `serde_json::Map` means reading a response builds no map at all, and an action
//! that never reports (most `Speak`s, `Pause`, `Hangup`) never builds one; the map is made when
//! an event is about to carry it ([`Parameters::to_map`]).

use crate::prelude::*;
use alloc::sync::Arc;
use core::fmt;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

/// A `Parameters` object as received: JSON text of an object with no repeated key.
///
/// Two `Parameters` are equal when they hold the same JSON object, whatever its spacing or key
/// order. Cloning shares the text.
#[derive(Clone)]
pub struct Parameters(Arc<str>);

impl Parameters {
    /// `{}`: what an action without `Parameters` (or with `null`) echoes.
    pub fn empty() -> Self {
        Self(Arc::from("{}"))
    }

    /// The parameters of a map (written compactly, keys in the map's order).
    pub fn from_map(map: &Map<String, Value>) -> Self {
        // Writing a map of JSON values cannot fail: every key is a string.
        Self(Arc::from(
            serde_json::to_string(map).unwrap_or_else(|_| "{}".into()),
        ))
    }

    /// Text already read as one JSON object with no repeated key (the response reader's).
    pub(crate) fn from_object_text(text: &str) -> Self {
        Self(Arc::from(text))
    }

    /// The JSON text, exactly as received.
    pub fn as_json(&self) -> &str {
        &self.0
    }

    /// The parameters as a map, for an `ActionData` echo.
    pub fn to_map(&self) -> Map<String, Value> {
        // Every constructor holds the text of a JSON object, so this parse cannot fail; an
        // empty map is what the echo of an impossible failure would be.
        serde_json::from_str(&self.0).unwrap_or_default()
    }

    /// The value of one top-level parameter, read without building the map.
    pub fn get(&self, name: &str) -> Option<Value> {
        let mut de = serde_json::Deserializer::from_str(&self.0);
        de.deserialize_map(FindField { name }).ok().flatten()
    }

    /// Whether a top-level parameter is present (even as `null`).
    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

impl Default for Parameters {
    fn default() -> Self {
        Self::empty()
    }
}

impl From<Map<String, Value>> for Parameters {
    fn from(map: Map<String, Value>) -> Self {
        Self::from_map(&map)
    }
}

impl PartialEq for Parameters {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0 || self.to_map() == other.to_map()
    }
}

impl fmt::Debug for Parameters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Walks an object's keys, skipping every value but the named one's.
struct FindField<'n> {
    name: &'n str,
}

impl<'de> Visitor<'de> for FindField<'_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        // The whole object is read: the JSON reader checks its end.
        let mut found = None;
        while let Some(matched) = access.next_key_seed(KeyIs(self.name))? {
            if matched && found.is_none() {
                found = Some(access.next_value()?);
            } else {
                access.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Reads a key and says whether it is the wanted one, without allocating it.
struct KeyIs<'n>(&'n str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Parameters;
    use serde_json::{json, Value};

    fn params(text: &str) -> Parameters {
        Parameters::from_object_text(text)
    }

    #[test]
    fn reads_one_field_without_the_map() {
        let p = params(r#"{"Text":"hi","Nested":{"CallId":"inner"},"CallId":"c-1","N":null}"#);
        assert_eq!(p.get("CallId"), Some(json!("c-1")));
        assert_eq!(p.get("Nested"), Some(json!({"CallId": "inner"})));
        assert_eq!(p.get("N"), Some(Value::Null));
        assert!(p.contains_key("N"));
        assert_eq!(p.get("Missing"), None);
        // Keys are compared as decoded.
        assert_eq!(
            params(r#"{"Call\u0049d":"c-2"}"#).get("CallId"),
            Some(json!("c-2"))
        );
    }

    #[test]
    fn equality_is_of_the_object_not_the_text() {
        let spaced = params(r#"{ "B": 1, "A": [true, null] }"#);
        let map = json!({"A": [true, null], "B": 1});
        let Value::Object(map) = map else {
            unreachable!()
        };
        assert_eq!(spaced, Parameters::from_map(&map));
        assert_eq!(spaced.to_map(), map);
        assert_ne!(spaced, Parameters::empty());
        assert_eq!(Parameters::default().to_map().len(), 0);
        assert_eq!(spaced.as_json(), r#"{ "B": 1, "A": [true, null] }"#);
    }
}
