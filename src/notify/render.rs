//! The one rendering of an alert, shared by every notifier: subject, text body, HTML body.
//!
//! Everything taken from a CloudTrail record is untrusted: a role name, a user agent or a
//! policy document is chosen by whoever made the call, which may be the attacker the message
//! is about. So, whatever the record holds:
//! - the subject and the metadata are one line: control characters (CR/LF included), Unicode
//!   line separators and bidirectional overrides become spaces, so no header can be injected
//!   and no text can pretend to be something else;
//! - every value in the HTML part is escaped, and the only link is built from a region that
//!   looks like a region and a percent-encoded event ID;
//! - long values are cut with a visible marker (`… (truncated, N bytes)`, N the full
//!   length), so a 100 KB field cannot bury the message or exceed SNS's 256 KB limit.
//!
//! The text and the HTML are generated from the same list of sections, so they say the same.

use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

use super::{Alert, Message};
use crate::aws::arn;
use crate::event::Record;
use crate::rules::Category;
use crate::source::EmptyAlarm;

/// Longest part (event name, target, principal, …) of a subject line, in characters.
pub const SUBJECT_PART_MAX_CHARS: usize = 200;
/// Longest single value in a body, in bytes.
pub const VALUE_MAX_BYTES: usize = 4096;
/// Request parameters shown at most; a record with more says how many were left out.
pub const MAX_PARAMETERS: usize = 32;
/// Longest text body: SNS accepts 256 KB per message, including the attributes.
pub const TEXT_MAX_BYTES: usize = 200 * 1024;
/// SNS wants a subject "less than 100 characters long", ASCII, without control characters.
pub const SNS_SUBJECT_MAX_CHARS: usize = 99;

/// RFC 3986 unreserved characters stay as they are; everything else is percent-encoded.
const URL_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Characters that must never reach a one-line field: controls (CR, LF, tab, NUL, …), the
/// Unicode line/paragraph separators, zero-width and bidirectional formatting characters.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{2028}' | '\u{2029}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// `value` on one line: every unsafe character becomes a space.
pub fn one_line(value: &str) -> String {
    value
        .chars()
        .map(|c| if is_unsafe(c) { ' ' } else { c })
        .collect()
}

/// `value` with its line breaks kept (as `\n`) and every other unsafe character a space.
fn multi_line(value: &str) -> String {
    value
        .replace("\r\n", "\n")
        .chars()
        .map(|c| if c != '\n' && is_unsafe(c) { ' ' } else { c })
        .collect()
}

fn truncation_marker(full_bytes: usize) -> String {
    format!("… (truncated, {full_bytes} bytes)")
}

/// `value` cut to at most `max` bytes (at a character boundary) plus the marker.
pub fn cut_bytes(value: &str, max: usize) -> String {
    if value.len() <= max {
        return value.to_owned();
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{}", &value[..end], truncation_marker(value.len()))
}

/// `value` cut to at most `max` characters plus the marker.
pub fn cut_chars(value: &str, max: usize) -> String {
    match value.char_indices().nth(max) {
        None => value.to_owned(),
        Some((end, _)) => format!("{}{}", &value[..end], truncation_marker(value.len())),
    }
}

/// Escapes the five characters that matter in HTML text and attribute values.
pub fn html_escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A subject part: one line, bounded.
fn part(value: &str) -> String {
    cut_chars(&one_line(value), SUBJECT_PART_MAX_CHARS)
}

/// A one-line body value, bounded.
fn single(value: &str) -> String {
    cut_bytes(&one_line(value), VALUE_MAX_BYTES)
}

/// `subject` within SNS's rules: ASCII only (arrows and ellipses spelled out, anything else
/// non-ASCII a `?`), no control characters, at most `max` characters.
pub fn ascii_subject(subject: &str, max: usize) -> String {
    let mut ascii = String::with_capacity(subject.len());
    for c in subject.chars() {
        match c {
            '→' => ascii.push_str("->"),
            '…' => ascii.push_str("..."),
            c if c.is_ascii() && !c.is_ascii_control() => ascii.push(c),
            c if c.is_ascii() || is_unsafe(c) => ascii.push(' '),
            _ => ascii.push('?'),
        }
    }
    if ascii.chars().count() > max {
        ascii.truncate(max.saturating_sub(3));
        ascii.push_str("...");
    }
    if ascii.trim().is_empty() {
        ascii = "[iamwatchd] alert".to_owned();
    }
    ascii
}

/// One labelled value of a section; `multiline` values (policy documents) are shown as blocks.
struct Field {
    label: String,
    value: String,
    multiline: bool,
}

impl Field {
    fn new(label: impl Into<String>, value: impl AsRef<str>) -> Field {
        Field {
            label: label.into(),
            value: single(value.as_ref()),
            multiline: false,
        }
    }

    fn block(label: impl Into<String>, value: &str) -> Field {
        let value = cut_bytes(&multi_line(value), VALUE_MAX_BYTES);
        Field {
            label: label.into(),
            multiline: value.contains('\n'),
            value,
        }
    }
}

struct Section {
    title: &'static str,
    fields: Vec<Field>,
}

fn string_at<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key)?.as_str().filter(|s| !s.is_empty())
}

