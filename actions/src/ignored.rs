//! Decoding that notices when the target type skipped a member.
//!
//! A derived struct skips a key it does not know: it reads the key's value as
//! [`serde::de::IgnoredAny`], which asks the deserializer for `deserialize_ignored_any`. The
//! text reader ([`crate::parsed`]) must notice that, at any depth, because a skipped key may
//! repeat unseen and only the tree reader refuses that. [`deserialize`] wraps a deserializer so
//! that every deserializer, map, sequence and enum handed down to the target type is wrapped
//! too, and raises a flag on the first skipped value.
//!
//! This is what the `serde_ignored` crate does, minus the path of each skipped key: that
//! crate copies every key it passes into a `String` to be able to report the path, which cost
//! about a sixth of reading a typical response. Nothing here allocates.

use crate::prelude::*;
use core::fmt;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

/// Decodes a `T` from `deserializer`; `skipped` is set when `T` skipped any value.
pub(crate) fn deserialize<'de, D, T>(deserializer: D, skipped: &mut bool) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: de::Deserialize<'de>,
{
    T::deserialize(watch(skipped, deserializer))
}

/// One of serde's deserialization roles, wrapped, with the flag to raise.
struct Watch<'f, X> {
    inner: X,
    skipped: &'f mut bool,
}

fn watch<Y>(skipped: &mut bool, inner: Y) -> Watch<'_, Y> {
    Watch { inner, skipped }
}

