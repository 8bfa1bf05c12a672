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

/// Reads an [`Int`] from a number or a decimal string.
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
        let text = v.trim();
        if let Ok(n) = text.parse::<i64>() {
            return Ok(Int::quoted(n));
        }
        // `"5.0"`: what `str()` of a float gives in Python and `String()` in JavaScript.
        match text.parse::<f64>() {
            Ok(f) if f.abs() < 9.0e15 && (f as i64) as f64 == f => Ok(Int::quoted(f as i64)),
            _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }
}

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(IntVisitor)
    }
}

/// A boolean parameter that may arrive as JSON `true`/`false`, as `0`/`1`, or as a string
/// spelling one of them in any case (`"True"`, `"false"`, `"TRUE "`): the VoiceFocus
/// documentation shows `True`, and handlers written in Python send `str(True)`.
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
                f.write_str("a boolean, 0 or 1, or \"true\" or \"false\" in any case")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag::new(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Flag, E> {
                match v {
                    0 | 1 => Ok(Flag {
                        value: v == 1,
                        original: None,
                    }),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Flag, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Flag, E> {
                let word = v.trim();
                let value = if word.eq_ignore_ascii_case("true") || word == "1" {
                    true
                } else if word.eq_ignore_ascii_case("false") || word == "0" {
                    false
                } else {
                    return Err(E::invalid_value(de::Unexpected::Str(v), &self));
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

/// An enumeration read the way handlers write it: the wire name in any case, surrounding
/// spaces ignored (`"ssml"`, `"SSML"`, `"LEG-A "`, `"Leg-A"` from a documentation example).
/// Written back with its one wire spelling.
pub trait WireEnum: Sized + Copy + 'static {
    /// The wire names, in the order of [`WireEnum::ALL`].
    const NAMES: &'static [&'static str];
    /// Every value, in the order of [`WireEnum::NAMES`].
    const ALL: &'static [Self];

    /// The value a handler's spelling names, if any.
    fn from_wire(text: &str) -> Option<Self> {
        let text = text.trim();
        Self::NAMES
            .iter()
            .position(|name| name.eq_ignore_ascii_case(text))
            .map(|i| Self::ALL[i])
    }
}

/// Implements the wire names, `Serialize` and the lenient `Deserialize` of a unit enum.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// The wire spelling.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $wire),+ }
            }
        }

        impl $crate::lenient::WireEnum for $name {
            const NAMES: &'static [&'static str] = &[$($wire),+];
            const ALL: &'static [Self] = &[$(Self::$variant),+];
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::lenient::read_wire_enum(deserializer)
            }
        }
    };
}
pub(crate) use wire_enum;

/// Reads a [`WireEnum`] from a string.
pub(crate) fn read_wire_enum<'de, T: WireEnum, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    struct EnumVisitor<T>(core::marker::PhantomData<T>);
    impl<T: WireEnum> Visitor<'_> for EnumVisitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "one of {}", T::NAMES.join(", "))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            T::from_wire(v).ok_or_else(|| E::unknown_variant(v, T::NAMES))
        }
    }
    d.deserialize_str(EnumVisitor(core::marker::PhantomData))
}

/// A scalar member as read, before its type is applied. Reading a small scalar first (never
/// a JSON tree) keeps the two response readers equal: neither builds an object here.
pub(crate) enum Blankable<'de> {
    Null,
    Str(alloc::borrow::Cow<'de, str>),
    Signed(i64),
    Unsigned(u64),
    Float(f64),
    Bool(bool),
}

