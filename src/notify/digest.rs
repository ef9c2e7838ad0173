//! Burst digests: a Terraform apply is one message, not two hundred.
//!
//! A **burst** is a run of findings for one notifier from one principal (an assumed-role
//! session counts as its role) in one account, each seen within `window` of the previous one.
//! Its first `immediate` findings go out as they come; the rest are held and sent as **one
//! digest** when the burst ends (nothing for `window`) or `max_delay` after the first held
//! one, whichever is first. CRITICAL findings, tampering and the daemon's own messages are
//! never held; the digest names them. Bursts are judged by when the daemon sees a finding:
//! a backlog found after an outage is a burst too.
//!
//! This module holds the settings ([`DigestConfig`]), the decision for one finding
//! ([`plan`]) and the digest's message ([`render`]); the store keeps the bursts and makes
//! the digest and the rows it carries one transaction; each notifier's delivery worker
//! builds its own digests.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::render::{html_body, one_line, text_body};
use super::{Attachment, Field, Message, Section};
use crate::config::problem::Problems;
use crate::rules::{DigestMode, Severity};
use crate::store::{BurstPlan, Hold, ReadyBurst};

/// Findings a digest lists one by one; the rest are counted, with the command that shows
/// them all (and mail attaches every one as CSV).
const LISTED_MAX: usize = 150;

/// A notifier's digest settings, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestConfig {
    /// `false`: one message per finding.
    pub enabled: bool,
    /// A finding later than this after the previous one starts a new burst.
    pub window: Duration,
    /// Findings of a burst sent as they come before the rest are held.
    pub immediate: u32,
    /// The longest a held finding waits.
    pub max_delay: Duration,
}

impl Default for DigestConfig {
    fn default() -> Self {
        DigestConfig {
            enabled: true,
            window: Duration::from_secs(60),
            immediate: 3,
            max_delay: Duration::from_secs(5 * 60),
        }
    }
}

/// `[digest]`, or a notifier's `digest = { … }`, as written: each key overrides the level
/// above (the notifier's over `[digest]`, `[digest]` over the defaults).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawDigest {
    /// Whether bursts are digested.
    enabled: Option<bool>,
    /// The burst window, e.g. `"60s"`.
    window: Option<String>,
    /// Findings sent at once per burst.
    immediate: Option<i64>,
    /// The longest wait, e.g. `"5m"`.
    max_delay: Option<String>,
}

impl RawDigest {
    /// Validates the keys at `section` (`digest` or `notifiers.ops.digest`) over `base`.
    pub(crate) fn validate(
        &self,
        section: &str,
        base: &DigestConfig,
        problems: &mut Problems,
    ) -> DigestConfig {
        let duration =
            |key: &str, text: &Option<String>, default: Duration, problems: &mut Problems| {
                match text.as_deref().map(humantime::parse_duration) {
                    None => default,
                    Some(Ok(d)) if !d.is_zero() => d,
                    Some(Ok(_)) => {
                        problems.error(format!("{section}.{key}"), "must be greater than 0");
                        default
                    }
                    Some(Err(e)) => {
                        problems.error(
                            format!("{section}.{key}"),
                            format!("is not a duration ({e}); write e.g. \"60s\" or \"5m\""),
                        );
                        default
                    }
                }
            };
        let window = duration("window", &self.window, base.window, problems);
        let max_delay = duration("max_delay", &self.max_delay, base.max_delay, problems);
        let immediate = match self.immediate {
            None => base.immediate,
            Some(n) => u32::try_from(n)
                .ok()
                .filter(|n| *n <= 1000)
                .unwrap_or_else(|| {
                    problems.error(
                        format!("{section}.immediate"),
                        format!("must be 0-1000 (findings of a burst sent at once), got {n}"),
                    );
                    base.immediate
                }),
        };
        if max_delay < window {
            problems.warn(
                format!("{section}.max_delay"),
                "is shorter than the window: a busy burst becomes a digest every max_delay",
            );
        }
        DigestConfig {
            enabled: self.enabled.unwrap_or(base.enabled),
            window,
            immediate,
            max_delay,
        }
    }
}

/// The burst key of a finding: its account and principal.
pub fn burst_key(account: &str, principal: &str) -> String {
    format!("{account} {principal}")
}

/// How a finding takes part in its notifier's bursts, or `None` when it does not (digests
/// off, the allow-list says never, a message about the pipeline).
pub fn plan(
    config: &DigestConfig,
    message: &Message,
    key: Option<&str>,
    mode: Option<DigestMode>,
) -> Option<BurstPlan> {
    if !config.enabled || mode == Some(DigestMode::Never) || message.is_pipeline() {
        return None;
    }
    let hold = if message.severity == Severity::Critical.as_str() || message.category == "tampering"
    {
        Hold::Never
    } else if mode == Some(DigestMode::Always) {
        Hold::Always
    } else {
        Hold::Normal
    };
    Some(BurstPlan {
        key: key?.to_owned(),
        hold,
        window: config.window,
        immediate: config.immediate,
    })
}

