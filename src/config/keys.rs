//! The keys a configuration may have, read from the raw structs themselves (so the list cannot
//! drift from what serde accepts), and the suggestion for a key that is not one of them.

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

use super::deploy::RawDeploy;
use super::problem::{join, Problem};
use super::raw::{RawAws, RawIdentityCenter, RawLog, RawMetrics};
use crate::notify::smtp::RawSmtp;
use crate::notify::sns::RawSns;
use crate::pipeline::delivery::RawDelivery;
use crate::rules::Ruleset;
use crate::source::alarm::RawAlarm;
use crate::source::cloudtrail::RawPoller;
use crate::store::RawStore;

/// The problem for an unknown key, suggesting the key probably meant: a close spelling among
/// its siblings, or the same name in another section (`region` at the top → `aws.region`).
pub(crate) fn unknown_key(path: &str, key: &str, siblings: &[&str]) -> Problem {
    let full = join(path, key);
    let what = if path.is_empty() { "section" } else { "key" };
    let close = siblings
        .iter()
        .map(|s| (levenshtein(&key.to_lowercase(), s), *s))
        .filter(|(d, _)| *d <= 2)
        .min();
    let suggestion = match close {
        Some((_, sibling)) => Some(join(path, sibling)),
        None => schema()
            .into_iter()
            .find(|(section, fields)| {
                *section != path && fields.contains(&key.to_lowercase().as_str())
            })
            .map(|(section, _)| join(section, key)),
    };
    let message = match suggestion {
        Some(s) => format!("unknown {what}; did you mean `{s}`?"),
        None => format!(
            "unknown {what}; known {what}s here: {}",
            siblings.join(", ")
        ),
    };
    Problem::new(full, message)
}

/// Edit distance between two keys (insertions, deletions, substitutions).
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

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

/// Every table of the configuration and its keys, read from the raw structs themselves so the
/// list cannot drift from what serde accepts.
pub(crate) fn schema() -> Vec<(&'static str, &'static [&'static str])> {
    vec![
        ("aws", fields_of::<RawAws>()),
        ("deploy", fields_of::<RawDeploy>()),
        ("poller", fields_of::<RawPoller>()),
        ("rules", fields_of::<Ruleset>()),
        ("store", fields_of::<RawStore>()),
        ("smtp", fields_of::<RawSmtp>()),
        ("sns", fields_of::<RawSns>()),
        ("alarm", fields_of::<RawAlarm>()),
        ("log", fields_of::<RawLog>()),
        ("metrics", fields_of::<RawMetrics>()),
        ("delivery", fields_of::<RawDelivery>()),
        ("identity_center", fields_of::<RawIdentityCenter>()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::RawConfig;
    use crate::store::RawStore;

    #[test]
    fn field_probe_lists_serde_fields() {
        assert_eq!(fields_of::<RawStore>(), ["state_directory", "retention"]);
        assert!(fields_of::<RawConfig>().contains(&"smtp"));
    }

    #[test]
    fn levenshtein_counts_edits() {
        assert_eq!(levenshtein("poll_intervall", "poll_interval"), 1);
        assert_eq!(levenshtein("retension", "retention"), 1);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }
}
