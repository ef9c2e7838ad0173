//! Property tests of the filter-pattern generator: for any selection of the catalogue's rules
//! (any subset, any order, across groups), every generated pattern is well-formed CloudWatch
//! Logs syntax within the length limit, and the patterns together match exactly the records
//! the rules match. The patterns are read back by a small evaluator of the filter syntax with
//! CloudWatch's semantics (a `*` at either end of a value is a wildcard, `!=` on a missing
//! field is false), so a value that CloudWatch would read differently from the daemon's
//! matcher shows up as a disagreement.

use proptest::prelude::*;
use serde_json::Value;

use super::super::catalogue::{set, Rule, Test, GROUPS};
use super::{patterns_of, MAX_FILTER_PATTERN_LEN};
use crate::event::Record;
use crate::hostile::{config, record_json};

/// Every rule of the catalogue.
fn all_rules() -> Vec<Rule> {
    GROUPS
        .iter()
        .flat_map(|g| g.rules.iter().copied())
        .collect()
}

/// A selection of rules: all of one group, a subset of one group, or a mix of groups.
fn rules() -> impl Strategy<Value = Vec<Rule>> {
    let group = proptest::sample::select((0..GROUPS.len()).collect::<Vec<_>>());
    prop_oneof![
        group.clone().prop_map(|g| GROUPS[g].rules.to_vec()),
        group.prop_flat_map(|g| {
            prop::sample::subsequence(GROUPS[g].rules.to_vec(), 0..=GROUPS[g].rules.len())
        }),
        prop::sample::subsequence(all_rules(), 0..40).prop_shuffle(),
    ]
}

/// A record that satisfies some of `rules` (chosen by `picks`), then has one tested field
/// disturbed (removed, another type, another value), so both outcomes are common.
fn record_for(
    rules: &[Rule],
    mut record: Value,
    picks: &[prop::sample::Index],
    disturb: Option<(prop::sample::Index, u8)>,
) -> Value {
    if rules.is_empty() {
        return record;
    }
    for pick in picks {
        for field in pick.get(rules).when {
            let value = match field.test {
                Test::Is(value) => Some(Value::from(value)),
                Test::IsNot(value) => Some(Value::from(format!("{value}-not"))),
                Test::False => Some(Value::Bool(false)),
                Test::Missing => None,
            };
            set(&mut record, field.path, value);
        }
    }
    if let Some((which, how)) = disturb {
        let fields: Vec<_> = rules.iter().flat_map(|r| r.when.iter()).collect();
        let field = which.get(&fields);
        let value = match how % 4 {
            0 => None,
            1 => Some(Value::Bool(true)),
            2 => Some(Value::from(7)),
            _ => Some(Value::from("other")),
        };
        set(&mut record, field.path, value);
    }
    record
}

/// A parsed filter pattern: the conditions and how they combine.
#[derive(Debug)]
enum Expr {
    Any(Vec<Expr>),
    All(Vec<Expr>),
    Cond {
        path: String,
        op: String,
        value: Option<String>,
    },
}

/// Reads a generated pattern; an error for anything that is not well-formed (unbalanced,
/// `&&` and `||` mixed without parentheses, an unknown operator).
fn parse_pattern(pattern: &str) -> Result<Expr, String> {
    let inner = pattern
        .strip_prefix("{ ")
        .and_then(|p| p.strip_suffix(" }"))
        .ok_or("not in braces")?;
    let tokens = tokenize(inner)?;
    let mut at = 0;
    let expr = expression(&tokens, &mut at)?;
    if at != tokens.len() {
        return Err(format!("left over after {at} tokens: {:?}", &tokens[at..]));
    }
    Ok(expr)
}

fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' => {
                chars.next();
            }
            '(' | ')' => {
                tokens.push(c.to_string());
                chars.next();
            }
            '"' => {
                chars.next();
                let mut value = String::from("\"");
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => return Err("an escape in a value".into()),
                        Some(c) => value.push(c),
                        None => return Err("an unclosed quote".into()),
                    }
                }
                tokens.push(value);
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c == ' ' || c == '(' || c == ')' || c == '"' {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(word);
            }
        }
    }
    Ok(tokens)
}

