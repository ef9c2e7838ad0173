//! IAM policy documents as CloudTrail records them: one parser for the whole crate (a string,
//! plain or URL-encoded JSON, or JSON already), and what a document grants.

use serde_json::Value;

/// The document in `value`: a JSON object or array as it is, or a string holding one, plain
/// (`{"Version"…`) or URL-encoded (`%7B%22Version%22…`) as CloudTrail writes inline policies.
/// `None` for anything else; never a panic.
pub fn parse(value: &Value) -> Option<Value> {
    match value {
        Value::String(text) => parse_text(text).filter(|v| v.is_object() || v.is_array()),
        Value::Object(_) | Value::Array(_) => Some(value.clone()),
        _ => None,
    }
}

fn parse_text(text: &str) -> Option<Value> {
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return Some(value);
    }
    let decoded = percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()?;
    serde_json::from_str(&decoded).ok()
}

/// Whether an IAM policy document allows `*` or `iam:*` on resource `*`.
///
/// `Statement`, `Action` and `Resource` may each be a single value or a list. Anything
/// unreadable is not an admin grant.
pub(crate) fn grants_everything(document: &Value) -> bool {
    let Some(document) = parse(document) else {
        return false;
    };
    let statements: Vec<&Value> = match document.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(single @ Value::Object(_)) => vec![single],
        _ => return false,
    };
    statements.into_iter().any(|statement| {
        let allows = statement
            .get("Effect")
            .and_then(Value::as_str)
            .is_some_and(|effect| effect.eq_ignore_ascii_case("Allow"));
        let any_action = one_or_many(statement.get("Action"))
            .any(|action| action == "*" || action.eq_ignore_ascii_case("iam:*"));
        let any_resource = one_or_many(statement.get("Resource")).any(|resource| resource == "*");
        allows && any_action && any_resource
    })
}

fn one_or_many(value: Option<&Value>) -> impl Iterator<Item = &str> {
    let items: Vec<&str> = match value {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    items.into_iter()
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{iam, ADMIN_DOC};
    use crate::rules::{classify, Severity};
    use serde_json::json;

    #[test]
    fn inline_policy_documents_are_read_in_every_shape() {
        let url_encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%5B%22s3%3AGetObject%22%2C%22iam%3A%2A%22%5D%2C%22Resource%22%3A%22%2A%22%7D%5D%7D";
        let yes = [
            json!(ADMIN_DOC),
            json!(url_encoded),
            json!(
                r#"{"Statement": {"Effect": "Allow", "Action": ["iam:*"], "Resource": ["arn:x", "*"]}}"#
            ),
            json!({"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"},
                                 {"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
        ];
        for document in &yes {
            assert!(grants_everything(document), "{document}");
        }
        let no = [
            json!(r#"{"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}"#),
            json!(
                r#"{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b/*"}]}"#
            ),
            json!(r#"{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}"#),
            json!(r#"{"Statement": "#),
            json!("%7B%22Statement%22%3A"),
            json!("%ZZ not a document"),
            json!(r#"{"Statement": 3}"#),
            json!(r#"[1, 2]"#),
            json!(42),
            Value::Null,
        ];
        for document in &no {
            assert!(!grants_everything(document), "{document}");
        }
        let malformed = iam(
            "PutGroupPolicy",
            json!({"groupName": "g", "policyDocument": "{\"Statement\": [{"}),
        );
        assert_eq!(
            classify(&malformed, &Default::default()).unwrap().severity,
            Severity::High
        );
    }
}
