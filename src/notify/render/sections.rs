//! The sections of an alert's message: who, what, where, when, why and the console link, and
//! the text and HTML bodies written from a list of sections.

use crate::analysis::policy;
use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::safe::{
    cut_bytes, html_escape, multi_line, part, single, LINK_MAX_BYTES, MAX_PARAMETERS,
    TEXT_MAX_BYTES, VALUE_MAX_BYTES,
};
use crate::aws::arn;
use crate::event::Record;
use crate::notify::Alert;
use crate::rules::Category;

/// RFC 3986 unreserved characters stay as they are; everything else is percent-encoded.
const URL_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One labelled value of a section; `multiline` values (policy documents) are shown as blocks.
/// Already made safe: one line without control characters, or a bounded block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// What the value is (`Principal`, `Policy document`): our own words.
    pub label: String,
    /// The value, from the record: safe for its kind, but untrusted in meaning.
    pub value: String,
    /// True for a block of several lines (a policy document).
    #[serde(default)]
    pub multiline: bool,
}

impl Field {
    pub(crate) fn new(label: impl Into<String>, value: impl AsRef<str>) -> Field {
        Field {
            label: label.into(),
            value: single(value.as_ref()),
            multiline: false,
        }
    }

    pub(crate) fn block(label: impl Into<String>, value: &str) -> Field {
        let value = cut_bytes(&multi_line(value), VALUE_MAX_BYTES);
        Field {
            label: label.into(),
            multiline: value.contains('\n'),
            value,
        }
    }
}

/// A titled list of fields; the text and the HTML body are both written from the same
/// sections, so they say the same, and the chat and paging notifiers lay out the same
/// sections in their own formats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// `Who`, `What`, …: our own words.
    pub title: String,
    /// The labelled values.
    pub fields: Vec<Field>,
}

pub(crate) fn account_of(record: &Record) -> String {
    record
        .account()
        .map(part)
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The record's account as messages show it: `111122223333 (prod-payments)`, or the ID alone.
pub(crate) fn account_shown(alert: &Alert) -> String {
    let id = account_of(&alert.record);
    match alert.account_name.as_deref().map(part) {
        Some(name) if !name.is_empty() && name != id => format!("{id} ({name})"),
        _ => id,
    }
}

fn yes_no_unknown(flag: Option<bool>) -> &'static str {
    match flag {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    }
}

pub(crate) fn who(record: &Record) -> Section {
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
        title: "Who".to_owned(),
        fields,
    }
}

/// A request parameter for display: policy documents (JSON in a string) pretty-printed.
pub(crate) fn parameter_field(event_name: &str, key: &str, value: &Value) -> Field {
    let label = match key {
        "assumeRolePolicyDocument" => format!("{key} (trust policy)"),
        "policyDocument" if event_name == "UpdateAssumeRolePolicy" => {
            format!("{key} (trust policy)")
        }
        "policyDocument" => format!("{key} (policy)"),
        _ => key.to_owned(),
    };
    match value {
        // CloudTrail writes policy documents as strings, plain or URL-encoded JSON.
        Value::String(text) => match policy::parse(value) {
            Some(document) => Field::block(
                label,
                &serde_json::to_string_pretty(&document).unwrap_or_else(|_| text.clone()),
            ),
            None => Field::block(label, text),
        },
        Value::Object(_) | Value::Array(_) => Field::block(
            label,
            &serde_json::to_string_pretty(value).unwrap_or_default(),
        ),
        other => Field::new(label, other.to_string()),
    }
}

pub(crate) fn what(alert: &Alert) -> Section {
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
            Category::IdentityCenter => "IAM Identity Center change",
            Category::Organizations => "Organizations change",
            Category::RootUse => "ROOT USER used",
            Category::ConsoleSignIn => "console sign-in without MFA",
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
        title: "What".to_owned(),
        fields,
    }
}

pub(crate) fn where_(alert: &Alert) -> Section {
    let record = &alert.record;
    let unknown = || "unknown".to_owned();
    Section {
        title: "Where".to_owned(),
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
            Field::new("Account", account_shown(alert)),
        ],
    }
}

/// `1h 02m 03s`, `4m 12s`, `12s`, `350 ms`.
pub(crate) fn human_duration(duration: chrono::TimeDelta) -> String {
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

pub(crate) fn utc(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub(crate) fn when(alert: &Alert) -> Section {
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
        title: "When".to_owned(),
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
pub(crate) fn console_link(record: &Record) -> Option<String> {
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
    let link = format!("https://{region}.{domain}/cloudtrailv2/home?region={region}#/events/{id}");
    (link.len() <= LINK_MAX_BYTES).then_some(link)
}

pub(crate) fn why_and_link(alert: &Alert, link: Option<&str>) -> Section {
    Section {
        title: "Why and where to look".to_owned(),
        fields: vec![
            Field::new("Severity", alert.classification.severity.to_string()),
            Field::new("Reason", &alert.classification.reason),
            Field::new("Event ID", &alert.record.event_id),
            Field::new(
                "CloudTrail console",
                link.unwrap_or(
                    "unavailable: the record has no valid region, or an event ID too long for a \
                     link",
                ),
            ),
        ],
    }
}

pub(crate) fn text_body(headline: &str, sections: &[Section]) -> String {
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

pub(crate) fn html_body(
    headline: &str,
    severity: &str,
    sections: &[Section],
    link: Option<&str>,
) -> String {
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
            html_escape(&section.title)
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_huge_event_id_makes_no_console_link_rather_than_one_of_megabytes() {
        let record = Record::from_json(serde_json::json!({
            "eventID": "x".repeat(1_048_577), "eventName": "CreateUser",
            "eventSource": "iam.amazonaws.com", "awsRegion": "us-east-1",
        }))
        .unwrap();
        assert_eq!(console_link(&record), None);
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
}
