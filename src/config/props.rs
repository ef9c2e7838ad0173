//! Property tests of the configuration reader: random TOML (known and unknown sections and
//! keys, values of every TOML type, hostile strings), random `IAMWATCHD__*` variables, and every
//! known key of every section and notifier type given a value of every TOML type. Nothing may
//! panic; a refused value is reported at its own key path (never only as a problem of the
//! whole file); a syntax error says where.

use std::path::Path;

use proptest::prelude::*;

use super::keys::{fields_of, schema};
use super::raw::RawConfig;
use super::{Config, ConfigErrors, Problem};
use crate::hostile::{config, hostile_short, hostile_string, CASES};
use crate::notify::config as notifier_config;
use crate::notify::route::RawRoute;

/// A TOML basic string holding `text` exactly (controls and DEL escaped, as TOML requires).
fn toml_string(text: &str) -> String {
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() && c != '\t' => quoted.push_str(&format!("\\u{:04X}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// A TOML key: bare when it can be, quoted otherwise.
fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        key.to_owned()
    } else {
        toml_string(key)
    }
}

/// A TOML value of any type, as text: strings (hostile, durations, addresses), integers at
/// the extremes, floats, booleans, dates, arrays and inline tables.
fn toml_value() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        3 => hostile_short().prop_map(|s| toml_string(&s)),
        1 => proptest::sample::select(&["10s", "0s", "1h", "90d", "forever", "-1s", "999999999999d",
            "a@example.com", "not an address", "127.0.0.1:9090", "0.0.0.0:0", "us-east-1",
            "arn:aws:sns:us-east-1:123456789012:t", "https://hooks.example/x", "CRITICAL", "info",
            "json", "/nonexistent", ""][..]).prop_map(toml_string),
        2 => prop_oneof![any::<i64>(), Just(0i64), Just(-1), Just(65_536), Just(i64::MAX)]
            .prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:?}")),
        1 => prop_oneof![Just("inf"), Just("-inf"), Just("nan")].prop_map(str::to_owned),
        1 => any::<bool>().prop_map(|b| b.to_string()),
        1 => prop_oneof![Just("1979-05-27T07:32:00Z"), Just("1979-05-27"), Just("07:32:00")]
            .prop_map(str::to_owned),
    ];
    scalar.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((key(), inner), 0..4).prop_map(|entries| {
                let entries: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{} = {v}", toml_key(k)))
                    .collect();
                // Inline tables may not repeat a key.
                let mut seen = std::collections::HashSet::new();
                let unique: Vec<&String> = entries
                    .iter()
                    .filter(|e| seen.insert(e.split(" = ").next().unwrap_or_default().to_owned()))
                    .collect();
                format!(
                    "{{ {} }}",
                    unique
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }),
        ]
    })
}

/// Every key the configuration knows: `(section path, key)`, the `[notifiers.NAME]` keys of
/// every type included (with the type they belong to).
fn known_keys() -> Vec<(String, &'static str, Option<&'static str>)> {
    let mut keys: Vec<(String, &'static str, Option<&'static str>)> = schema()
        .into_iter()
        .flat_map(|(section, fields)| fields.iter().map(move |f| (section.to_owned(), *f, None)))
        .collect();
    for kind in notifier_config::TYPES {
        let own = notifier_config::type_fields(kind).expect("a known type");
        for key in own.iter().chain(fields_of::<RawRoute>()).chain(&["type"]) {
            keys.push(("notifiers.n".to_owned(), key, Some(kind)));
        }
    }
    keys
}

fn key() -> impl Strategy<Value = String> {
    let known: Vec<String> = known_keys()
        .into_iter()
        .map(|(_, k, _)| k.to_owned())
        .collect();
    prop_oneof![3 => proptest::sample::select(known), 1 => hostile_short()]
}

fn section() -> impl Strategy<Value = String> {
    let mut known: Vec<String> = schema().into_iter().map(|(s, _)| s.to_owned()).collect();
    known.extend([
        "notifiers.a".to_owned(),
        "notifiers.Bad-Name".to_owned(),
        "rules.allow".to_owned(),
    ]);
    prop_oneof![4 => proptest::sample::select(known), 1 => hostile_short()]
}

