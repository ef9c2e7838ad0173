//! Property tests of the policy-document reader as the rules and the renderer use it: any
//! JSON value where a document is expected, documents as JSON, as JSON text and as
//! URL-encoded JSON text (as CloudTrail writes inline policies), and nesting past the
//! recursion limit. Nothing may panic; the three spellings of one document read and judge
//! the same; the renderer's pretty-printed document is the document.

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::{grants_everything, parse};
use crate::hostile::{config, deep_json, hostile_short, json_value, CASES};

/// One value or a list of them, as IAM allows for `Statement`, `Action` and `Resource`.
fn one_or_many(item: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop_oneof![
        item.clone(),
        prop::collection::vec(item, 0..4).prop_map(Value::Array)
    ]
    .boxed()
}

fn text_of(values: &'static [&'static str]) -> BoxedStrategy<Value> {
    prop_oneof![
        4 => proptest::sample::select(values).prop_map(Value::from),
        1 => hostile_short().prop_map(Value::from),
        1 => json_value(),
    ]
    .boxed()
}

/// An IAM policy document, often granting everything, sometimes malformed anywhere.
fn document() -> impl Strategy<Value = Value> {
    let statement = (
        text_of(&["Allow", "Deny", "allow"]),
        one_or_many(text_of(&["*", "iam:*", "IAM:*", "s3:GetObject", "iam:Get*"])),
        one_or_many(text_of(&["*", "arn:aws:s3:::b/*"])),
    )
        .prop_map(|(effect, action, resource)| {
            json!({"Effect": effect, "Action": action, "Resource": resource})
        })
        .boxed();
    prop_oneof![
        4 => one_or_many(statement).prop_map(|s| json!({"Version": "2012-10-17", "Statement": s})),
        1 => json_value(),
    ]
}

/// `value` with every character the renderer makes safe (controls, bidi, …) a space, as the
/// text of a multi-line field shows it.
fn defanged(value: &Value) -> Value {
    // serde_json writes U+0000 to U+001F as escapes, which are inert; the rest is cleaned.
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c < ' ' {
                    c.to_string()
                } else {
                    crate::notify::render::one_line(&c.to_string())
                }
            })
            .collect()
    };
    match value {
        Value::String(s) => Value::String(clean(s)),
        Value::Array(items) => Value::Array(items.iter().map(defanged).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (clean(k), defanged(v))).collect())
        }
        other => other.clone(),
    }
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn any_value_is_a_document_or_none(value in json_value()) {
        match parse(&value) {
            Some(document) => prop_assert!(document.is_object() || document.is_array()),
            None => prop_assert!(!value.is_object() && !value.is_array()),
        }
        let _ = grants_everything(&value);
    }

    #[test]
    fn plain_text_and_url_encoded_documents_read_and_judge_the_same(document in document()) {
        let text = document.to_string();
        // As read back: serde_json's float parsing may differ in the last digit.
        let document: Value = serde_json::from_str(&text).expect("our JSON parses");
        let encoded = utf8_percent_encode(&text, NON_ALPHANUMERIC).to_string();
        let container = document.is_object() || document.is_array();
        for spelling in [Value::String(text), Value::String(encoded)] {
            let parsed = parse(&spelling);
            prop_assert_eq!(parsed.as_ref(), container.then_some(&document));
            prop_assert_eq!(grants_everything(&spelling), grants_everything(&document));
        }
    }
}

proptest! {
    #![proptest_config(config(500))]

    #[test]
    fn deeply_nested_documents_are_none_not_a_stack_overflow((depth, text) in deep_json()) {
        let encoded = utf8_percent_encode(&text, NON_ALPHANUMERIC).to_string();
        for spelling in [Value::String(text), Value::String(encoded)] {
            let parsed = parse(&spelling);
            prop_assert!(parsed.is_some() || depth > 60, "{depth} levels refused");
            prop_assert!(!grants_everything(&spelling));
        }
    }
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn the_rendered_policy_document_is_the_document(document in document(), encode in any::<bool>()) {
        prop_assume!(document.is_object());
        let text = document.to_string();
        let document: Value = serde_json::from_str(&text).expect("our JSON parses");
        let text = if encode { utf8_percent_encode(&text, NON_ALPHANUMERIC).to_string() } else { text };
        let field = crate::notify::render::parameter_field("PutRolePolicy", "policyDocument", &Value::String(text));
        prop_assert_eq!(field.label, "policyDocument (policy)");
        if !field.value.contains("(truncated, ") {
            let shown: Value = serde_json::from_str(&field.value).expect("the pretty document parses");
            prop_assert_eq!(shown, defanged(&document));
        }
    }
}
