//! The keys a raw struct accepts, asked from its derived `Deserialize` itself, so that no
//! list of keys can drift from what serde accepts. A kit function with no knowledge of the
//! configuration's sections, so that every component's config can use it.

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

/// The field names serde accepts for struct `T`, asked from its derived `Deserialize`: it
/// calls `deserialize_struct(name, FIELDS, …)`, and this deserializer records FIELDS and stops.
pub(crate) fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    #[derive(Debug)]
    struct Stop;

    impl fmt::Display for Stop {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("field probe")
        }
    }

    impl std::error::Error for Stop {}

    impl de::Error for Stop {
        fn custom<M: fmt::Display>(_: M) -> Self {
            Stop
        }
    }

    struct Probe<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = Stop;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            *self.0 = fields;
            Err(Stop)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}
