//! Messages about the pipeline rather than about one record: the alarm fired and nothing was
//! found, the alarm path stayed silent, and `iamwatchd check --send-test`'s test message.

use chrono::{DateTime, Utc};

use super::safe::{html_escape, part};
use super::sections::{html_body, human_duration, text_body, utc, Field, Section};
use crate::notify::Message;
use crate::source::{AccountProblem, EmptyAlarm};

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
            title: "What".to_owned(),
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
            title: "Where we looked".to_owned(),
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

/// Renders the "cannot read this account" message: which account, which role, what AWS said
/// and the fix. The name may come from Organizations, so it is made safe like a record's.
pub fn account_problem(problem: &AccountProblem) -> Message {
    let account = part(&problem.account);
    let named = match &problem.name {
        Some(name) => format!("{account} ({})", part(name)),
        None => account.clone(),
    };
    let subject = format!(
        "[iamwatchd] HIGH account {named} is not watched: {}",
        part(&problem.fix)
    );
    let sections = [Section {
        title: "Pipeline health".to_owned(),
        fields: vec![
            Field::new("Account", &named),
            Field::new("Role", &problem.role_arn),
            Field::new("Error", &problem.error),
            Field::new("Fix", &problem.fix),
            Field::new("Since", utc(problem.since)),
            Field::new(
                "Meaning",
                "changes in this account are not reported until the daemon can read its event                  history again; it keeps trying, and catches up from where it stopped (up to                  90 days) once it can. Every other account is watched as before.",
            ),
        ],
    }];
    synthetic(
        subject,
        "HIGH",
        "pipeline-health",
        "AccountNotWatched",
        account,
        &problem.event_id,
        &sections,
    )
}

/// The alarm path stayed silent about changes the poller reported.
#[derive(Debug, Clone)]
pub(crate) struct SilentAlarmPath<'a> {
    /// The synthetic dedup key of this incident.
    pub event_id: &'a str,
    /// Changes not confirmed in time.
    pub count: usize,
    /// A few of them: (event name, eventID, first seen).
    pub examples: &'a [(String, String, DateTime<Utc>)],
    /// How long the alarm path had to confirm each change.
    pub confirm_within: std::time::Duration,
}

/// Renders the "alarm path silent" pipeline-health message.
pub(crate) fn silent_alarm_path(silent: &SilentAlarmPath<'_>) -> Message {
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
        title: "Pipeline health".to_owned(),
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
        // The headline is already the plain sentence the text opens with.
        summary: headline.clone(),
        headline,
        sections: sections.to_vec(),
        link: None,
        time: Some(Utc::now()),
        target: None,
        principal: None,
        digest_of: 0,
        attachment: None,
        analysis: None,
    }
}

/// A message every reader recognises as a test, never as a change.
pub(crate) fn test_message(account: &str) -> Message {
    let now = chrono::Utc::now();
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "this machine".to_owned());
    let text = format!(
        "TEST MESSAGE — nothing changed.\n\n\
         This is a test message sent by `iamwatchd check --send-test` on {host} at {now} \
         for AWS account {account}.\n\
         If you received it, iamwatchd can reach you through this notifier.\n"
    );
    let html = format!(
        "<p><strong>TEST MESSAGE — nothing changed.</strong></p><p>{}</p>",
        html_escape(text.lines().nth(2).unwrap_or_default())
    );
    Message {
        subject: "[iamwatchd TEST] test message from iamwatchd check".to_owned(),
        text,
        html,
        event_id: format!("iamwatchd-check-test-{}", now.timestamp_millis()),
        severity: "INFO".to_owned(),
        category: "test".to_owned(),
        attempt: false,
        event_name: "iamwatchd-check-test".to_owned(),
        account: account.to_owned(),
        headline: "TEST MESSAGE — nothing changed".to_owned(),
        sections: vec![Section {
            title: "Test".to_owned(),
            fields: vec![
                Field::new("Sent by", format!("iamwatchd check --send-test on {host}")),
                Field::new("Account", account),
                Field::new("Meaning", "iamwatchd can reach you through this notifier"),
            ],
        }],
        link: None,
        time: Some(now),
        target: None,
        principal: None,
        digest_of: 0,
        attachment: None,
        summary: "TEST MESSAGE — nothing changed.".to_owned(),
        analysis: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::render::testing::assert_safe;
    use chrono::TimeZone;

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

    #[test]
    fn the_test_message_says_it_is_a_test() {
        let message = test_message("123456789012");
        assert!(message.subject.contains("TEST"));
        assert!(message.sns_subject().contains("TEST"));
        assert!(message.text.starts_with("TEST MESSAGE"));
        assert!(message.text.contains("123456789012"));
        assert!(message.html.contains("TEST MESSAGE"));
    }
}