/// What the subject says was acted on: `AdministratorAccess → bob`, `bob`, `trail/main`.
fn object_phrase(record: &Record) -> Option<String> {
    let params = &record.request_parameters;
    let policy = string_at(params, "policyArn").map(arn::last_segment);
    let entity = ["userName", "roleName", "groupName", "instanceProfileName"]
        .iter()
        .find_map(|key| string_at(params, key));
    match (policy, entity) {
        (Some(policy), Some(entity)) => Some(format!("{} → {}", part(policy), part(entity))),
        (Some(policy), None) => Some(part(policy)),
        (None, Some(entity)) => Some(part(entity)),
        (None, None) => record.target().map(|t| part(&t)),
    }
}

fn account_of(record: &Record) -> String {
    record
        .account()
        .map(part)
        .unwrap_or_else(|| "unknown".to_owned())
}

fn category_name(category: Category) -> &'static str {
    match category {
        Category::IamChange => "iam-change",
        Category::Tampering => "tampering",
    }
}

/// The subject line: severity, event, object, actor, account; attempts and tampering marked
/// first so they stand out in a list of mails.
fn subject(alert: &Alert) -> String {
    let record = &alert.record;
    let mut subject = String::from("[iamwatchd] ");
    if alert.classification.attempt {
        let code = record.error_code.as_deref().unwrap_or("failed");
        subject.push_str(&format!("attempt ({}) ", part(code)));
    }
    subject.push_str(&alert.classification.severity.to_string());
    if alert.classification.category == Category::Tampering {
        subject.push_str(" TAMPERING");
    }
    subject.push(' ');
    subject.push_str(&part(&record.event_name));
    if let Some(object) = object_phrase(record) {
        subject.push(' ');
        subject.push_str(&object);
    }
    subject.push_str(" by ");
    subject.push_str(&part(&record.identity.display_name()));
    subject.push_str(&format!(" ({})", account_of(record)));
    subject
}

fn yes_no_unknown(flag: Option<bool>) -> &'static str {
    match flag {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    }
}

fn who(record: &Record) -> Section {
    let identity = &record.identity;
    let mut fields = vec![
        Field::new(
            "Principal",
            identity.principal().unwrap_or_else(|| "unknown".to_owned()),
        ),
        Field::new("Name", identity.display_name()),
        Field::new("Type", identity.kind.as_deref().unwrap_or("unknown")),
    ];
    if identity.kind.as_deref() == Some("AssumedRole") {
        if let Some(arn) = &identity.arn {
            fields.push(Field::new("Session ARN", arn));
        }
        let role = identity
            .issuer_arn
            .clone()
            .or_else(|| identity.arn.as_deref().and_then(arn::role_of_session));
        fields.push(Field::new(
            "Role behind the session",
            role.as_deref().unwrap_or("unknown"),
        ));
        if let Some(session) = &identity.session_name {
            fields.push(Field::new("Session name", session));
        }
    } else if let Some(issuer) = &identity.issuer_arn {
        fields.push(Field::new("Issued by", issuer));
    }
    if let Some(key) = &identity.access_key_id {
        fields.push(Field::new("Access key", key));
    }
    fields.push(Field::new(
        "MFA",
        yes_no_unknown(identity.mfa_authenticated),
    ));
    let via = if record.from_console {
        "AWS Management Console".to_owned()
    } else if let Some(service) = &identity.invoked_by {
        format!("AWS service {service}, on the principal's behalf")
    } else if record.user_agent.is_some() {
        "CLI, SDK or API (see the user agent)".to_owned()
    } else {
        "unknown".to_owned()
    };
    fields.push(Field::new("Via", via));
    Section {
        title: "Who",
        fields,
    }
}

