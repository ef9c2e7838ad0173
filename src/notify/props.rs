//! Property tests of every notifier's payload: whatever strings a message holds (rendered
//! from a hostile record, or any strings at all, as a row read back from the outbox may), the
//! mail, the Slack Block Kit message, the Teams Adaptive Card, the PagerDuty event, the
//! webhook body and the SNS publish stay valid and within their platform's limits, and line
//! breaks, NULs, bidirectional overrides, mentions, links and markup in them stay inert.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use serde_json::Value;

use super::chat::{slack, teams};
use super::render::testing::assert_safe;
use super::smtp::SmtpNotifier;
use super::{pagerduty, webhook, Alert, Field, Message, Section};
use crate::event::SeenBy;
use crate::hostile::{config, hostile_short, hostile_string, record};
use crate::rules::{Category, Classification, Severity};

/// An alert for any record the parser accepts, with any verdict.
fn alert() -> BoxedStrategy<Alert> {
    let severity = proptest::sample::select(vec![
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ]);
    let category = proptest::sample::select(vec![
        Category::IamChange,
        Category::Tampering,
        Category::RootUse,
        Category::ConsoleSignIn,
        Category::IdentityCenter,
        Category::Organizations,
    ]);
    let seen_by = proptest::sample::select(vec![SeenBy::Poller, SeenBy::Alarm, SeenBy::Scan]);
    (
        record(),
        severity,
        category,
        any::<bool>(),
        hostile_string(),
        seen_by,
        proptest::option::of(hostile_short()),
    )
        .prop_map(
            |(record, severity, category, attempt, reason, seen_by, account_name)| Alert {
                classification: Classification {
                    category,
                    severity,
                    attempt,
                    reason,
                },
                detected_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
                record,
                seen_by,
                analysis: None,
                // An Organizations account name is chosen by whoever administers it.
                account_name,
            },
        )
        .boxed()
}

/// A message with any strings in every field (a row of the outbox may hold anything).
fn any_message() -> BoxedStrategy<Message> {
    let field =
        (hostile_short(), hostile_string(), any::<bool>()).prop_map(|(label, value, multiline)| {
            Field {
                label,
                value,
                multiline,
            }
        });
    let section = (hostile_short(), prop::collection::vec(field, 0..14))
        .prop_map(|(title, fields)| Section { title, fields });
    (
        (
            hostile_string(),
            hostile_string(),
            hostile_string(),
            hostile_short(),
        ),
        (
            hostile_short(),
            hostile_short(),
            hostile_short(),
            hostile_short(),
        ),
        (
            hostile_string(),
            prop::collection::vec(section, 0..6),
            prop::option::of(hostile_string()),
        ),
        (any::<bool>(), prop::option::of(any::<i32>())),
    )
        .prop_map(
            |(
                (subject, text, html, event_id),
                (severity, category, event_name, account),
                (headline, sections, link),
                (attempt, seconds),
            )| Message {
                subject,
                text,
                html,
                event_id,
                severity,
                category,
                attempt,
                event_name,
                account,
                headline,
                sections,
                link,
                time: seconds.and_then(|s| Utc.timestamp_opt(i64::from(s), 0).single()),
                ..Message::for_test("", "", "")
            },
        )
        .boxed()
}

/// Rendered from a hostile record, or any strings at all.
fn message() -> impl Strategy<Value = Message> {
    prop_oneof![3 => alert().prop_map(|a| a.render()), 2 => any_message()]
}

/// `value` serialised and read back: what the platform's JSON parser would see.
fn reparsed(value: &Value) -> Result<Value, TestCaseError> {
    let bytes = serde_json::to_vec(value).expect("a JSON value serialises");
    let back: Value = serde_json::from_slice(&bytes).expect("our JSON parses");
    prop_assert_eq!(&back, value);
    Ok(back)
}

fn chars(value: &Value) -> usize {
    value.as_str().map_or(0, |s| s.chars().count())
}

