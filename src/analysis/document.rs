//! A policy document normalised for comparison: every statement with its effect, its actions
//! (or the actions it excludes), its resources (or the ones it excludes), its principals and
//! its condition, each in one canonical shape whatever shape the author wrote (a string or a
//! list, `Action` names in any case, a bare account ID or its root ARN).

use std::collections::BTreeSet;

use serde_json::Value;

use super::policy;

/// Allow or Deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Effect {
    /// `"Effect": "Allow"`.
    Allow,
    /// `"Effect": "Deny"`.
    Deny,
}

impl Effect {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        }
    }
}

/// A list a statement names (`Action`, `Resource`) or excludes (`NotAction`, `NotResource`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Names {
    /// The listed names: `Action` or `Resource`.
    Only(Vec<String>),
    /// Everything but the listed names: `NotAction` or `NotResource`.
    AllBut(Vec<String>),
}

impl Names {
    /// Whether `name` is in the set these names describe (globs `*` and `?`, any case when
    /// `fold` is set: action names are case-insensitive, resource ARNs are not).
    pub(crate) fn covers(&self, name: &str, fold: bool) -> bool {
        let hit = |list: &[String]| list.iter().any(|g| glob(g, name, fold));
        match self {
            Names::Only(list) => hit(list),
            Names::AllBut(list) => !hit(list),
        }
    }

    /// Whether the set is every name (`*` listed, or `NotX` with nothing excluded).
    pub(crate) fn is_everything(&self) -> bool {
        match self {
            Names::Only(list) => list.iter().any(|n| n == "*"),
            Names::AllBut(list) => list.is_empty(),
        }
    }
}

/// One statement, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Statement {
    pub effect: Effect,
    /// Action names as written (case kept for display; compare with [`Names::covers`]).
    pub actions: Names,
    /// `None` in trust policies, which name no resource.
    pub resources: Option<Names>,
    /// `(kind, value)` pairs (`("AWS", "arn:aws:iam::1:root")`, `("*", "*")`), sorted; with
    /// `not_principal` the statement applies to everyone else.
    pub principals: Vec<(String, String)>,
    pub not_principal: bool,
    /// The condition in one canonical text (keys lower-cased and sorted, every value a sorted
    /// list of strings), empty when there is none.
    pub condition: String,
}

/// A policy document, normalised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Document {
    pub statements: Vec<Statement>,
}

/// Why a document could not be read, in words for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unreadable(pub String);