/// A request parameter for display: policy documents (JSON in a string) pretty-printed.
fn parameter_field(event_name: &str, key: &str, value: &Value) -> Field {
    let label = match key {
        "assumeRolePolicyDocument" => format!("{key} (trust policy)"),
        "policyDocument" if event_name == "UpdateAssumeRolePolicy" => {
            format!("{key} (trust policy)")
        }
        "policyDocument" => format!("{key} (policy)"),
        _ => key.to_owned(),
    };
    match value {
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(document @ (Value::Object(_) | Value::Array(_))) => Field::block(
                label,
                &serde_json::to_string_pretty(&document).unwrap_or_else(|_| text.clone()),
            ),
            _ => Field::block(label, text),
        },
        Value::Object(_) | Value::Array(_) => Field::block(
            label,
            &serde_json::to_string_pretty(value).unwrap_or_default(),
        ),
        other => Field::new(label, other.to_string()),
    }
}

fn what(alert: &Alert) -> Section {
    let record = &alert.record;
    let mut fields = vec![Field::new(
        "Event",
        format!("{} ({})", record.event_name, record.event_source),
    )];
    fields.push(Field::new(
        "Category",
        match alert.classification.category {
            Category::IamChange => "IAM change",
            Category::Tampering => "TAMPERING with the monitoring",
        },
    ));
    let result = match &record.error_code {
        None => "succeeded".to_owned(),
        Some(code) => match &record.error_message {
            Some(message) => format!("FAILED ({code}): {message}"),
            None => format!("FAILED ({code})"),
        },
    };
    fields.push(Field::new("Result", result));
    if let Some(target) = record.target() {
        fields.push(Field::new("Target", target));
    }
    if let Value::Object(params) = &record.request_parameters {
        let shown = params.iter().filter(|(_, v)| !v.is_null());
        for (key, value) in shown.clone().take(MAX_PARAMETERS) {
            fields.push(parameter_field(&record.event_name, key, value));
        }
        let left_out = shown.count().saturating_sub(MAX_PARAMETERS);
        if left_out > 0 {
            fields.push(Field::new(
                "More parameters",
                format!("{left_out} not shown (see the event in CloudTrail)"),
            ));
        }
    }
    if !record.response_elements.is_null() {
        fields.push(Field::block(
            "Response",
            &serde_json::to_string_pretty(&record.response_elements).unwrap_or_default(),
        ));
    }
    Section {
        title: "What",
        fields,
    }
}

fn where_(record: &Record) -> Section {
    let unknown = || "unknown".to_owned();
    Section {
        title: "Where",
        fields: vec![
            Field::new(
                "Source IP",
                record.source_ip.clone().unwrap_or_else(unknown),
            ),
            Field::new(
                "User agent",
                record.user_agent.clone().unwrap_or_else(unknown),
            ),
            Field::new("Region", record.aws_region.clone().unwrap_or_else(unknown)),
            Field::new("Account", account_of(record)),
        ],
    }
}

/// `1h 02m 03s`, `4m 12s`, `12s`, `350 ms`.
pub fn human_duration(duration: chrono::TimeDelta) -> String {
    let millis = duration.num_milliseconds();
    if millis < 0 {
        return format!("-{}", human_duration(-duration));
    }
    if millis < 1000 {
        return format!("{millis} ms");
    }
    let seconds = millis / 1000;
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if hours > 0 {
        format!("{hours}h {minutes:02}m {seconds:02}s")
    } else if minutes > 0 {
        format!("{minutes}m {seconds:02}s")
    } else {
        format!("{seconds}s")
    }
}