fn count_line(counts: &BTreeMap<String, usize>) -> String {
    let mut by_count: Vec<(&String, &usize)> = counts.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    by_count
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn utc(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A CSV field: quoted, quotes doubled, and a leading `=`, `+`, `-` or `@` defused so that a
/// spreadsheet does not run it as a formula.
fn csv(value: &str) -> String {
    let value = one_line(value);
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value
    };
    format!("\"{}\"", value.replace('"', "\"\""))
}

/// The digest of `burst`'s held findings.
pub fn render(burst: &ReadyBurst) -> Message {
    let findings: Vec<Message> = burst
        .held
        .iter()
        .filter_map(|(_, payload)| serde_json::from_slice(payload).ok())
        .collect();
    let separate: Vec<Message> = burst
        .separate
        .iter()
        .filter_map(|payload| serde_json::from_slice(payload).ok())
        .collect();
    let (account, principal) = burst.key.split_once(' ').unwrap_or(("unknown", &burst.key));
    let (account, principal) = (one_line(account), one_line(principal));
    let mut by_severity = BTreeMap::new();
    let mut by_event = BTreeMap::new();
    let mut strongest = Severity::Info;
    for finding in &findings {
        *by_severity.entry(finding.severity.clone()).or_insert(0) += 1;
        *by_event.entry(finding.event_name.clone()).or_insert(0) += 1;
        strongest = strongest.max(finding.severity.parse().unwrap_or(Severity::Info));
    }
    let n = findings.len();
    let who = principal
        .rsplit(':')
        .next()
        .unwrap_or(&principal)
        .to_owned();
    let subject = format!(
        "[iamwatchd] {strongest} DIGEST {n} change{} by {who} ({account}): {}",
        if n == 1 { "" } else { "s" },
        count_line(&by_severity)
    );
    let since = burst.span.0 - chrono::TimeDelta::minutes(1);
    let command = format!(
        "iamwatchd scan --since {} --until {} --principal {principal}",
        utc(since),
        utc(burst.span.1 + chrono::TimeDelta::minutes(1))
    );
    let mut summary = vec![
        Field::new("Principal", &principal),
        Field::new("Account", &account),
        Field::new(
            "Span",
            format!(
                "{} to {} (seen by iamwatchd)",
                utc(burst.span.0),
                utc(burst.span.1)
            ),
        ),
        Field::new("Findings in this digest", n.to_string()),
        Field::new("By severity", count_line(&by_severity)),
        Field::new("By event", count_line(&by_event)),
    ];
    if !separate.is_empty() {
        let mut kinds = BTreeMap::new();
        for message in &separate {
            let kind = if message.category == "tampering" {
                "tampering".to_owned()
            } else {
                message.severity.clone()
            };
            *kinds.entry(kind).or_insert(0) += 1;
        }
        let list: Vec<String> = separate
            .iter()
            .map(|m| format!("{} ({})", m.event_name, m.event_id))
            .collect();
        summary.push(Field::new(
            "Sent separately",
            format!(
                "{} change{} in this burst {} sent separately ({}): {}",
                separate.len(),
                if separate.len() == 1 { "" } else { "s" },
                if separate.len() == 1 { "was" } else { "were" },
                count_line(&kinds),
                list.join(", ")
            ),
        ));
    }
    summary.push(Field::new(
        "Silenced by the allow-list",
        format!(
            "{} event(s) of this principal in the same span",
            burst.silenced
        ),
    ));
    summary.push(Field::new("See them all", &command));
    let mut listed: Vec<Field> = findings
        .iter()
        .take(LISTED_MAX)
        .map(|f| {
            Field::new(
                f.time.map(utc).unwrap_or_else(|| "time unknown".to_owned()),
                format!(
                    "{} {} {} ({})",
                    f.severity,
                    f.event_name,
                    f.target.as_deref().unwrap_or("-"),
                    f.event_id
                ),
            )
        })
        .collect();
    if n > LISTED_MAX {
        listed.push(Field::new(
            "And more",
            format!(
                "{} more not listed here: the mail's CSV attachment has them all, and `{command}` \
                 prints them",
                n - LISTED_MAX
            ),
        ));
    }
    let sections = vec![
        Section {
            title: "Burst".to_owned(),
            fields: summary,
        },
        Section {
            title: "Changes".to_owned(),
            fields: listed,
        },
    ];
    let mut table = String::from("time,severity,event_name,target,event_id,subject\n");
    for f in &findings {
        let row = [
            f.time.map(utc).unwrap_or_default(),
            f.severity.clone(),
            f.event_name.clone(),
            f.target.clone().unwrap_or_default(),
            f.event_id.clone(),
            f.subject.clone(),
        ];
        table.push_str(&row.iter().map(|v| csv(v)).collect::<Vec<_>>().join(","));
        table.push('\n');
    }
    let first = findings
        .first()
        .map(|f| f.event_id.clone())
        .unwrap_or_else(|| burst.id.to_string());
    let headline = subject.trim_start_matches("[iamwatchd] ").to_owned();
    let severity = strongest.to_string();
    Message {
        text: text_body(&headline, &sections),
        html: html_body(&headline, &severity, &sections, None),
        subject,
        event_id: format!("digest-{first}"),
        severity,
        category: "iam-change".to_owned(),
        attempt: false,
        event_name: "Digest".to_owned(),
        account,
        // The headline is already the plain sentence a reader needs first.
        summary: headline.clone(),
        headline,
        sections,
        link: None,
        time: Some(burst.span.1),
        target: None,
        principal: Some(principal),
        digest_of: n,
        attachment: Some(Attachment {
            name: format!("iamwatchd-digest-{}.csv", burst.id),
            content_type: "text/csv".to_owned(),
            text: table,
        }),
        analysis: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn finding(i: usize, severity: &str, event: &str) -> Message {
        Message {
            event_id: format!("ev-{i}"),
            time: Some(Utc.timestamp_opt(1_700_000_000 + i as i64, 0).unwrap()),
            target: Some(format!("role/app-{i}")),
            ..Message::for_test(severity, "iam-change", event)
        }
    }

    fn burst(held: Vec<Message>, separate: Vec<Message>) -> ReadyBurst {
        ReadyBurst {
            id: 7,
            key: burst_key("111122223333", "arn:aws:iam::111122223333:role/ci"),
            span: (
                Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
                Utc.timestamp_opt(1_700_000_090, 0).unwrap(),
            ),
            held: held
                .iter()
                .enumerate()
                .map(|(i, m)| (i as i64, serde_json::to_vec(m).unwrap()))
                .collect(),
            separate: separate
                .iter()
                .map(|m| serde_json::to_vec(m).unwrap())
                .collect(),
            silenced: 4,
        }
    }

    #[test]
    fn a_digest_lists_counts_names_what_went_separately_and_attaches_everything() {
        let held: Vec<Message> = (0..195)
            .map(|i| finding(i, if i % 3 == 0 { "HIGH" } else { "LOW" }, "TagRole"))
            .collect();
        let separate = vec![finding(900, "CRITICAL", "AttachRolePolicy")];
        let digest = render(&burst(held, separate));
        assert_eq!(digest.digest_of, 195);
        assert_eq!(
            digest.event_id, "digest-ev-0",
            "stable: named after its first finding"
        );
        assert_eq!(digest.severity, "HIGH");
        assert!(digest
            .subject
            .contains("DIGEST 195 changes by role/ci (111122223333)"));
        assert!(
            digest.subject.contains("LOW 130, HIGH 65"),
            "{}",
            digest.subject
        );
        assert!(digest
            .text
            .contains("1 change in this burst was sent separately (CRITICAL 1)"));
        assert!(digest
            .text
            .contains("4 event(s) of this principal in the same span"));
        assert!(digest
            .text
            .contains("iamwatchd scan --since 2023-11-14T22:12:20Z"));
        assert!(digest
            .text
            .contains("--principal arn:aws:iam::111122223333:role/ci"));
        assert!(digest.text.contains("45 more not listed here"));
        let csv = digest.attachment.unwrap().text;
        assert_eq!(csv.lines().count(), 196, "a header and every finding");
        assert!(csv.contains("\"ev-194\""));
    }

    #[test]
    fn the_plan_holds_only_what_may_wait() {
        let config = DigestConfig::default();
        let key = Some("k");
        let normal = plan(&config, &finding(1, "HIGH", "CreateUser"), key, None).unwrap();
        assert_eq!(normal.hold, Hold::Normal);
        let critical = plan(&config, &finding(1, "CRITICAL", "X"), key, None).unwrap();
        assert_eq!(critical.hold, Hold::Never);
        let tampering = Message {
            category: "tampering".into(),
            ..finding(1, "HIGH", "StopLogging")
        };
        assert_eq!(
            plan(&config, &tampering, key, Some(DigestMode::Always))
                .unwrap()
                .hold,
            Hold::Never
        );
        assert_eq!(
            plan(
                &config,
                &finding(1, "LOW", "TagRole"),
                key,
                Some(DigestMode::Always)
            )
            .unwrap()
            .hold,
            Hold::Always
        );
        assert!(plan(
            &config,
            &finding(1, "LOW", "TagRole"),
            key,
            Some(DigestMode::Never)
        )
        .is_none());
        let pipeline = Message::for_test("HIGH", "pipeline-health", "AlarmPathSilent");
        assert!(plan(&config, &pipeline, key, None).is_none());
        let off = DigestConfig {
            enabled: false,
            ..config
        };
        assert!(plan(&off, &finding(1, "LOW", "TagRole"), key, None).is_none());
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv("a\"b"), "\"a\"\"b\"");
        assert_eq!(csv("=HYPERLINK(1)"), "\"'=HYPERLINK(1)\"");
    }
}