/// Case-insensitive (with `fold`) glob match with `*` (any run) and `?` (one character).
pub(crate) fn glob(pattern: &str, text: &str, fold: bool) -> bool {
    let norm = |s: &str| -> Vec<char> {
        if fold {
            s.chars().flat_map(char::to_lowercase).collect()
        } else {
            s.chars().collect()
        }
    };
    let (p, t) = (norm(pattern), norm(text));
    // Classic backtracking over the last star: linear in practice, never recursive.
    let (mut pi, mut ti, mut back) = (0usize, 0usize, None::<(usize, usize)>);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            back = Some((pi, ti));
            pi += 1;
        } else if let Some((star, at)) = back {
            pi = star + 1;
            ti = at + 1;
            back = Some((star, at + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn strings(value: &Value, what: &str) -> Result<Vec<String>, Unreadable> {
    let one = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(Unreadable(format!("{what} holds {other}, not a string"))),
    };
    let mut list = match value {
        Value::Array(items) => items.iter().map(one).collect::<Result<Vec<_>, _>>()?,
        other => vec![one(other)?],
    };
    list.sort();
    list.dedup();
    Ok(list)
}

fn names(
    statement: &serde_json::Map<String, Value>,
    only: &str,
    all_but: &str,
) -> Result<Option<Names>, Unreadable> {
    match (statement.get(only), statement.get(all_but)) {
        (Some(_), Some(_)) => Err(Unreadable(format!(
            "a statement has both {only} and {all_but}"
        ))),
        (Some(v), None) => Ok(Some(Names::Only(strings(v, only)?))),
        (None, Some(v)) => Ok(Some(Names::AllBut(strings(v, all_but)?))),
        (None, None) => Ok(None),
    }
}

/// A bare 12-digit account ID means the account's root ARN.
fn principal_value(kind: &str, value: String) -> String {
    if kind == "AWS" && value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        format!("arn:aws:iam::{value}:root")
    } else {
        value
    }
}

fn principals(value: &Value) -> Result<Vec<(String, String)>, Unreadable> {
    let mut pairs = BTreeSet::new();
    match value {
        Value::String(s) if s == "*" => {
            pairs.insert(("*".to_owned(), "*".to_owned()));
        }
        Value::Object(kinds) => {
            for (kind, values) in kinds {
                for v in strings(values, "Principal")? {
                    let v = principal_value(kind, v);
                    let kind = if kind == "AWS" && v == "*" { "*" } else { kind };
                    pairs.insert((kind.to_owned(), v));
                }
            }
        }
        other => return Err(Unreadable(format!("Principal holds {other}"))),
    }
    Ok(pairs.into_iter().collect())
}

/// The condition block in one canonical text: operators as written, keys lower-cased (IAM
/// condition keys are case-insensitive), values as sorted lists of strings.
fn condition(value: &Value) -> Result<String, Unreadable> {
    let Value::Object(operators) = value else {
        return Err(Unreadable(format!("Condition holds {value}")));
    };
    let mut canonical = serde_json::Map::new();
    for (operator, keys) in operators {
        let Value::Object(keys) = keys else {
            return Err(Unreadable(format!("Condition {operator} holds {keys}")));
        };
        let mut block = serde_json::Map::new();
        for (key, values) in keys {
            let list: Vec<Value> = match values {
                Value::Array(items) => items.clone(),
                other => vec![other.clone()],
            };
            let mut list: Vec<String> = list
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect();
            list.sort();
            list.dedup();
            block.insert(key.to_lowercase(), list.into());
        }
        canonical.insert(operator.clone(), Value::Object(block));
    }
    if canonical.is_empty() {
        return Ok(String::new());
    }
    // serde_json's map is ordered by key: the text is canonical.
    Ok(Value::Object(canonical).to_string())
}

fn statement(value: &Value) -> Result<Statement, Unreadable> {
    let Value::Object(map) = value else {
        return Err(Unreadable(format!("a statement is {value}, not an object")));
    };
    let effect = match map.get("Effect").and_then(Value::as_str) {
        Some(e) if e.eq_ignore_ascii_case("Allow") => Effect::Allow,
        Some(e) if e.eq_ignore_ascii_case("Deny") => Effect::Deny,
        _ => return Err(Unreadable("a statement has no Effect Allow or Deny".into())),
    };
    let actions = names(map, "Action", "NotAction")?
        .ok_or_else(|| Unreadable("a statement has no Action or NotAction".into()))?;
    let resources = names(map, "Resource", "NotResource")?;
    let (principals, not_principal) = match (map.get("Principal"), map.get("NotPrincipal")) {
        (Some(p), None) => (principals(p)?, false),
        (None, Some(p)) => (principals(p)?, true),
        (None, None) => (Vec::new(), false),
        (Some(_), Some(_)) => {
            return Err(Unreadable(
                "a statement has both Principal and NotPrincipal".into(),
            ))
        }
    };
    let condition = match map.get("Condition") {
        None | Some(Value::Null) => String::new(),
        Some(c) => condition(c)?,
    };
    Ok(Statement {
        effect,
        actions,
        resources,
        principals,
        not_principal,
        condition,
    })
}

/// Reads a document in any shape CloudTrail or IAM gives it (see [`policy::parse`]).
pub(crate) fn read(value: &Value) -> Result<Document, Unreadable> {
    let document = policy::parse(value)
        .ok_or_else(|| Unreadable("not JSON, plain or URL-encoded".to_owned()))?;
    let statements = match document.get("Statement") {
        Some(Value::Array(list)) => list.iter().map(statement).collect::<Result<_, _>>()?,
        Some(single @ Value::Object(_)) => vec![statement(single)?],
        Some(other) => return Err(Unreadable(format!("Statement holds {other}"))),
        None => return Err(Unreadable("no Statement".to_owned())),
    };
    Ok(Document { statements })
}

impl Document {
    /// The first Allow statement that grants `action` (on some resource), unless an
    /// unconditional Deny of it on every resource overrides it.
    pub(crate) fn allowing(&self, action: &str) -> Option<&Statement> {
        let denied = self.statements.iter().any(|s| {
            s.effect == Effect::Deny
                && s.condition.is_empty()
                && s.actions.covers(action, true)
                && s.resources.as_ref().is_none_or(Names::is_everything)
        });
        if denied {
            return None;
        }
        self.statements
            .iter()
            .find(|s| s.effect == Effect::Allow && s.actions.covers(action, true))
    }
}