fn utc(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn when(alert: &Alert) -> Section {
    let event_time = alert.record.event_time;
    let delay = match event_time {
        None => "unknown (the record's time is unreadable)".to_owned(),
        Some(time) if time > alert.detected_at => format!(
            "the event time is {} in the future: check this host's clock",
            human_duration(time - alert.detected_at)
        ),
        Some(time) => human_duration(alert.detected_at - time),
    };
    Section {
        title: "When",
        fields: vec![
            Field::new(
                "Event time",
                event_time.map(utc).unwrap_or_else(|| "unknown".to_owned()),
            ),
            Field::new(
                "Detected",
                format!("{} by {}", utc(alert.detected_at), alert.seen_by.describe()),
            ),
            Field::new("Detection delay", delay),
        ],
    }
}

/// The CloudTrail console page of the event, when the region is a plausible region name (a
/// crafted region must not turn the link into one to another host).
pub fn console_link(record: &Record) -> Option<String> {
    let region = record.aws_region.as_deref()?;
    let plausible = !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !plausible {
        return None;
    }
    let domain = if region.starts_with("cn-") {
        "console.amazonaws.cn"
    } else if region.starts_with("us-gov-") {
        "console.amazonaws-us-gov.com"
    } else {
        "console.aws.amazon.com"
    };
    let id = utf8_percent_encode(&record.event_id, URL_COMPONENT);
    Some(format!(
        "https://{region}.{domain}/cloudtrailv2/home?region={region}#/events/{id}"
    ))
}

fn why_and_link(alert: &Alert, link: Option<&str>) -> Section {
    Section {
        title: "Why and where to look",
        fields: vec![
            Field::new("Severity", alert.classification.severity.to_string()),
            Field::new("Reason", &alert.classification.reason),
            Field::new("Event ID", &alert.record.event_id),
            Field::new(
                "CloudTrail console",
                link.unwrap_or("unavailable: the record has no valid region"),
            ),
        ],
    }
}

fn text_body(headline: &str, sections: &[Section]) -> String {
    let mut text = format!("{headline}\n");
    for section in sections {
        text.push_str(&format!("\n{}\n", section.title.to_uppercase()));
        for field in &section.fields {
            if field.multiline {
                text.push_str(&format!("  {}:\n", field.label));
                for line in field.value.lines() {
                    text.push_str(&format!("      {line}\n"));
                }
            } else {
                text.push_str(&format!("  {}: {}\n", field.label, field.value));
            }
        }
    }
    text.push_str("\n-- \niamwatchd: one message per IAM change, deduplicated by eventID.\n");
    cut_bytes(&text, TEXT_MAX_BYTES)
}

fn colour(severity: &str) -> &'static str {
    match severity {
        "CRITICAL" => "#b00020",
        "HIGH" => "#d35400",
        "MEDIUM" => "#b7950b",
        _ => "#2e4053",
    }
}

fn html_body(headline: &str, severity: &str, sections: &[Section], link: Option<&str>) -> String {
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body style=\"font-family: sans-serif\">\n\
         <h2 style=\"color: {colour}\">{title}</h2>\n",
        title = html_escape(headline),
        colour = colour(severity),
    );
    if let Some(link) = link {
        html.push_str(&format!(
            "<p><a href=\"{}\">Open the event in the CloudTrail console</a></p>\n",
            html_escape(link)
        ));
    }
    for section in sections {
        html.push_str(&format!(
            "<h3>{}</h3>\n<table cellpadding=\"3\">\n",
            html_escape(section.title)
        ));
        for field in &section.fields {
            let value = if field.multiline {
                format!("<pre>{}</pre>", html_escape(&field.value))
            } else {
                html_escape(&field.value)
            };
            html.push_str(&format!(
                "<tr><th align=\"left\" valign=\"top\">{}</th><td>{value}</td></tr>\n",
                html_escape(&field.label)
            ));
        }
        html.push_str("</table>\n");
    }
    html.push_str("</body></html>\n");
    html
}

/// Renders an alert into the message every notifier sends.
pub fn render(alert: &Alert) -> Message {
    let record = &alert.record;
    let subject = subject(alert);
    let severity = alert.classification.severity.to_string();
    let link = console_link(record);
    let sections = [
        who(record),
        what(alert),
        where_(record),
        when(alert),
        why_and_link(alert, link.as_deref()),
    ];
    let headline = subject.trim_start_matches("[iamwatchd] ").to_owned();
    Message {
        text: text_body(&headline, &sections),
        html: html_body(&headline, &severity, &sections, link.as_deref()),
        subject,
        event_id: part(&record.event_id),
        severity,
        category: category_name(alert.classification.category).to_owned(),
        attempt: alert.classification.attempt,
        event_name: part(&record.event_name),
        account: account_of(record),
    }
}

/// Renders the "alarm fired, nothing found" message. Every string in it comes from the alarm's
/// SNS message, which anyone allowed to publish to the topic can craft, so it is made safe like
/// a record's.
pub fn empty_alarm(alarm: &EmptyAlarm) -> Message {
    let account = alarm
        .account
        .as_deref()
        .map(part)
        .unwrap_or_else(|| "unknown".to_owned());
    let subject = format!(
        "[iamwatchd] HIGH alarm {} fired, no matching record found ({account})",
        part(&alarm.alarm_name)
    );
    let sections = [
        Section {
            title: "What",
            fields: vec![
                Field::new("Alarm", &alarm.alarm_name),
                Field::new("Reason", &alarm.reason),
                Field::new("State changed", utc(alarm.state_change_time)),
                Field::new(
                    "Meaning",
                    "the metric filter counted a change, but no record in the log group \
                     matches the catalogue's pattern in the window: the records may arrive \
                     later, the filter may have been changed, or the log group tampered with. \
                     Look at the trail's records for this window yourself.",
                ),
            ],
        },
        Section {
            title: "Where we looked",
            fields: vec![
                Field::new("Log group", &alarm.log_group),
                Field::new("Region", &alarm.region),
                Field::new("Pattern", alarm.pattern),
                Field::new(
                    "Window",
                    format!("{} to {}", utc(alarm.window.0), utc(alarm.window.1)),
                ),
                Field::new("Event ID", &alarm.event_id),
            ],
        },
    ];
    synthetic(
        subject,
        "HIGH",
        "alarm-path",
        "AlarmFired",
        account,
        &alarm.event_id,
        &sections,
    )
}

