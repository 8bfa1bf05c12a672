//! A JSON reader that refuses duplicate object keys.
//!
//! `serde_json::Value` keeps the last of two equal keys, so `{"Type":"Speak","Type":"Hangup"}`
//! would silently become a hang-up. A handler response is hostile input: reject the ambiguity
//! and name the key instead.

use crate::prelude::*;
use core::fmt;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

/// A parsed JSON document in which no object had a repeated key.
pub struct StrictValue(pub Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            match map.entry(key) {
                serde_json::map::Entry::Occupied(seen) => {
                    return Err(de::Error::custom(format!("duplicate key `{}`", seen.key())));
                }
                serde_json::map::Entry::Vacant(slot) => {
                    let StrictValue(value) = access.next_value()?;
                    slot.insert(value);
                }
            }
        }
        Ok(Value::Object(map))
    }
}

/// Parses `text` as JSON, rejecting duplicate keys anywhere in the document.
pub fn parse(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str::<StrictValue>(text).map(|v| v.0)
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;

    #[test]
    fn rejects_duplicate_keys_at_any_depth() {
        let err = super::parse(r#"{"a":{"Type":"x","Type":"y"}}"#).unwrap_err();
        assert!(err.to_string().contains("duplicate key `Type`"), "{err}");
        assert!(super::parse(r#"[{"a":1},{"a":2}]"#).is_ok());
    }
}
