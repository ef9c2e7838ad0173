//! Property tests of the record parser: any text, any JSON, records with every field missing,
//! null or of the wrong type, and nesting past serde_json's recursion limit. The parser must
//! never panic, must refuse with the error that says why, and the record's readers (the
//! rules, the renderers) must accept whatever it accepted.

use proptest::prelude::*;
use serde_json::Value;

use super::{Record, RecordError};
use crate::hostile::{config, deep_json, exercise, hostile_string, json_value, record_json};
use crate::hostile::{record_json_with_huge_field, CASES};

/// The required fields in the order `Record::from_json` checks them.
const REQUIRED: [&str; 3] = ["eventID", "eventName", "eventSource"];

/// What `text` gives for a required key: a non-empty string, a number or a bool.
fn readable(value: &Value, key: &str) -> bool {
    match value.get(key) {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(_) | Value::Bool(_)) => true,
        _ => false,
    }
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn any_text_is_a_record_or_says_why_not(text in hostile_string()) {
        match Record::parse(&text) {
            Ok(record) => exercise(&record),
            Err(RecordError::Json(why)) => prop_assert!(!why.is_empty()),
            Err(RecordError::NotAnObject | RecordError::Missing(_)) => {
                prop_assert!(serde_json::from_str::<Value>(&text).is_ok());
            }
        }
    }

    #[test]
    fn any_json_is_read_exactly_when_the_required_fields_are_there(value in json_value()) {
        let text = value.to_string();
        let parsed = Record::parse(&text);
        match &value {
            Value::Object(_) => match REQUIRED.iter().find(|key| !readable(&value, key)) {
                Some(missing) => prop_assert_eq!(parsed, Err(RecordError::Missing(missing))),
                None => exercise(&parsed.expect("an object with the required fields")),
            },
            _ => prop_assert_eq!(parsed, Err(RecordError::NotAnObject)),
        }
    }
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn records_with_any_field_of_any_type_degrade_rather_than_fail(value in record_json()) {
        match Record::parse(&value.to_string()) {
            Ok(record) => {
                prop_assert!(REQUIRED.iter().all(|key| readable(&value, key)));
                prop_assert_eq!(&record.raw, &value);
                // A field of the wrong type reads as unknown, never as something else.
                if !value["awsRegion"].is_string() {
                    prop_assert!(record.aws_region.is_none() || value["awsRegion"].is_number()
                        || value["awsRegion"].is_boolean());
                }
                exercise(&record);
            }
            Err(RecordError::Missing(key)) => prop_assert!(!readable(&value, key)),
            Err(other) => prop_assert!(false, "a JSON object refused with {other}"),
        }
    }
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn a_value_of_up_to_1_mb_in_any_field_is_kept_whole(value in record_json_with_huge_field()) {
        if let Ok(record) = Record::parse(&value.to_string()) {
            prop_assert_eq!(&record.raw, &value);
            exercise(&record);
        }
    }
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn nesting_past_the_recursion_limit_is_an_error_not_a_stack_overflow(
        (depth, text) in deep_json()
    ) {
        match Record::parse(&text) {
            // serde_json allows 128 levels (the deepest shape nests two per step).
            Ok(record) => exercise(&record),
            Err(RecordError::Json(why)) => {
                prop_assert!(depth > 60, "{depth} levels refused: {why}");
                prop_assert!(why.contains("recursion limit exceeded"), "{why}");
            }
            Err(RecordError::NotAnObject | RecordError::Missing(_)) => {}
        }
    }
}