/// The alarm path stayed silent about changes the poller reported.
#[derive(Debug, Clone)]
pub struct SilentAlarmPath<'a> {
    /// The synthetic dedup key of this incident.
    pub event_id: &'a str,
    /// Changes not confirmed in time.
    pub count: usize,
    /// A few of them: (event name, eventID, first seen).
    pub examples: &'a [(String, String, DateTime<Utc>)],
    pub confirm_within: std::time::Duration,
}

/// Renders the "alarm path silent" pipeline-health message.
pub fn silent_alarm_path(silent: &SilentAlarmPath<'_>) -> Message {
    let subject = format!(
        "[iamwatchd] HIGH alarm path silent: {} change{} not confirmed",
        silent.count,
        if silent.count == 1 { "" } else { "s" }
    );
    let within = chrono::TimeDelta::from_std(silent.confirm_within).unwrap_or_default();
    let mut fields = vec![
        Field::new(
            "Finding",
            format!(
                "{} change{} reported by the poller {} not confirmed by the CloudWatch alarm \
                 within {}",
                silent.count,
                if silent.count == 1 { "" } else { "s" },
                if silent.count == 1 { "was" } else { "were" },
                human_duration(within)
            ),
        ),
        Field::new(
            "Meaning",
            "the trail, its log group, the metric filter, the alarm, the topic or the queue may \
             be broken or tampered with; an alarm that stays in ALARM also sends nothing new",
        ),
    ];
    for (name, id, seen) in silent.examples {
        fields.push(Field::new(
            "e.g.",
            format!("{name} ({id}), reported {}", utc(*seen)),
        ));
    }
    let sections = [Section {
        title: "Pipeline health",
        fields,
    }];
    synthetic(
        subject,
        "HIGH",
        "pipeline-health",
        "AlarmPathSilent",
        "unknown".to_owned(),
        silent.event_id,
        &sections,
    )
}

