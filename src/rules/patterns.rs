//! CloudWatch Logs filter patterns generated from the catalogue, so the stack's metric filters
//! match exactly what the daemon reports.

use super::catalogue::{group, Field, Rule, Test, IAM_EVENT_SOURCE, READ_PREFIXES};
use super::Category;

/// CloudWatch Logs refuses a filter pattern longer than this (PutMetricFilter, `filterPattern`).
pub(crate) const MAX_FILTER_PATTERN_LEN: usize = 1024;

/// The CloudWatch Logs filter pattern for IAM mutations, generated from [`READ_PREFIXES`].
///
/// Negative, so it stays short and complete: `{ ($.eventSource = "iam.amazonaws.com") &&
/// ($.eventName != "Get*") && … }`. Evidence that `!=` takes a trailing wildcard: the AWS
/// CloudWatch Logs guide "Using filter patterns to match terms in JSON log events"
/// (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/matching-terms-json-log-events.html>)
/// gives `{ $.sourceIPAddress != 123.123.* }` as its example of a negated prefix match, and the
/// same guide documents `*` as a wildcard at the start or end of a value. `!=` on a missing
/// field is false, not true, in CloudWatch; that is harmless here because every CloudTrail
/// record has `eventName`, and a record without one is not a [`Record`](crate::event::Record) either.
pub fn iam_metric_filter_pattern() -> String {
    let mut conditions = vec![format!("($.eventSource = \"{IAM_EVENT_SOURCE}\")")];
    conditions.extend(
        READ_PREFIXES
            .iter()
            .map(|prefix| format!("($.eventName != \"{prefix}*\")")),
    );
    format!("{{ {} }}", conditions.join(" && "))
}

/// The filter patterns of a category's [group](super::catalogue::GROUPS): together they match
/// exactly what [`super::catalogue::Group::matches`] matches, each at most
/// [`MAX_FILTER_PATTERN_LEN`] characters, so the stack needs one metric filter per pattern. The
/// rules of one event source share its `$.eventSource` test: `{ (($.eventSource = "s") &&
/// (($.eventName = "A") || ($.eventName = "B"))) || … }`. IAM changes have one pattern,
/// [`iam_metric_filter_pattern`].
pub fn group_patterns(category: Category) -> Vec<String> {
    match group(category) {
        Some(group) => patterns_of(group.rules),
        None => vec![iam_metric_filter_pattern()],
    }
}

/// The filter patterns that together match exactly what one of `rules` matches, each at most
/// [`MAX_FILTER_PATTERN_LEN`] characters.
fn patterns_of(rules: &[Rule]) -> Vec<String> {
    let mut patterns = Vec::new();
    // The pattern being filled: (event source, its rules' terms) in rule order.
    let mut chunk: Vec<(Option<&str>, Vec<String>)> = Vec::new();
    for rule in rules.iter().filter(|rule| !subsumed(rule, rules)) {
        let (source, term) = term(rule);
        let mut candidate = chunk.clone();
        match candidate.last_mut() {
            Some((last, terms)) if *last == source && source.is_some() => terms.push(term.clone()),
            _ => candidate.push((source, vec![term.clone()])),
        }
        if render(&candidate).len() <= MAX_FILTER_PATTERN_LEN {
            chunk = candidate;
        } else {
            patterns.push(render(&chunk));
            chunk = vec![(source, vec![term])];
        }
    }
    if !chunk.is_empty() {
        patterns.push(render(&chunk));
    }
    patterns
}

/// Whether another rule of `rules` matches everything `rule` matches (its tests are some of
/// `rule`'s): the pattern leaves `rule` out, it would only repeat that one (the root user's
/// specific rules, under "any use of the root user").
fn subsumed(rule: &Rule, rules: &[Rule]) -> bool {
    rules
        .iter()
        .any(|other| other != rule && other.when.iter().all(|test| rule.when.contains(test)))
}

/// One test as filter-pattern text.
fn condition(field: &Field) -> String {
    let path = field.path;
    match field.test {
        Test::Is(value) => format!("($.{path} = \"{value}\")"),
        Test::IsNot(value) => format!("($.{path} != \"{value}\")"),
        Test::False => format!("($.{path} IS FALSE)"),
        Test::Missing => format!("($.{path} NOT EXISTS)"),
    }
}

/// A rule as its event source (when its first test names one) and the conjunction of its
/// other tests.
fn term(rule: &Rule) -> (Option<&'static str>, String) {
    let source = rule.source();
    let rest = &rule.when[usize::from(source.is_some())..];
    let conditions: Vec<String> = rest.iter().map(condition).collect();
    let text = match conditions.as_slice() {
        [one] => one.clone(),
        many => format!("({})", many.join(" && ")),
    };
    (source, text)
}

fn render(chunk: &[(Option<&str>, Vec<String>)]) -> String {
    let groups: Vec<String> = chunk
        .iter()
        .map(|(source, terms)| match source {
            Some(source) => format!(
                "(($.eventSource = \"{source}\") && ({}))",
                terms.join(" || ")
            ),
            None => terms.join(" || "),
        })
        .collect();
    format!("{{ {} }}", groups.join(" || "))
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::super::catalogue::{CIS_4_4_FILTER_PATTERN, GROUPS};
    use super::*;

    #[test]
    fn generated_patterns_fit_cloudwatch_and_say_what_the_matcher_does() {
        let iam = iam_metric_filter_pattern();
        assert!(iam.len() <= MAX_FILTER_PATTERN_LEN);
        assert!(CIS_4_4_FILTER_PATTERN.len() <= MAX_FILTER_PATTERN_LEN);
        assert_eq!(
            iam,
            r#"{ ($.eventSource = "iam.amazonaws.com") && ($.eventName != "Get*") && ($.eventName != "List*") && ($.eventName != "Generate*") && ($.eventName != "Simulate*") }"#
        );
        for group in GROUPS {
            let patterns = group_patterns(group.category);
            let all = patterns.join("\n");
            for pattern in &patterns {
                assert!(
                    pattern.len() <= MAX_FILTER_PATTERN_LEN,
                    "{} chars: {pattern}",
                    pattern.len()
                );
            }
            for rule in group.rules.iter().filter(|r| !subsumed(r, group.rules)) {
                let (source, term) = term(rule);
                assert!(all.contains(&term), "{term} missing");
                if let Some(source) = source {
                    assert!(all.contains(&format!("($.eventSource = \"{source}\")")));
                }
            }
        }
        assert!(group_patterns(Category::Tampering).len() > 1, "split");
        let root = group_patterns(Category::RootUse);
        assert_eq!(root.len(), 1);
        assert!(
            root[0].contains(r#"(($.userIdentity.type = "Root") && ($.userIdentity.invokedBy NOT EXISTS) && ($.eventType != "AwsServiceEvent") && ($.readOnly IS FALSE))"#),
            "CIS 4.3's pattern, without reads: {}",
            root[0]
        );
        assert_eq!(
            group_patterns(Category::ConsoleSignIn),
            [
                r#"{ (($.eventSource = "signin.amazonaws.com") && ((($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && ($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success")))) }"#
            ]
        );
        assert_eq!(CIS_4_4_FILTER_PATTERN.matches("$.eventName=").count(), 16);
    }
}
