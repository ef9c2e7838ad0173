//! CloudWatch Logs filter patterns generated from the catalogue, so the stack's metric filters
//! match exactly what the daemon reports.

use super::catalogue::{IAM_EVENT_SOURCE, READ_PREFIXES, TAMPERING_EVENTS};

/// CloudWatch Logs refuses a filter pattern longer than this (PutMetricFilter, `filterPattern`).
#[cfg(test)]
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

/// The CloudWatch Logs filter pattern for [`TAMPERING_EVENTS`], grouped by event source.
pub fn tampering_metric_filter_pattern() -> String {
    let mut sources: Vec<&str> = Vec::new();
    for (source, _) in TAMPERING_EVENTS {
        if !sources.contains(source) {
            sources.push(source);
        }
    }
    let groups: Vec<String> = sources
        .iter()
        .map(|source| {
            let names: Vec<String> = TAMPERING_EVENTS
                .iter()
                .filter(|(s, _)| s == source)
                .map(|(_, name)| format!("($.eventName = \"{name}\")"))
                .collect();
            format!(
                "(($.eventSource = \"{source}\") && ({}))",
                names.join(" || ")
            )
        })
        .collect();
    format!("{{ {} }}", groups.join(" || "))
}

#[cfg(test)]
mod tests {
    use super::super::catalogue::CIS_4_4_FILTER_PATTERN;
    use super::*;

    #[test]
    fn generated_patterns_fit_cloudwatch_and_say_what_the_matcher_does() {
        let iam = iam_metric_filter_pattern();
        let tampering = tampering_metric_filter_pattern();
        for pattern in [&iam, &tampering, &CIS_4_4_FILTER_PATTERN.to_owned()] {
            assert!(
                pattern.len() <= MAX_FILTER_PATTERN_LEN,
                "{} chars: {pattern}",
                pattern.len()
            );
        }
        assert_eq!(
            iam,
            r#"{ ($.eventSource = "iam.amazonaws.com") && ($.eventName != "Get*") && ($.eventName != "List*") && ($.eventName != "Generate*") && ($.eventName != "Simulate*") }"#
        );
        for (source, name) in TAMPERING_EVENTS {
            assert!(tampering.contains(&format!("($.eventSource = \"{source}\")")));
            assert!(tampering.contains(&format!("($.eventName = \"{name}\")")));
        }
        assert_eq!(CIS_4_4_FILTER_PATTERN.matches("$.eventName=").count(), 16);
    }
}
