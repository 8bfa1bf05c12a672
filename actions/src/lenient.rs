//! Lenient scalar types for action parameters.
//!
//! Handlers written against the public documentation pass integers both as JSON numbers and as
//! decimal strings (`"Repeat": "5"`), and booleans as `true` or `"True"`. The contract asks the
//! runtime to accept both and to echo back exactly what it received, so these types remember
//! the representation they were read from.

use crate::prelude::*;
use core::fmt;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// An integer parameter that may arrive as a JSON number or a decimal string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int {
    value: i64,
    quoted: bool,
}

impl Int {
    /// An integer that serializes as a JSON number.
    pub const fn new(value: i64) -> Self {
        Self {
            value,
            quoted: false,
        }
    }

    /// An integer that serializes as a decimal string, as some documentation examples write it.
    pub const fn quoted(value: i64) -> Self {
        Self {
            value,
            quoted: true,
        }
    }

    /// The integer's value, whatever its representation.
    pub const fn get(self) -> i64 {
        self.value
    }
}

impl From<i64> for Int {
    fn from(value: i64) -> Self {
        Self::new(value)
    }
}

impl Serialize for Int {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.quoted {
            serializer.serialize_str(&self.value.to_string())
        } else {
            serializer.serialize_i64(self.value)
        }
    }
}

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntVisitor;
        impl Visitor<'_> for IntVisitor {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer or a decimal string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int::new(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                i64::try_from(v)
                    .map(Int::new)
                    .map_err(|_| E::custom(format!("integer {v} is too large")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Int, E> {
                // A whole number: the round trip through i64 is exact below 2^53 (`fract` is std-only).
                if v.abs() < 9.0e15 && (v as i64) as f64 == v {
                    Ok(Int::new(v as i64))
                } else {
                    Err(E::invalid_type(de::Unexpected::Float(v), &self))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Int, E> {
                v.trim()
                    .parse::<i64>()
                    .map(Int::quoted)
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        deserializer.deserialize_any(IntVisitor)
    }
}

/// A boolean parameter that may arrive as JSON `true`/`false` or as the strings
/// `"true"`, `"false"`, `"True"`, `"False"` (the VoiceFocus documentation shows the latter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    value: bool,
    original: Option<String>,
}

impl Flag {
    /// A flag that serializes as a JSON boolean.
    pub const fn new(value: bool) -> Self {
        Self {
            value,
            original: None,
        }
    }

    /// The flag's value.
    pub const fn get(&self) -> bool {
        self.value
    }
}

impl From<bool> for Flag {
    fn from(value: bool) -> Self {
        Self::new(value)
    }
}

impl Serialize for Flag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.original {
            Some(text) => serializer.serialize_str(text),
            None => serializer.serialize_bool(self.value),
        }
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FlagVisitor;
        impl Visitor<'_> for FlagVisitor {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean or one of \"true\", \"false\", \"True\", \"False\"")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag::new(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Flag, E> {
                let value = match v {
                    "true" | "True" => true,
                    "false" | "False" => false,
                    _ => return Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                };
                Ok(Flag {
                    value,
                    original: Some(v.to_owned()),
                })
            }
        }
        deserializer.deserialize_any(FlagVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_keeps_its_representation() {
        let n: Int = serde_json::from_str("5").unwrap();
        let s: Int = serde_json::from_str("\"5\"").unwrap();
        assert_eq!(n.get(), 5);
        assert_eq!(s.get(), 5);
        assert_eq!(serde_json::to_string(&n).unwrap(), "5");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"5\"");
        assert_eq!(serde_json::from_str::<Int>("10.0").unwrap().get(), 10);
    }

    #[test]
    fn int_rejects_non_integers() {
        for bad in [
            "1.5",
            "\"five\"",
            "true",
            "null",
            "[]",
            "18446744073709551615",
        ] {
            assert!(serde_json::from_str::<Int>(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn flag_accepts_documented_spellings() {
        for (text, value) in [("true", true), ("\"True\"", true), ("\"false\"", false)] {
            let flag: Flag = serde_json::from_str(text).unwrap();
            assert_eq!(flag.get(), value);
            assert_eq!(serde_json::to_string(&flag).unwrap(), text);
        }
        assert!(serde_json::from_str::<Flag>("\"yes\"").is_err());
        assert!(serde_json::from_str::<Flag>("1").is_err());
    }
}
