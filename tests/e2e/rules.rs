//! The generated metric-filter patterns and the Rust matcher agree on every record of the test
//! corpus, with the emulator's CloudWatch Logs filter-pattern evaluator as the independent judge
//! (the rule catalogue in `src/rules/catalogue.rs` is the one source of both).

use std::collections::BTreeSet;

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_cloudwatchlogs::Client as Logs;
use iamwatchd::event::Record;
use iamwatchd::rules;
use serde_json::Value;

use crate::emulator::Emulator;

const GROUP: &str = "/iamwatchd/rules-agreement";
const STREAM: &str = "corpus";
/// PutLogEvents limits: 10,000 events and 1,048,576 bytes per call, counting 26 bytes of
/// overhead per event.
const MAX_BATCH_EVENTS: usize = 10_000;
const MAX_BATCH_BYTES: usize = 1_048_576;
const EVENT_OVERHEAD: usize = 26;

fn corpus_lines() -> Vec<String> {
    crate::testdata::records_text()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// The record the daemon would see for this log line. Lines without an eventID (hand-edited
/// test records) get a placeholder, which no rule and no pattern looks at, so they are judged
/// too; lines that are not CloudTrail records at all match nothing on either side.
fn record_of(line: &str) -> Option<Record> {
    let mut value: Value = serde_json::from_str(line).ok()?;
    let object = value.as_object_mut()?;
    if !matches!(object.get("eventID"), Some(Value::String(id)) if !id.is_empty()) {
        object.insert("eventID".into(), Value::from("no-event-id"));
    }
    Record::from_json(value).ok()
}

async fn put_all(logs: &Logs, group: &str, lines: &[String]) {
    logs.create_log_group()
        .log_group_name(group)
        .send()
        .await
        .expect("CreateLogGroup");
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name(STREAM)
        .send()
        .await
        .expect("CreateLogStream");
    let now = chrono::Utc::now().timestamp_millis();
    let mut batch: Vec<InputLogEvent> = Vec::new();
    let mut batch_bytes = 0;
    for line in lines {
        let size = line.len() + EVENT_OVERHEAD;
        if batch.len() == MAX_BATCH_EVENTS || batch_bytes + size > MAX_BATCH_BYTES {
            send(logs, group, std::mem::take(&mut batch)).await;
            batch_bytes = 0;
        }
        batch.push(
            InputLogEvent::builder()
                .timestamp(now)
                .message(line)
                .build()
                .expect("log event"),
        );
        batch_bytes += size;
    }
    send(logs, group, batch).await;
}

async fn send(logs: &Logs, group: &str, batch: Vec<InputLogEvent>) {
    if batch.is_empty() {
        return;
    }
    let answer = logs
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(STREAM)
        .set_log_events(Some(batch))
        .send()
        .await
        .expect("PutLogEvents");
    assert!(
        answer.rejected_log_events_info().is_none(),
        "events rejected: {:?}",
        answer.rejected_log_events_info()
    );
}

/// Every message FilterLogEvents returns for `pattern`, all pages.
async fn filtered(logs: &Logs, group: &str, pattern: &str) -> BTreeSet<String> {
    let mut messages = BTreeSet::new();
    let mut token: Option<String> = None;
    loop {
        let page = logs
            .filter_log_events()
            .log_group_name(group)
            .filter_pattern(pattern)
            .set_next_token(token.take())
            .send()
            .await
            .unwrap_or_else(|e| panic!("FilterLogEvents with {pattern}: {e:?}"));
        for event in page.events() {
            messages.insert(event.message().expect("message").to_owned());
        }
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_owned()),
            _ => break,
        }
    }
    messages
}

/// Names the records on which the two judges differ, by eventID and event name.
fn describe(lines: &BTreeSet<&String>) -> Vec<String> {
    lines
        .iter()
        .map(|line| match record_of(line) {
            Some(r) => format!("{} {} {}", r.event_id, r.event_source, r.event_name),
            None => line.chars().take(120).collect(),
        })
        .collect()
}