/// A configuration file: a few sections (known, nested or made up), each with a few keys.
fn toml_file() -> impl Strategy<Value = String> {
    let table = (
        section(),
        any::<bool>(),
        prop::collection::vec((key(), toml_value()), 0..6),
    );
    prop::collection::vec(table, 0..6).prop_map(|tables| {
        let mut text = String::new();
        let mut seen = std::collections::HashSet::new();
        for (section, array, entries) in tables {
            if !seen.insert(section.clone()) {
                continue;
            }
            let header = section
                .split('.')
                .map(toml_key)
                .collect::<Vec<_>>()
                .join(".");
            if array && section == "rules.allow" {
                text.push_str(&format!("[[{header}]]\n"));
            } else {
                text.push_str(&format!("[{header}]\n"));
            }
            let mut keys = std::collections::HashSet::new();
            for (key, value) in entries {
                if keys.insert(key.clone()) {
                    text.push_str(&format!("{} = {value}\n", toml_key(&key)));
                }
            }
        }
        text
    })
}

/// What every answer of the reader must look like: a syntax error with its position, or
/// problems each with a path and a message.
fn check_answer(text: &str, result: &Result<Config, ConfigErrors>) -> Result<(), TestCaseError> {
    match result {
        Ok(_) => {}
        Err(ConfigErrors::Syntax {
            line,
            column,
            message,
            ..
        }) => {
            prop_assert!(*line >= 1 && *column >= 1 && !message.is_empty());
            prop_assert!(
                *line <= text.lines().count().max(1) + 1,
                "line {line} of {text:?}"
            );
        }
        Err(ConfigErrors::Invalid { problems, .. }) => {
            prop_assert!(!problems.is_empty());
            for problem in problems {
                prop_assert!(
                    !problem.path.is_empty() && !problem.message.is_empty(),
                    "{problem:?}"
                );
                let visible = !problem.path.chars().any(crate::text::is_unsafe);
                prop_assert!(visible, "an invisible character in {:?}", problem.path);
            }
        }
        Err(other) => prop_assert!(false, "{other}"),
    }
    Ok(())
}

/// Whether `problem` is about `path` or something inside it (`smtp.to[0]`).
fn at(problem: &Problem, path: &str) -> bool {
    problem.path == path
        || problem.path.starts_with(&format!("{path}."))
        || problem.path.starts_with(&format!("{path}["))
}

const SNS: &str = "[sns]\ntopic_arn = \"arn:aws:sns:us-east-1:123456789012:t\"\n";

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn any_toml_file_loads_or_says_what_is_wrong_where(
        file in toml_file(),
        env in prop::collection::vec((key(), hostile_string()), 0..3),
    ) {
        let env: Vec<(String, String)> = env
            .into_iter()
            .map(|(key, value)| (format!("IAMWATCHD__SMTP__{}", key.to_uppercase()), value))
            .collect();
        let result = Config::from_toml(&file, Path::new("t.toml"), env);
        check_answer(&file, &result)?;
    }
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn any_text_is_a_syntax_error_or_a_configuration(text in hostile_string()) {
        let result = Config::from_toml(&text, Path::new("t.toml"), Vec::new());
        check_answer(&text, &result)?;
    }

    #[test]
    fn every_known_key_with_a_value_of_any_type_is_read_or_named(
        (section, key, kind) in proptest::sample::select(known_keys()),
        value in toml_value(),
    ) {
        let assignment = format!("{key} = {value}\n");
        let text = match (section.as_str(), kind) {
            ("sns", _) if key == "topic_arn" => format!("[sns]\n{assignment}"),
            ("sns", _) => format!("{SNS}{assignment}"),
            (_, Some(kind)) if key == "type" => format!("{SNS}[{section}]\n{assignment}\n# {kind}\n"),
            (_, Some(kind)) => format!("{SNS}[{section}]\ntype = \"{kind}\"\n{assignment}"),
            ("rules", _) if key == "allow" => format!("{SNS}[rules]\n{assignment}"),
            _ => format!("{SNS}[{section}]\n{assignment}"),
        };
        let path = format!("{section}.{key}");
        let (_, parse_problems) = RawConfig::parse(&text, Path::new("t.toml"), Vec::new())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        for problem in &parse_problems {
            prop_assert!(at(problem, &path), "{problem} is not about {path}\n{text}");
        }
        let result = Config::from_toml(&text, Path::new("t.toml"), Vec::new());
        check_answer(&text, &result)?;
        if !parse_problems.is_empty() {
            let Err(ConfigErrors::Invalid { problems, .. }) = &result else {
                return Err(TestCaseError::fail(format!("{path} refused, then loaded\n{text}")));
            };
            prop_assert!(problems.iter().any(|p| at(p, &path)), "{problems:?}");
        }
    }
}
