//! How single values are read from the configuration: durations with their unit, and one of a
//! fixed set of lowercase words.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// Reads a humantime duration (`"10s"`, `"15m"`, `"24h"`, `"90d"`). A bare number is refused:
/// seconds or minutes would be a guess.
pub(crate) fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a duration such as \"10s\", \"15m\", \"24h\" or \"90d\"")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
            humantime::parse_duration(text.trim()).map_err(|e| {
                E::custom(format!(
                    "invalid duration {text:?} ({e}); write it like \"10s\", \"15m\", \"24h\" or \"90d\""
                ))
            })
        }

        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "a bare number ({n}) is not a duration; add the unit, e.g. \"{n}s\" or \"{n}m\""
            )))
        }

        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Duration, E> {
            self.visit_i64(n as i64)
        }

        fn visit_f64<E: de::Error>(self, n: f64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "a bare number ({n}) is not a duration; write it with a unit, e.g. \"1500ms\""
            )))
        }
    }

    deserializer.deserialize_any(DurationVisitor)
}

/// Reads one of a fixed set of lowercase words, naming all of them when the text is none.
/// (The `config` crate's own message for an unknown enum variant does not list the choices.)
pub(crate) fn choose<T: Copy>(text: &str, choices: &[(&str, T)]) -> Result<T, String> {
    choices
        .iter()
        .find(|(word, _)| *word == text)
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let words: Vec<String> = choices.iter().map(|(w, _)| format!("`{w}`")).collect();
            format!("expected one of {}, got {text:?}", words.join(", "))
        })
}

/// `1, 3, 5` for messages.
pub(crate) fn join_numbers(values: &[u32]) -> String {
    values
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `90s`, `15m`, `1day` for messages.
pub(crate) fn show(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_outside_the_choices_names_every_choice() {
        assert_eq!(choose("b", &[("a", 1), ("b", 2)]), Ok(2));
        assert_eq!(
            choose("c", &[("a", 1), ("b", 2)]),
            Err("expected one of `a`, `b`, got \"c\"".to_owned())
        );
        assert_eq!(join_numbers(&[1, 3, 5]), "1, 3, 5");
        assert_eq!(show(Duration::from_secs(90)), "1m 30s");
    }
}