impl<'de> Blankable<'de> {
    /// Reads a scalar; `expected` is what the member should be, for the error an object or
    /// an array gets.
    fn read<D: Deserializer<'de>>(d: D, expected: &'static str) -> Result<Self, D::Error> {
        struct ScalarVisitor(&'static str);
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Blankable<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(self.0)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Blankable::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Blankable::Null)
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Blankable::Str(alloc::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Blankable::Str(alloc::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Blankable::Str(alloc::borrow::Cow::Owned(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Blankable::Signed(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Blankable::Unsigned(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Blankable::Float(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Blankable::Bool(v))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
                Err(de::Error::invalid_type(de::Unexpected::Seq, &self))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
                Err(de::Error::invalid_type(de::Unexpected::Map, &self))
            }
        }
        d.deserialize_any(ScalarVisitor(expected))
    }
}

/// Applies a visitor to a scalar already read.
fn visit<'de, V: Visitor<'de>, E: de::Error>(v: V, b: Blankable<'de>) -> Result<V::Value, E> {
    match b {
        Blankable::Null => v.visit_unit(),
        Blankable::Str(alloc::borrow::Cow::Borrowed(s)) => v.visit_borrowed_str(s),
        Blankable::Str(alloc::borrow::Cow::Owned(s)) => v.visit_string(s),
        Blankable::Signed(n) => v.visit_i64(n),
        Blankable::Unsigned(n) => v.visit_u64(n),
        Blankable::Float(n) => v.visit_f64(n),
        Blankable::Bool(b) => v.visit_bool(b),
    }
}

/// An optional text member (`VoiceId`, `LanguageCode`, `MeetingId`, `InputDigitsRegex`, a
/// leg's `CallId`): `null` or blank is absent.
pub(crate) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Blankable::read(d, "a string")? {
        Blankable::Null => Ok(None),
        Blankable::Str(s) if s.trim().is_empty() => Ok(None),
        Blankable::Str(s) => Ok(Some(s.into_owned())),
        other => Err(de::Error::invalid_type(unexpected(&other), &"a string")),
    }
}

/// An optional integer member: a number or a decimal string; `null` or blank is absent.
pub(crate) fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Int>, D::Error> {
    match Blankable::read(d, "an integer or a decimal string")? {
        Blankable::Null => Ok(None),
        Blankable::Str(s) if s.trim().is_empty() => Ok(None),
        other => visit(IntVisitor, other).map(Some),
    }
}

/// An optional [`WireEnum`] member: `null` or blank is absent.
pub(crate) fn opt_enum<'de, T: WireEnum, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    match Blankable::read(d, "a string")? {
        Blankable::Null => Ok(None),
        Blankable::Str(s) if s.trim().is_empty() => Ok(None),
        Blankable::Str(s) => T::from_wire(&s)
            .map(Some)
            .ok_or_else(|| de::Error::unknown_variant(&s, T::NAMES)),
        other => Err(de::Error::invalid_type(unexpected(&other), &"a string")),
    }
}

/// A text member that handlers write as a number as often as a string (`CallerIdNumber`,
/// an endpoint's `Uri`, `SendDigits`' `Digits`): an integer is read as its decimal text.
pub(crate) fn text_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Blankable::read(d, "a string or an integer")? {
        Blankable::Str(s) => Ok(s.into_owned()),
        Blankable::Signed(n) => Ok(n.to_string()),
        Blankable::Unsigned(n) => Ok(n.to_string()),
        other => Err(de::Error::invalid_type(
            unexpected(&other),
            &"a string or an integer",
        )),
    }
}

fn unexpected<'a>(b: &'a Blankable<'_>) -> de::Unexpected<'a> {
    match b {
        Blankable::Null => de::Unexpected::Unit,
        Blankable::Str(s) => de::Unexpected::Str(s),
        Blankable::Signed(n) => de::Unexpected::Signed(*n),
        Blankable::Unsigned(n) => de::Unexpected::Unsigned(*n),
        Blankable::Float(n) => de::Unexpected::Float(*n),
        Blankable::Bool(b) => de::Unexpected::Bool(*b),
    }
}

/// An optional list of DTMF digits (`TerminatorDigits`, `PlaybackTerminators`,
/// `RecordingTerminators`): an array of one-digit strings or integers, or one string of
/// digits (`"#"`, `"*#"`); `null` or a blank string is absent.
pub(crate) fn opt_digit_list<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    struct ListVisitor;
    impl<'de> Visitor<'de> for ListVisitor {
        type Value = Option<Vec<String>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of digits or a string of digits")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let v = v.trim();
            if v.is_empty() {
                return Ok(None);
            }
            Ok(Some(v.chars().map(String::from).collect()))
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(digit) = seq.next_element::<Digit>()? {
                out.push(digit.0);
            }
            Ok(Some(out))
        }
    }
    d.deserialize_any(ListVisitor)
}

/// One element of a digit list: a string, or an integer 0–9.
struct Digit(String);

impl<'de> Deserialize<'de> for Digit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Blankable::read(d, "a digit as a string")? {
            Blankable::Str(s) => Ok(Digit(s.trim().to_owned())),
            Blankable::Unsigned(n) if n <= 9 => Ok(Digit(n.to_string())),
            Blankable::Signed(n) if (0..=9).contains(&n) => Ok(Digit(n.to_string())),
            other => Err(de::Error::invalid_type(
                unexpected(&other),
                &"a digit as a string",
            )),
        }
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
        for (text, value) in [
            ("\"TRUE \"", true),
            ("1", true),
            ("0", false),
            ("\"0\"", false),
        ] {
            assert_eq!(
                serde_json::from_str::<Flag>(text).unwrap().get(),
                value,
                "{text}"
            );
        }
        for bad in ["\"yes\"", "2", "-1", "null", "\"\""] {
            assert!(serde_json::from_str::<Flag>(bad).is_err(), "{bad} accepted");
        }
    }
}
