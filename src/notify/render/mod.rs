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
//!
//! The rules for untrusted text are all in `safe.rs`; the sections of an alert and the two
//! bodies written from them in `sections.rs`; the messages about the pipeline itself (an alarm
//! with no record, a silent alarm path, `check`'s test message) in `pipeline.rs`.

mod pipeline;
mod safe;
mod sections;
mod summary;

use serde_json::Value;

use super::{Alert, Message};
use crate::aws::arn;
use crate::event::Record;
use crate::rules::Category;
use safe::part;
#[cfg(test)]
pub(crate) use sections::parameter_field;
use sections::{account_of, account_shown, console_link, what, when, where_, who, why_and_link};
pub(crate) use sections::{html_body, text_body};

pub use pipeline::{account_problem, empty_alarm};
pub use sections::{Field, Section};

pub(crate) use pipeline::{silent_alarm_path, test_message, SilentAlarmPath};
pub(crate) use safe::{ascii_subject, escaped, one_line, LINK_MAX_BYTES, SNS_SUBJECT_MAX_CHARS};

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
    match alert.classification.category {
        Category::Tampering => subject.push_str(" TAMPERING"),
        Category::RootUse => subject.push_str(" ROOT"),
        _ => {}
    }
    if let Some(verdict) = alert.analysis.as_ref().and_then(|a| a.strongest()) {
        subject.push(' ');
        subject.push_str(verdict.kind.as_str());
        subject.push(':');
    }
    subject.push(' ');
    subject.push_str(&part(&record.event_name));
    if let Some(object) = object_phrase(record) {
        subject.push(' ');
        subject.push_str(&object);
    }
    subject.push_str(" by ");
    subject.push_str(&part(&record.identity.display_name()));
    subject.push_str(&format!(" ({})", account_shown(alert)));
    subject
}

/// Renders an alert into the message every notifier sends.
pub fn render(alert: &Alert) -> Message {
    let record = &alert.record;
    let subject = subject(alert);
    let severity = alert.classification.severity.to_string();
    let link = console_link(record);
    let summary = summary::sentence(alert);
    let analysis = alert.analysis.as_ref().map(summary::safe_analysis);
    let mut sections = vec![Section {
        title: "In short".to_owned(),
        fields: vec![Field::new("Summary", &summary)],
    }];
    sections.extend(analysis.as_ref().map(summary::analysis_section));
    sections.extend([
        who(record),
        what(alert),
        where_(alert),
        when(alert),
        why_and_link(alert, link.as_deref()),
    ]);
    let headline = subject.trim_start_matches("[iamwatchd] ").to_owned();
    Message {
        text: safe::cut_bytes(
            &format!("{summary}\n\n{}", text_body(&headline, &sections)),
            safe::TEXT_MAX_BYTES,
        ),
        html: html_body(&headline, &severity, &sections, link.as_deref()),
        subject,
        event_id: part(&record.event_id),
        severity,
        category: alert.classification.category.as_str().to_owned(),
        attempt: alert.classification.attempt,
        event_name: part(&record.event_name),
        account: account_of(record),
        headline,
        sections,
        link,
        time: Some(record.event_time.unwrap_or(alert.detected_at)),
        target: record.target().map(|t| part(&t)),
        principal: record.identity.principal().map(|p| part(&p)),
        digest_of: 0,
        attachment: None,
        summary,
        analysis,
    }
}

/// Test helpers the tests of several files share.
#[cfg(test)]
pub(crate) mod testing {
    use super::safe::{is_unsafe, SNS_SUBJECT_MAX_CHARS, TEXT_MAX_BYTES};
    use crate::notify::Message;

    /// What every rendered message guarantees, whatever it was rendered from: one-line
    /// metadata without unsafe characters, an SNS subject within SNS's rules, a bounded text.
    pub(crate) fn assert_safe(message: &Message) {
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
}

#[cfg(test)]
mod tests {
    use super::safe::SUBJECT_PART_MAX_CHARS;
    use super::testing::assert_safe;
    use super::*;
    use crate::event::SeenBy;
    use crate::rules::{Classification, Severity};
    use chrono::Utc;

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
            analysis: None,
            account_name: None,
            record,
            detected_at,
            seen_by: SeenBy::Poller,
        }
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

    /// The same parser as the rules' (`analysis::policy`): a URL-encoded document, as
    /// CloudTrail often records inline policies, is shown decoded, not as `%7B%22…`.
    #[test]
    fn a_url_encoded_policy_is_shown_decoded() {
        let record = Record::parse(
            r#"{"eventID": "p-1", "eventName": "PutRolePolicy",
                "eventSource": "iam.amazonaws.com", "awsRegion": "us-east-1",
                "requestParameters": {"roleName": "app", "policyName": "p",
                    "policyDocument": "%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22s3%3AGetObject%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D"}}"#,
        )
        .unwrap();
        let message = alert(record, Severity::High, Category::IamChange).render();
        assert!(
            message.text.contains("\"Action\": \"s3:GetObject\""),
            "{}",
            message.text
        );
        assert!(!message.text.contains("%7B"), "{}", message.text);
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
    fn a_message_survives_the_outbox_round_trip() {
        let record = corpus_record("f4923a37-92d5-4dfd-9786-6caef2b5f33c", "AttachUserPolicy");
        let message = alert(record, Severity::Critical, Category::IamChange).render();
        let stored = serde_json::to_string(&message).unwrap();
        assert_eq!(serde_json::from_str::<Message>(&stored).unwrap(), message);
    }
}