/// A message about the pipeline rather than about one record.
fn synthetic(
    subject: String,
    severity: &str,
    category: &str,
    event_name: &str,
    account: String,
    event_id: &str,
    sections: &[Section],
) -> Message {
    let headline = subject.trim_start_matches("[iamwatchd] ").to_owned();
    Message {
        text: text_body(&headline, sections),
        html: html_body(&headline, severity, sections, None),
        subject,
        event_id: part(event_id),
        severity: severity.to_owned(),
        category: category.to_owned(),
        attempt: false,
        event_name: event_name.to_owned(),
        account,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::SeenBy;
    use crate::rules::{Classification, Severity};
    use chrono::TimeZone;

    /// The first record of the test corpus with this eventID and eventName.
    pub(crate) fn corpus_record(event_id: &str, event_name: &str) -> Record {
        crate::testdata::records_text()
            .lines()
            .filter_map(|line| Record::parse(line).ok())
            .find(|r| r.event_id == event_id && r.event_name == event_name)
            .unwrap_or_else(|| panic!("no {event_name} {event_id} in the corpus"))
    }

    fn alert(record: Record, severity: Severity, category: Category) -> Alert {
        let detected_at = record
            .event_time
            .map(|t| t + chrono::TimeDelta::seconds(252))
            .unwrap_or_else(Utc::now);
        Alert {
            classification: Classification {
                category,
                severity,
                attempt: record.failed(),
                reason: "test reason".to_owned(),
            },
            record,
            detected_at,
            seen_by: SeenBy::Poller,
        }
    }

    fn assert_safe(message: &Message) {
        for one_line in [
            &message.subject,
            &message.event_id,
            &message.event_name,
            &message.account,
            &message.severity,
        ] {
            assert!(!one_line.chars().any(is_unsafe), "unsafe: {one_line:?}");
        }
        let sns = message.sns_subject();
        assert!(sns.chars().count() <= SNS_SUBJECT_MAX_CHARS, "{sns}");
        assert!(
            sns.chars().all(|c| c.is_ascii() && !c.is_ascii_control()),
            "{sns}"
        );
        assert!(message.text.len() <= TEXT_MAX_BYTES + 64);
    }

    #[test]
    fn create_user_says_who_what_where_when() {
        let record = corpus_record("66d008e1-12cf-4a45-99e7-0be67fc70d71", "CreateUser");
        let message = alert(record, Severity::Medium, Category::IamChange).render();
        assert_eq!(
            message.subject,
            "[iamwatchd] MEDIUM CreateUser stratus-red-team-nmfalu-gfjyeaypjt by bert-jan \
             (123837392027)"
        );
        for expected in [
            "Principal: arn:aws:iam::123837392027:user/bert-jan",
            "Type: IAMUser",
            "MFA: unknown",
            "Via: CLI, SDK or API",
            "Source IP: 192.168.10.20",
            "User agent: APN/1.0 HashiCorp/1.0 Terraform/1.1.2",
            "Region: us-east-1",
            "Account: 123837392027",
            "Event time: 2023-07-10 12:23:05 UTC",
            "Detected: 2023-07-10 12:27:17 UTC by the LookupEvents poller",
            "Detection delay: 4m 12s",
            "Target: user/stratus-red-team-nmfalu-gfjyeaypjt",
            "Reason: test reason",
            "https://us-east-1.console.aws.amazon.com/cloudtrailv2/home?region=us-east-1\
             #/events/66d008e1-12cf-4a45-99e7-0be67fc70d71",
        ] {
            assert!(
                message.text.contains(expected),
                "{expected}\n{}",
                message.text
            );
        }
        assert!(message
            .html
            .contains("<th align=\"left\" valign=\"top\">Principal</th>"));
        assert_eq!(message.event_id, "66d008e1-12cf-4a45-99e7-0be67fc70d71");
        assert_eq!(message.account, "123837392027");
        assert_eq!(message.category, "iam-change");
        assert_safe(&message);
    }

    #[test]
    fn attaching_administrator_access_names_policy_and_user_in_the_subject() {
        let record = corpus_record("f4923a37-92d5-4dfd-9786-6caef2b5f33c", "AttachUserPolicy");
        let message = alert(record, Severity::Critical, Category::IamChange).render();
        assert_eq!(
            message.subject,
            "[iamwatchd] CRITICAL AttachUserPolicy AdministratorAccess → malicious-iam-user by \
             bert-jan (123837392027)"
        );
        assert_eq!(
            message.sns_subject(),
            "[iamwatchd] CRITICAL AttachUserPolicy AdministratorAccess -> malicious-iam-user by \
             bert-jan (123..."
        );
        assert!(message
            .text
            .contains("policyArn: arn:aws:iam::aws:policy/AdministratorAccess"));
        assert!(message.html.contains("color: #b00020"));
        assert_eq!(message.severity, "CRITICAL");
        assert_safe(&message);
    }

    #[test]
    fn an_access_key_for_another_user_shows_the_new_key_id() {
        let record = corpus_record("8c282c0b-00d1-4369-95b7-cb50b6eee620", "CreateAccessKey");
        let message = alert(record, Severity::Critical, Category::IamChange).render();
        assert!(message
            .subject
            .starts_with("[iamwatchd] CRITICAL CreateAccessKey malicious-iam-user by bert-jan"));
        assert!(message.text.contains("Target: user/malicious-iam-user"));
        assert!(message
            .text
            .contains("\"accessKeyId\": \"AKIATFQR7NSCQLA2F4OD\""));
        assert_safe(&message);
    }

    #[test]
    fn a_denied_call_is_an_attempt_with_its_error() {
        let record = crate::testdata::records_text()
            .lines()
            .filter_map(|line| Record::parse(line).ok())
            .find(|r| {
                r.event_name == "CreateServiceLinkedRole"
                    && r.error_code.as_deref() == Some("AccessDenied")
            })
            .expect("an AccessDenied CreateServiceLinkedRole in the corpus");
        let message = alert(record, Severity::Low, Category::IamChange).render();
        assert!(
            message.subject.starts_with(
                "[iamwatchd] attempt (AccessDenied) LOW CreateServiceLinkedRole by tester"
            ),
            "{}",
            message.subject
        );
        assert!(message.attempt);
        assert!(message.text.contains(
            "Result: FAILED (AccessDenied): User: arn:aws:iam::123456789012:user/tester is not \
             authorized"
        ));
        assert_safe(&message);
    }

    #[test]
    fn an_assumed_role_console_session_shows_the_role_and_mfa() {
        let record = corpus_record("1", "AttachUserPolicy");
        assert_eq!(record.identity.kind.as_deref(), Some("AssumedRole"));
        let message = alert(record, Severity::Critical, Category::IamChange).render();
        for expected in [
            "Principal: arn:aws:iam::123456789012:role/tester",
            "Role behind the session: arn:aws:iam::123456789012:role/tester",
            "MFA: yes",
            "Via: AWS Management Console",
            "Region: us-west-2",
        ] {
            assert!(
                message.text.contains(expected),
                "{expected}\n{}",
                message.text
            );
        }
        assert_safe(&message);
    }

    #[test]
    fn inline_and_trust_policies_are_pretty_printed() {
        let put = corpus_record("7ee6ba6e-1943-417a-a6a3-3a2b0292cdac", "PutUserPolicy");
        let message = alert(put, Severity::High, Category::IamChange).render();
        assert!(message.text.contains("policyDocument (policy):\n      {\n"));
        assert!(message.html.contains("<pre>{\n"));

        let trust = corpus_record(
            "d96d75c7-e715-44ff-9735-9dc51afbd774",
            "UpdateAssumeRolePolicy",
        );
        let message = alert(trust, Severity::Critical, Category::IamChange).render();
        assert!(message.text.contains("policyDocument (trust policy):\n"));
        assert!(message.text.contains("\"Statement\""));
    }

    #[test]
    fn tampering_is_marked_in_the_subject() {
        let record = Record::parse(
            r#"{"eventID": "t-1", "eventName": "StopLogging",
                "eventSource": "cloudtrail.amazonaws.com", "awsRegion": "eu-west-1",
                "recipientAccountId": "111122223333",
                "userIdentity": {"type": "IAMUser", "userName": "mallory"},
                "requestParameters": {"name": "arn:aws:cloudtrail:eu-west-1:111122223333:trail/main"}}"#,
        )
        .unwrap();
        let message = alert(record, Severity::Critical, Category::Tampering).render();
        assert_eq!(
            message.subject,
            "[iamwatchd] CRITICAL TAMPERING StopLogging \
             arn:aws:cloudtrail:eu-west-1:111122223333:trail/main by mallory (111122223333)"
        );
        assert!(message
            .text
            .contains("Category: TAMPERING with the monitoring"));
        assert_eq!(message.category, "tampering");
        assert!(message.text.contains("Event time: unknown"));
        assert!(message.text.contains("Detection delay: unknown"));
    }

    /// A record an attacker controls: header injection in a role name, script in the user
    /// agent, a link-hijacking region, a 100 KB policy and a 100 KB user name.
    fn hostile_record() -> Record {
        let huge = "A".repeat(100 * 1024);
        let value = serde_json::json!({
            "eventID": "evil\r\nBcc: victim@example.com",
            "eventName": "PutRolePolicy\r\nX-Injected: 1",
            "eventSource": "iam.amazonaws.com",
            "eventTime": "2024-01-01T00:00:00Z",
            "awsRegion": "evil.example/#",
            "userAgent": "<script>alert('x')</script>",
            "sourceIPAddress": "\u{202E}1.2.3.4",
            "recipientAccountId": "1234\n5678",
            "userIdentity": {"type": "IAMUser", "userName": huge},
            "requestParameters": {
                "roleName": "ci\r\nBcc: victim@example.com",
                "policyName": "<img src=x onerror=alert(1)>",
                "policyDocument": format!("{{\"Version\": \"2012-10-17\", \"x\": \"{huge}\"}}"),
            },
        });
        Record::from_json(value).unwrap()
    }

    #[test]
    fn hostile_strings_cannot_inject_headers_markup_or_bulk() {
        let message = alert(hostile_record(), Severity::High, Category::IamChange).render();
        assert_safe(&message);
        assert!(!message.subject.contains('\r') && !message.subject.contains('\n'));
        assert!(message.subject.contains("ci  Bcc: victim@example.com"));
        assert!(
            message.subject.chars().count() < 4 * (SUBJECT_PART_MAX_CHARS + 40),
            "{}",
            message.subject.len()
        );
        assert!(message.subject.contains("… (truncated, 102400 bytes)"));
        assert!(!message.html.contains("<script>"));
        assert!(message
            .html
            .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(!message.html.contains("<img"));
        assert!(message.text.contains("(truncated, "));
        assert!(message.html.contains("(truncated, "));
        assert!(message.text.len() < 40 * 1024, "{}", message.text.len());
        assert!(!message.html.contains("evil.example/#/"));
        assert!(message
            .text
            .contains("CloudTrail console: unavailable: the record has no valid region"));
        assert!(!message.html.contains("<a href"));
        assert!(!message.text.contains('\u{202E}'));
        assert_eq!(message.account, "1234 5678");
    }

    #[test]
    fn the_console_link_percent_encodes_the_event_id() {
        let record = Record::parse(
            r#"{"eventID": "a b/#?&", "eventName": "CreateUser",
                "eventSource": "iam.amazonaws.com", "awsRegion": "cn-north-1"}"#,
        )
        .unwrap();
        assert_eq!(
            console_link(&record).as_deref(),
            Some(
                "https://cn-north-1.console.amazonaws.cn/cloudtrailv2/home?region=cn-north-1\
                 #/events/a%20b%2F%23%3F%26"
            )
        );
    }

    #[test]
    fn cutting_respects_character_boundaries_and_says_how_much_there_was() {
        let accents = "é".repeat(3000);
        let cut = cut_bytes(&accents, 4095);
        assert!(cut.starts_with(&"é".repeat(2047)));
        assert!(cut.ends_with("… (truncated, 6000 bytes)"));
        assert_eq!(cut_bytes("short", 10), "short");
        assert_eq!(cut_chars("ééé", 2), "éé… (truncated, 6 bytes)");
        assert_eq!(cut_chars("ééé", 3), "ééé");
    }

    #[test]
    fn sns_subjects_are_ascii_and_short() {
        assert_eq!(ascii_subject("a → b…\u{7}ü", 99), "a -> b... ?");
        let long = "x".repeat(300);
        let cut = ascii_subject(&long, SNS_SUBJECT_MAX_CHARS);
        assert_eq!(cut.len(), SNS_SUBJECT_MAX_CHARS);
        assert!(cut.ends_with("..."));
        assert_eq!(ascii_subject("\r\n", 99), "[iamwatchd] alert");
    }

    #[test]
    fn durations_read_like_a_human_wrote_them() {
        use chrono::TimeDelta;
        assert_eq!(human_duration(TimeDelta::milliseconds(350)), "350 ms");
        assert_eq!(human_duration(TimeDelta::seconds(12)), "12s");
        assert_eq!(human_duration(TimeDelta::seconds(252)), "4m 12s");
        assert_eq!(human_duration(TimeDelta::seconds(3723)), "1h 02m 03s");
        assert_eq!(human_duration(TimeDelta::seconds(-5)), "-5s");
    }

    #[test]
    fn a_message_survives_the_outbox_round_trip() {
        let record = corpus_record("f4923a37-92d5-4dfd-9786-6caef2b5f33c", "AttachUserPolicy");
        let message = alert(record, Severity::Critical, Category::IamChange).render();
        let stored = serde_json::to_string(&message).unwrap();
        assert_eq!(serde_json::from_str::<Message>(&stored).unwrap(), message);
    }

    #[test]
    fn an_empty_alarm_names_alarm_reason_window_and_log_group_safely() {
        let start = Utc.with_ymd_and_hms(2026, 1, 2, 3, 0, 0).unwrap();
        let end = Utc.with_ymd_and_hms(2026, 1, 2, 3, 20, 0).unwrap();
        let message = empty_alarm(&EmptyAlarm {
            event_id: "alarm:arn:aws:cloudwatch:us-east-1:1:alarm:x:2026-01-02T03:15:00.000+0000"
                .to_owned(),
            alarm_name: "iamwatchd-iam-changes\r\nBcc: victim@example.com".to_owned(),
            reason: "Threshold Crossed: <b>1</b>".to_owned(),
            account: Some("123456789012".to_owned()),
            state_change_time: end,
            window: (start, end),
            log_group: "iamwatchd-LogGroup".to_owned(),
            region: "us-east-1".to_owned(),
            pattern: "IAM changes",
        });
        assert_safe(&message);
        assert!(message.subject.contains("no matching record found"));
        assert!(message
            .text
            .contains("2026-01-02 03:00:00 UTC to 2026-01-02 03:20:00 UTC"));
        assert!(message.text.contains("iamwatchd-LogGroup"));
        assert!(message.text.contains("Threshold Crossed"));
        assert!(!message.html.contains("<b>1</b>"), "escaped");
        assert_eq!(message.category, "alarm-path");
    }

    #[test]
    fn a_silent_alarm_path_counts_and_gives_examples() {
        let seen = Utc.with_ymd_and_hms(2026, 1, 2, 3, 0, 0).unwrap();
        let examples = [("CreateUser".to_owned(), "e-1".to_owned(), seen)];
        let message = silent_alarm_path(&SilentAlarmPath {
            event_id: "health:alarm-silent:e-1",
            count: 3,
            examples: &examples,
            confirm_within: std::time::Duration::from_secs(1800),
        });
        assert_safe(&message);
        assert!(
            message.subject.contains("3 changes not confirmed"),
            "{}",
            message.subject
        );
        assert!(message.text.contains("CreateUser (e-1)"));
        assert!(message.text.contains("30m"));
    }
}