fn assert_agree(name: &str, judged: &BTreeSet<String>, matcher: &BTreeSet<String>) {
    let only_pattern: BTreeSet<&String> = judged.difference(matcher).collect();
    let only_matcher: BTreeSet<&String> = matcher.difference(judged).collect();
    assert!(
        only_pattern.is_empty() && only_matcher.is_empty(),
        "{name}: the pattern alone matched {:?}; the Rust matcher alone matched {:?}",
        describe(&only_pattern),
        describe(&only_matcher)
    );
}

/// A group of the catalogue: the union of its filter patterns (a group needs several when its
/// calls do not fit one pattern's 1,024 characters) against its Rust matcher, on `lines` in
/// `log_group`. Returns how many lines the group matches.
async fn assert_group_agrees(
    logs: &Logs,
    log_group: &str,
    lines: &[String],
    group: &rules::Group,
) -> usize {
    let mut judged = BTreeSet::new();
    for pattern in rules::group_patterns(group.category) {
        judged.extend(filtered(logs, log_group, &pattern).await);
    }
    let matcher: BTreeSet<String> = lines
        .iter()
        .filter(|line| record_of(line).is_some_and(|record| group.matches(&record)))
        .cloned()
        .collect();
    assert_agree(group.category.as_str(), &judged, &matcher);
    matcher.len()
}

#[tokio::test]
async fn generated_patterns_and_the_rust_matcher_agree_on_every_corpus_record() {
    let lines = corpus_lines();
    // Records are compared by their whole text: eventIDs in the corpus repeat (hand-edited
    // "1", "12345") or are missing, but every line is unique.
    let unique: BTreeSet<&String> = lines.iter().collect();
    assert_eq!(unique.len(), lines.len(), "the corpus has duplicate lines");

    let emulator = Emulator::start();
    let logs = Logs::new(&emulator.sdk_config().await);
    put_all(&logs, GROUP, &lines).await;

    let everything = filtered(&logs, GROUP, "").await;
    assert_eq!(
        everything.len(),
        lines.len(),
        "not every record reached the log group"
    );

    let matched_by = |rule: fn(&Record) -> bool| -> BTreeSet<String> {
        lines
            .iter()
            .filter(|line| record_of(line).is_some_and(|record| rule(&record)))
            .cloned()
            .collect()
    };
    let iam = matched_by(rules::is_iam_mutation);
    let tampering = matched_by(rules::is_tampering);
    assert_eq!(iam.len(), 155, "IAM mutations in the corpus");
    assert!(!tampering.is_empty());

    let iam_judged = filtered(&logs, GROUP, &rules::iam_metric_filter_pattern()).await;
    assert_agree("IAM mutations", &iam_judged, &iam);
    for group in rules::GROUPS {
        assert_group_agrees(&logs, GROUP, &lines, group).await;
    }

    // The CIS 4.4 pattern is accepted as published, and everything it catches our complete
    // filter catches too.
    let cis = filtered(&logs, GROUP, rules::CIS_4_4_FILTER_PATTERN).await;
    assert!(!cis.is_empty());
    let missed: BTreeSet<&String> = cis.difference(&iam).collect();
    assert!(
        missed.is_empty(),
        "CIS 4.4 matched records our filter does not: {:?}",
        describe(&missed)
    );
}

/// Every rule of every group, with a record that passes it and one per test that fails only
/// that test: the corpus has no Identity Center record, say, and none that just misses a rule.
#[tokio::test]
async fn generated_patterns_and_the_rust_matcher_agree_on_every_rule_and_its_near_misses() {
    const EXAMPLES: &str = "/iamwatchd/rules-examples";
    let emulator = Emulator::start();
    let logs = Logs::new(&emulator.sdk_config().await);
    let mut lines = Vec::new();
    for group in rules::GROUPS {
        lines.extend(group.examples().iter().map(Value::to_string));
    }
    put_all(&logs, EXAMPLES, &lines).await;
    for group in rules::GROUPS {
        let matched = assert_group_agrees(&logs, EXAMPLES, &lines, group).await;
        let passing = group
            .examples()
            .iter()
            .filter(|e| e["eventID"].as_str().unwrap().ends_with("-pass"))
            .count();
        assert!(
            matched >= passing,
            "{}: every rule's passing record matches",
            group.category.as_str()
        );
    }
}