fn expression(tokens: &[String], at: &mut usize) -> Result<Expr, String> {
    let mut items = vec![primary(tokens, at)?];
    let mut op: Option<&str> = None;
    while let Some(next) = tokens.get(*at).map(String::as_str) {
        if next != "&&" && next != "||" {
            break;
        }
        if op.is_some_and(|op| op != next) {
            return Err("&& and || mixed without parentheses".into());
        }
        op = Some(next);
        *at += 1;
        items.push(primary(tokens, at)?);
    }
    Ok(match op {
        Some("&&") => Expr::All(items),
        Some(_) => Expr::Any(items),
        None => items.pop().expect("one item"),
    })
}

fn primary(tokens: &[String], at: &mut usize) -> Result<Expr, String> {
    let token = |i: usize| tokens.get(i).map(String::as_str).unwrap_or("");
    if token(*at) != "(" {
        return Err(format!("expected ( at token {at}, got {:?}", token(*at)));
    }
    *at += 1;
    let expr = if let Some(path) = token(*at).strip_prefix("$.") {
        let path = path.to_owned();
        let (op, value, used) = match (token(*at + 1), token(*at + 2)) {
            ("=" | "!=", value) if value.starts_with('"') => {
                (token(*at + 1).to_owned(), Some(value[1..].to_owned()), 3)
            }
            ("IS", "FALSE") => ("IS FALSE".to_owned(), None, 3),
            ("NOT", "EXISTS") => ("NOT EXISTS".to_owned(), None, 3),
            (op, _) => return Err(format!("unknown operator {op:?}")),
        };
        *at += used;
        Expr::Cond { path, op, value }
    } else {
        expression(tokens, at)?
    };
    if token(*at) != ")" {
        return Err(format!("expected ) at token {at}, got {:?}", token(*at)));
    }
    *at += 1;
    Ok(expr)
}

/// CloudWatch's `=` on text: a `*` at the start or the end of the value is a wildcard.
fn text_matches(text: &str, wanted: &str) -> bool {
    match (wanted.strip_prefix('*'), wanted.strip_suffix('*')) {
        (Some(rest), _) if !rest.is_empty() => text.ends_with(rest.trim_end_matches('*')),
        (_, Some(rest)) => text.starts_with(rest),
        _ => text == wanted,
    }
}

fn eval(expr: &Expr, record: &Value) -> bool {
    match expr {
        Expr::Any(items) => items.iter().any(|e| eval(e, record)),
        Expr::All(items) => items.iter().all(|e| eval(e, record)),
        Expr::Cond { path, op, value } => {
            let found = path
                .split('.')
                .try_fold(record, |node, key| node.as_object()?.get(key));
            match (op.as_str(), found, value.as_deref()) {
                ("NOT EXISTS", found, _) => found.is_none(),
                ("IS FALSE", found, _) => found == Some(&Value::Bool(false)),
                ("=", Some(Value::String(text)), Some(wanted)) => text_matches(text, wanted),
                ("!=", Some(Value::String(text)), Some(unwanted)) => !text_matches(text, unwanted),
                _ => false,
            }
        }
    }
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn generated_patterns_are_well_formed_and_match_what_the_rules_match(
        rules in rules(),
        base in record_json(),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 0..3),
        disturb in prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
    ) {
        let patterns = patterns_of(&rules);
        prop_assert_eq!(patterns.is_empty(), rules.is_empty());
        let parsed: Vec<Expr> = patterns
            .iter()
            .map(|p| {
                prop_assert!(p.len() <= MAX_FILTER_PATTERN_LEN, "{} characters: {p}", p.len());
                parse_pattern(p).map_err(|e| TestCaseError::fail(format!("{e}: {p}")))
            })
            .collect::<Result<_, _>>()?;
        let json = record_for(&rules, base, &picks, disturb);
        if let Ok(record) = Record::from_json(json.clone()) {
            let by_rules = rules.iter().any(|rule| rule.matches(&record));
            let by_patterns = parsed.iter().any(|p| eval(p, &json));
            prop_assert_eq!(by_rules, by_patterns, "{}\n{:#?}", json, patterns);
        }
    }
}