/// Whether `text` is inert as Slack `mrkdwn`: no `<` or `>` (mentions, links) and every `&`
/// one of the three escapes Slack documents.
fn inert_mrkdwn(text: &str) -> bool {
    !text.contains(['<', '>'])
        && text.match_indices('&').all(|(at, _)| {
            ["&amp;", "&lt;", "&gt;"]
                .iter()
                .any(|e| text[at..].starts_with(e))
        })
}

/// Whether every Markdown special of an Adaptive Card's text is escaped with a backslash.
fn inert_markdown(text: &str) -> bool {
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if "*_[]#<>`~!|".contains(c) {
            return false;
        }
    }
    true
}

fn check_slack(message: &Message) -> Result<(), TestCaseError> {
    let payload = reparsed(&slack::payload(message))?;
    let fallback = payload["text"].as_str().expect("fallback text");
    prop_assert!(inert_mrkdwn(fallback), "fallback {fallback:?}");
    let blocks = payload["blocks"].as_array().expect("blocks");
    prop_assert!(
        !blocks.is_empty() && blocks.len() <= 50,
        "{} blocks",
        blocks.len()
    );
    prop_assert_eq!(&blocks[0]["type"], "header");
    prop_assert!(chars(&blocks[0]["text"]["text"]) <= 150);
    let mut total = 0;
    for block in blocks {
        if block["type"] == "section" {
            prop_assert!(chars(&block["text"]["text"]) <= 3_000);
            let fields = block["fields"].as_array().map_or(&[][..], Vec::as_slice);
            prop_assert!(fields.len() <= 10);
            for field in fields {
                prop_assert!(chars(&field["text"]) <= 2_000);
            }
        }
        if let Some(url) = block["elements"][0]["url"].as_str() {
            prop_assert!(url.len() <= 3_000);
        }
        for text in super::chat::testing::texts(block) {
            let content = text["text"].as_str().expect("text");
            total += content.chars().count();
            prop_assert!(!content.is_empty(), "an empty text object in {block}");
            match text["type"].as_str() {
                Some("plain_text") => prop_assert_eq!(&text["emoji"], false),
                Some("mrkdwn") => {
                    // Only our section titles are mrkdwn (bold); anything else from the
                    // message is plain text, where `*`, `_`, `~` and backticks are inert too.
                    prop_assert!(inert_mrkdwn(content), "mrkdwn {content:?}");
                    let title = message
                        .sections
                        .iter()
                        .any(|s| *content == format!("*{}*", slack::mrkdwn_escape(&s.title)));
                    prop_assert!(title, "mrkdwn that is not a section title: {content:?}");
                }
                other => prop_assert!(false, "text type {other:?}"),
            }
        }
    }
    prop_assert!(total <= 12_000, "{total} characters of block text");
    Ok(())
}

fn check_teams(message: &Message) -> Result<(), TestCaseError> {
    let payload = reparsed(&teams::payload(message))?;
    let bytes = serde_json::to_vec(&payload).unwrap().len();
    prop_assert!(bytes <= teams::MAX_BYTES, "{bytes} bytes");
    let card = &payload["attachments"][0]["content"];
    prop_assert_eq!(&card["type"], "AdaptiveCard");
    for item in card["body"].as_array().expect("a body") {
        let texts: Vec<&str> = match item["type"].as_str() {
            Some("TextBlock") => vec![item["text"].as_str().unwrap()],
            Some("FactSet") => item["facts"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|f| [f["title"].as_str().unwrap(), f["value"].as_str().unwrap()])
                .collect(),
            other => return Err(TestCaseError::fail(format!("element {other:?}"))),
        };
        for text in texts {
            prop_assert!(inert_markdown(text), "markdown {text:?}");
        }
    }
    Ok(())
}