/// Forwards `deserialize_*` methods: their arguments as given, the visitor watched.
macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*))*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            self.inner.$method($($arg,)* watch(self.skipped, visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Watch<'_, D> {
    type Error = D::Error;

    forward! {
        deserialize_any() deserialize_bool() deserialize_i8() deserialize_i16()
        deserialize_i32() deserialize_i64() deserialize_i128() deserialize_u8()
        deserialize_u16() deserialize_u32() deserialize_u64() deserialize_u128()
        deserialize_f32() deserialize_f64() deserialize_char() deserialize_str()
        deserialize_string() deserialize_bytes() deserialize_byte_buf() deserialize_option()
        deserialize_unit() deserialize_seq() deserialize_map() deserialize_identifier()
        deserialize_unit_struct(name: &'static str)
        deserialize_newtype_struct(name: &'static str)
        deserialize_tuple(len: usize)
        deserialize_tuple_struct(name: &'static str, len: usize)
        deserialize_struct(name: &'static str, fields: &'static [&'static str])
        deserialize_enum(name: &'static str, variants: &'static [&'static str])
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        *self.skipped = true;
        self.inner.deserialize_ignored_any(visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// Forwards `visit_*` methods that take one plain value.
macro_rules! forward_visit {
    ($($method:ident($ty:ty))*) => {$(
        fn $method<E: de::Error>(self, value: $ty) -> Result<V::Value, E> {
            self.inner.$method(value)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Watch<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
        visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
        visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char) visit_str(&str)
        visit_borrowed_str(&'de str) visit_string(String) visit_bytes(&[u8])
        visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        let deserializer = watch(self.skipped, deserializer);
        self.inner.visit_some(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<V::Value, D::Error> {
        let deserializer = watch(self.skipped, deserializer);
        self.inner.visit_newtype_struct(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.inner.visit_seq(watch(self.skipped, seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(watch(self.skipped, map))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(watch(self.skipped, data))
    }
}

/// A seed whose deserializer is watched: how values inside maps, sequences and enums are
/// reached.
impl<'de, T: DeserializeSeed<'de>> DeserializeSeed<'de> for Watch<'_, T> {
    type Value = T::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T::Value, D::Error> {
        self.inner.deserialize(watch(self.skipped, deserializer))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Watch<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        let seed = watch(&mut *self.skipped, seed);
        self.inner.next_element_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Watch<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let seed = watch(&mut *self.skipped, seed);
        self.inner.next_key_seed(seed)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        let seed = watch(&mut *self.skipped, seed);
        self.inner.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'f, 'de, A: EnumAccess<'de>> EnumAccess<'de> for Watch<'f, A> {
    type Error = A::Error;
    type Variant = Watch<'f, A::Variant>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), A::Error> {
        let Watch { inner, skipped } = self;
        let (value, variant) = inner.variant_seed(watch(&mut *skipped, seed))?;
        Ok((value, watch(skipped, variant)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Watch<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        let seed = watch(self.skipped, seed);
        self.inner.newtype_variant_seed(seed)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let visitor = watch(self.skipped, visitor);
        self.inner.tuple_variant(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let visitor = watch(self.skipped, visitor);
        self.inner.struct_variant(fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Inner {
        a: u32,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    enum Shape {
        Dot,
        Box(Inner),
        Pair(u32, Inner),
        Named { inner: Inner },
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Outer {
        name: String,
        inner: Option<Inner>,
        list: Option<Vec<Inner>>,
        shape: Option<Shape>,
        wrapped: Option<Wrapped>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Wrapped(Inner);

    fn skipped(text: &str) -> Option<bool> {
        let mut de = serde_json::Deserializer::from_str(text);
        let mut skipped = false;
        let _: Outer = deserialize(&mut de, &mut skipped).ok()?;
        de.end().ok()?;
        Some(skipped)
    }

    #[test]
    fn a_type_that_reads_every_key_skips_nothing() {
        let text = r#"{"name":"x","inner":{"a":1},"list":[{"a":2},{"a":3}],
            "shape":{"Named":{"inner":{"a":4}}},"wrapped":{"a":5}}"#;
        assert_eq!(skipped(text), Some(false));
        assert_eq!(skipped(r#"{"name":"x","shape":"Dot"}"#), Some(false));
        assert_eq!(
            skipped(r#"{"name":"x","shape":{"Box":{"a":1}}}"#),
            Some(false)
        );
        assert_eq!(
            skipped(r#"{"name":"x","shape":{"Pair":[1,{"a":1}]}}"#),
            Some(false)
        );
    }

    #[test]
    fn a_skipped_key_is_noticed_at_any_depth() {
        for text in [
            r#"{"name":"x","extra":1}"#,
            r#"{"name":"x","inner":{"a":1,"extra":[1,{"b":2}]}}"#,
            r#"{"name":"x","list":[{"a":1},{"a":2,"extra":null}]}"#,
            r#"{"name":"x","shape":{"Box":{"a":1,"extra":"y"}}}"#,
            r#"{"name":"x","shape":{"Pair":[1,{"a":1,"extra":true}]}}"#,
            r#"{"name":"x","shape":{"Named":{"inner":{"a":1},"extra":{}}}}"#,
            r#"{"name":"x","wrapped":{"a":1,"extra":2}}"#,
        ] {
            assert_eq!(skipped(text), Some(true), "{text}");
        }
    }

    #[test]
    fn the_value_is_the_one_the_type_reads_alone() {
        let text = r#"{"name":"x","inner":{"a":7,"extra":1},"shape":{"Box":{"a":8}}}"#;
        let plain: Outer = serde_json::from_str(text).unwrap();
        let mut de = serde_json::Deserializer::from_str(text);
        let mut skipped = false;
        let watched: Outer = deserialize(&mut de, &mut skipped).unwrap();
        assert_eq!(watched, plain);
        assert!(skipped);
    }

    #[test]
    fn errors_pass_through_unchanged() {
        let text = r#"{"name":1}"#;
        let plain = serde_json::from_str::<Outer>(text).unwrap_err().to_string();
        let mut de = serde_json::Deserializer::from_str(text);
        let watched = deserialize::<_, Outer>(&mut de, &mut false)
            .unwrap_err()
            .to_string();
        assert_eq!(watched, plain);
    }
}