fn check_pagerduty(message: &Message) -> Result<(), TestCaseError> {
    let event = reparsed(&pagerduty::payload("R0UT1NGKEY", message))?;
    let bytes = serde_json::to_vec(&event).unwrap().len();
    prop_assert!(bytes <= 512 * 1024, "{bytes} bytes");
    prop_assert_eq!(&event["routing_key"], "R0UT1NGKEY");
    prop_assert_eq!(&event["event_action"], "trigger");
    let dedup = event["dedup_key"].as_str().unwrap();
    prop_assert!(dedup.len() <= 255);
    prop_assert!(chars(&event["payload"]["summary"]) <= 1_024);
    let severity = event["payload"]["severity"].as_str().unwrap();
    prop_assert!(["critical", "error", "warning", "info"].contains(&severity));
    Ok(())
}

fn check_webhook(message: &Message) -> Result<(), TestCaseError> {
    let body = reparsed(&webhook::payload(message))?;
    prop_assert_eq!(&body["data"]["event_id"], &message.event_id);
    prop_assert_eq!(&body["data"]["text"], &message.text);
    Ok(())
}

/// The mail as it goes on the wire: a header block of CRLF-terminated lines, each a known
/// header or a folded continuation, printable ASCII only, then the MIME body.
fn check_mail(message: &Message) -> Result<(), TestCaseError> {
    let notifier = SmtpNotifier::with_transport(
        "mail",
        "iamwatchd <iamwatchd@example.com>".parse().unwrap(),
        vec!["security@example.com".parse().unwrap()],
        (),
    );
    let raw = notifier.email(message).expect("a mail").formatted();
    let raw = String::from_utf8(raw).expect("the mail is UTF-8");
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .expect("headers end with an empty line");
    const KNOWN: &[&str] = &[
        "From",
        "To",
        "Subject",
        "Message-ID",
        "X-Iamwatchd-Severity",
        "X-Iamwatchd-Event-Id",
        "MIME-Version",
        "Date",
        "Content-Type",
        "Content-Transfer-Encoding",
    ];
    let mut names = Vec::new();
    for line in head.split("\r\n") {
        prop_assert!(
            !line.contains(['\r', '\n']),
            "a bare line break in {line:?}"
        );
        prop_assert!(
            line.bytes()
                .all(|b| b == b'\t' || (b' '..=b'~').contains(&b)),
            "{line:?}"
        );
        prop_assert!(line.len() <= 998, "a header line of {} bytes", line.len());
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let name = line.split_once(':').map(|(n, _)| n).unwrap_or(line);
        prop_assert!(KNOWN.contains(&name), "header {name:?} in\n{head}");
        names.push(name);
    }
    for once in [
        "From",
        "To",
        "Subject",
        "Message-ID",
        "X-Iamwatchd-Event-Id",
    ] {
        prop_assert_eq!(names.iter().filter(|n| **n == once).count(), 1, "{}", once);
    }
    let boundary = head
        .split("boundary=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a multipart boundary");
    prop_assert!(
        body.contains(&format!("--{boundary}--")),
        "the MIME body is closed"
    );
    Ok(())
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn every_rendered_message_is_safe_whatever_the_record(alert in alert()) {
        let message = alert.render();
        assert_safe(&message);
        prop_assert!(!message.text.is_empty() && !message.html.is_empty());
        prop_assert!(!message.sns_subject().trim().is_empty());
    }

}

proptest! {
    #![proptest_config(config(2000))]

    /// One message, every payload: the generation is most of a case's cost.
    #[test]
    fn every_notifier_payload_stays_valid_within_its_limits_and_inert(message in message()) {
        check_slack(&message)?;
        check_teams(&message)?;
        check_pagerduty(&message)?;
        check_webhook(&message)?;
        check_mail(&message)?;
    }
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn sns_publishes_stay_within_sns_limits(alert in alert()) {
        let message = alert.render();
        let subject = message.sns_subject();
        prop_assert!(!subject.is_empty() && subject.len() <= 99);
        prop_assert!(subject.bytes().all(|b| (b' '..=b'~').contains(&b)), "{subject:?}");
        let attributes = [&message.severity, &message.event_name, &message.account, &message.category];
        let size = message.text.len() + attributes.iter().map(|a| a.len() + 16).sum::<usize>();
        prop_assert!(!message.text.is_empty() && size <= 256 * 1024, "{size} bytes");
    }
}
