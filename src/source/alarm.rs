//! The alarm path: the CloudWatch alarm's SNS message, heard through the stack's SQS queue,
//! reconciled against the trail's log group.
//!
//! The alarm's message says only "the metric crossed the threshold at StateChangeTime"; it
//! holds no eventID. So on every `ALARM` the daemon reads the alarm's window from the log group
//! with the same filter pattern the metric filter uses (both come from [`crate::rules`]) and
//! hands each record to the [`Intake`] as seen by [`SeenBy::Alarm`]: the store turns a record
//! the poller already reported into a confirmation (no message) and queues a message for one
//! it had not (the poller missed it or has not seen it yet; its later sighting is then a
//! duplicate). A window without any matching record is itself reported, once, under the
//! synthetic event ID `alarm:<AlarmArn>:<StateChangeTime>` ([`EmptyAlarm`]).
//!
//! Which pattern an alarm stands for is read from `Trigger.MetricName`, not from the alarm's
//! name: the metric names are fixed by our template ([`crate::template::metric`]) while alarm
//! names carry the stack name. The tampering metric selects the tampering pattern; every other
//! metric (the IAM and the CIS 4.4 one, a subset of it) the IAM pattern.
//!
//! An SQS message is deleted only after everything it caused is committed to the store and
//! its outbox, so a crash in between re-processes it, and eventID dedup makes that harmless. A
//! message that cannot be read is logged with its message ID and left in the queue, hidden for
//! [`UNREADABLE_VISIBILITY`] so it is not read again at once: the queue's redrive policy (or
//! the age-of-oldest-message alarm) makes it visible to a human.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use super::{Batch, EmptyAlarm, Intake, IntakeError};
use crate::event::{Record, SeenBy};
use crate::{rules, template};

/// The AWS actions this module calls (the daemon's policy, `deploy/iamwatchd-policy.json`,
/// must allow exactly the union of every module's list; `check`'s tests enforce it).
pub const ACTIONS: &[&str] = &[
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "logs:FilterLogEvents",
];

/// SQS long polling. A receive in flight is finished, not dropped, at shutdown: a dropped one
/// can still take a message server-side and hide it for the visibility timeout. So this also
/// bounds how long the alarm path delays a stop.
const WAIT_SECONDS: i32 = 10;
/// How long a received message stays hidden while it is processed; reading a window of the
/// log group takes seconds, so this leaves room for throttling and retries.
const PROCESSING_VISIBILITY_SECONDS: i32 = 120;
/// How long an unreadable message stays hidden before it is tried (and logged) again.
pub const UNREADABLE_VISIBILITY: Duration = Duration::from_secs(3600);
/// After a failed ReceiveMessage, wait this long before the next one.
const RECEIVE_RETRY: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum AlarmError {
    #[error(
        "the message is not a CloudWatch alarm notification ({0}); it stays in the queue: \
         check what else publishes to the alarm topic"
    )]
    Unreadable(String),
    #[error(
        "cannot read log group {log_group}: {problem}; check alarm.log_group and the \
         daemon's logs:FilterLogEvents permission"
    )]
    Logs { log_group: String, problem: String },
    #[error("cannot record the alarm's findings: {0}")]
    Intake(#[from] IntakeError),
}

/// The parts of a CloudWatch alarm notification the alarm path uses.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmNotice {
    pub alarm_name: String,
    pub alarm_arn: Option<String>,
    pub account: Option<String>,
    pub new_state: String,
    pub reason: String,
    pub state_change_time: DateTime<Utc>,
    pub metric_name: Option<String>,
    /// Seconds per period (at least 1).
    pub period: u64,
    pub evaluation_periods: u64,
}

/// Which filter pattern of the catalogue an alarm counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    IamChanges,
    Tampering,
}

impl Pattern {
    pub fn filter_pattern(self) -> String {
        match self {
            Pattern::IamChanges => rules::iam_metric_filter_pattern(),
            Pattern::Tampering => rules::tampering_metric_filter_pattern(),
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Pattern::IamChanges => "IAM changes",
            Pattern::Tampering => "tampering with the monitoring",
        }
    }
}

/// CloudWatch's `2015-06-03T17:43:27.123+0000`, or RFC 3339 for good measure.
fn parse_alarm_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| crate::event::parse_time(text))
        .or_else(|| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
}

/// A number that may arrive as a JSON number or a string.
fn number(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
        Value::String(s) => s.trim().parse::<f64>().ok().map(|f| f as u64),
        _ => None,
    }
}

fn text(value: &Value, key: &str) -> Option<String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Reads an SQS message body: an SNS envelope whose `Message` is the alarm JSON as a string
/// (the default), or the alarm JSON itself (raw message delivery). Unknown or odd fields
/// (a null description, a display-name region, any TreatMissingData) are ignored; only what
/// the window needs is required.
pub fn parse_notice(body: &str) -> Result<AlarmNotice, AlarmError> {
    let unreadable = |why: &str| AlarmError::Unreadable(why.to_owned());
    let outer: Value = serde_json::from_str(body).map_err(|e| unreadable(&e.to_string()))?;
    let alarm = match outer.get("Message") {
        Some(Value::String(inner)) if outer.get("AlarmName").is_none() => {
            serde_json::from_str(inner).map_err(|e| {
                AlarmError::Unreadable(format!("the SNS envelope's Message is not JSON: {e}"))
            })?
        }
        _ => outer,
    };
    let alarm_name = text(&alarm, "AlarmName").ok_or_else(|| unreadable("no AlarmName"))?;
    let new_state = text(&alarm, "NewStateValue").ok_or_else(|| unreadable("no NewStateValue"))?;
    let time = text(&alarm, "StateChangeTime").ok_or_else(|| unreadable("no StateChangeTime"))?;
    let state_change_time = parse_alarm_time(&time)
        .ok_or_else(|| AlarmError::Unreadable(format!("unreadable StateChangeTime {time:?}")))?;
    let trigger = alarm.get("Trigger").unwrap_or(&Value::Null);
    Ok(AlarmNotice {
        alarm_name,
        alarm_arn: text(&alarm, "AlarmArn"),
        account: text(&alarm, "AWSAccountId"),
        new_state,
        reason: text(&alarm, "NewStateReason").unwrap_or_default(),
        state_change_time,
        metric_name: text(trigger, "MetricName"),
        // A missing period is read as the template's default, so the window is still wide
        // enough for the usual alarm.
        period: number(trigger.get("Period"))
            .filter(|p| *p > 0)
            .unwrap_or(u64::from(template::DEFAULT_ALARM_PERIOD_SECONDS)),
        evaluation_periods: number(trigger.get("EvaluationPeriods"))
            .filter(|n| *n > 0)
            .unwrap_or(1),
    })
}

impl AlarmNotice {
    /// The records that can have set the alarm off: the evaluated periods before the state
    /// change, widened by `margin` on both sides for CloudTrail's delivery delay.
    pub fn window(&self, margin: Duration) -> (DateTime<Utc>, DateTime<Utc>) {
        let evaluated = self.period.saturating_mul(self.evaluation_periods);
        let evaluated = TimeDelta::seconds(i64::try_from(evaluated).unwrap_or(i64::MAX / 2_000));
        let margin = TimeDelta::from_std(margin).unwrap_or_default();
        (
            self.state_change_time - evaluated - margin,
            self.state_change_time + margin,
        )
    }

    pub fn pattern(&self) -> Pattern {
        match self.metric_name.as_deref() {
            Some(template::metric::TAMPERING) => Pattern::Tampering,
            _ => Pattern::IamChanges,
        }
    }

    /// The dedup key of this firing's "nothing found" message: a re-delivered or
    /// re-processed notification yields the same key.
    pub fn synthetic_event_id(&self) -> String {
        format!(
            "alarm:{}:{}",
            self.alarm_arn.as_deref().unwrap_or(&self.alarm_name),
            self.state_change_time.format("%Y-%m-%dT%H:%M:%S%.3f+0000")
        )
    }
}

/// What one ALARM notification amounted to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    /// Records found in the window that the catalogue matches.
    pub records: usize,
    /// Reported now: the poller had not seen them.
    pub new: usize,
    /// Already reported by the poller; now confirmed.
    pub confirmed: usize,
    /// Already handled by an earlier alarm (a re-delivered notification).
    pub duplicate: usize,
    /// Whether the "nothing found" message was queued.
    pub nothing_found: bool,
}

/// The SQS consumer.
pub struct AlarmPath<I> {
    /// The client of the queue's region.
    pub sqs: aws_sdk_sqs::Client,
    /// The client of the log group's region.
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// The queue the stack subscribes to the alarm topic.
    pub queue_url: String,
    /// The trail's log group.
    pub log_group: String,
    /// The log group's region (for messages).
    pub region: String,
    /// Added on both sides of the alarm's window.
    pub margin: Duration,
    /// Where the records found go.
    pub intake: Arc<I>,
}

impl<I: Intake> AlarmPath<I> {
    /// Long-polls the queue until `stop` fires; the receive in flight and the messages it
    /// brought are finished first (at most the 10 s long poll plus their processing).
    pub async fn run(self, stop: CancellationToken) {
        tracing::info!(queue = %self.queue_url, log_group = %self.log_group, "alarm path listening");
        while !stop.is_cancelled() {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(WAIT_SECONDS)
                .visibility_timeout(PROCESSING_VISIBILITY_SECONDS)
                .send()
                .await;
            let messages = match received {
                Ok(output) => output.messages.unwrap_or_default(),
                Err(error) => {
                    tracing::error!(queue = %self.queue_url,
                        error = %aws_sdk_sqs::error::DisplayErrorContext(&error),
                        "cannot read the alarm queue; retrying in {RECEIVE_RETRY:?}");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(RECEIVE_RETRY) => continue,
                    }
                }
            };
            for message in messages {
                self.handle(&message).await;
            }
        }
    }

    async fn handle(&self, message: &aws_sdk_sqs::types::Message) {
        let id = message.message_id().unwrap_or("unknown");
        let Some(receipt) = message.receipt_handle() else {
            tracing::error!(message_id = id, "alarm message without a receipt handle");
            return;
        };
        let notice = match parse_notice(message.body().unwrap_or_default()) {
            Ok(notice) => notice,
            Err(error) => {
                tracing::error!(message_id = id, "{error}");
                let hide = self
                    .sqs
                    .change_message_visibility()
                    .queue_url(&self.queue_url)
                    .receipt_handle(receipt)
                    .visibility_timeout(UNREADABLE_VISIBILITY.as_secs() as i32)
                    .send()
                    .await;
                if let Err(error) = hide {
                    tracing::warn!(message_id = id,
                        error = %aws_sdk_sqs::error::DisplayErrorContext(&error),
                        "cannot hide the unreadable message; it is read again soon");
                }
                return;
            }
        };
        if notice.new_state == "ALARM" {
            match self.reconcile(&notice).await {
                Ok(result) => {
                    if result.new > 0 {
                        // An alarm firing the poller never explained: counted by the health
                        // job from the store (events first seen by the alarm path).
                        tracing::warn!(alarm = %notice.alarm_name, new = result.new,
                            "the alarm found changes the poller had not reported; reported now");
                    }
                    tracing::info!(message_id = id, alarm = %notice.alarm_name,
                        records = result.records, new = result.new,
                        confirmed = result.confirmed, duplicate = result.duplicate,
                        nothing_found = result.nothing_found, "alarm reconciled");
                }
                Err(error) => {
                    // Not deleted: the message is read again after its visibility timeout.
                    tracing::error!(message_id = id, alarm = %notice.alarm_name, "{error}");
                    return;
                }
            }
        } else {
            tracing::info!(message_id = id, alarm = %notice.alarm_name, state = %notice.new_state,
                "alarm state change without anything to reconcile");
        }
        let deleted = self
            .sqs
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .send()
            .await;
        if let Err(error) = deleted {
            // Harmless: re-processing finds everything already recorded.
            tracing::warn!(message_id = id,
                error = %aws_sdk_sqs::error::DisplayErrorContext(&error),
                "cannot delete the processed alarm message; it will be processed again");
        }
    }

    /// Reads the alarm's window and records what it finds; see the module doc.
    pub async fn reconcile(&self, notice: &AlarmNotice) -> Result<Reconciled, AlarmError> {
        let window = notice.window(self.margin);
        let pattern = notice.pattern();
        let records = self.records_in(pattern, window).await?;
        let mut result = Reconciled {
            records: records.len(),
            ..Reconciled::default()
        };
        if records.is_empty() {
            let alarm = EmptyAlarm {
                event_id: notice.synthetic_event_id(),
                alarm_name: notice.alarm_name.clone(),
                reason: notice.reason.clone(),
                account: notice.account.clone(),
                state_change_time: notice.state_change_time,
                window,
                log_group: self.log_group.clone(),
                region: self.region.clone(),
                pattern: pattern.describe(),
            };
            result.nothing_found = self.intake.empty_alarm(alarm).await?;
            return Ok(result);
        }
        let accepted = self
            .intake
            .accept(Batch {
                records,
                seen_by: SeenBy::Alarm,
                pass: None,
                cursor: None,
            })
            .await?;
        result.new = accepted.new;
        result.confirmed = accepted.confirmed;
        result.duplicate = accepted.duplicate;
        Ok(result)
    }

    /// Every record of the log group in `window` that `pattern` matches, all pages.
    async fn records_in(
        &self,
        pattern: Pattern,
        window: (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<Vec<Record>, AlarmError> {
        let mut pages = self
            .logs
            .filter_log_events()
            .log_group_name(&self.log_group)
            .filter_pattern(pattern.filter_pattern())
            .start_time(window.0.timestamp_millis())
            .end_time(window.1.timestamp_millis())
            .into_paginator()
            .send();
        let mut records = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| AlarmError::Logs {
                log_group: self.log_group.clone(),
                problem: aws_sdk_cloudwatchlogs::error::DisplayErrorContext(&error).to_string(),
            })?;
            for event in page.events() {
                match Record::parse(event.message().unwrap_or_default()) {
                    Ok(record) => records.push(record),
                    Err(error) => tracing::warn!(log_group = %self.log_group,
                        event_id = event.event_id().unwrap_or_default(),
                        "skipping an unreadable record in the log group: {error}"),
                }
            }
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The alarm JSON as CloudWatch publishes it (the shape documented by AWS), with the odd
    /// values seen in the wild.
    fn alarm_json() -> Value {
        serde_json::json!({
            "AlarmName": "iamwatchd-iam-changes",
            "AlarmDescription": null,
            "AWSAccountId": "123456789012",
            "NewStateValue": "ALARM",
            "NewStateReason": "Threshold Crossed: 1 datapoint [1.0 (03/06/15 17:33:00)] was greater than or equal to the threshold (1.0).",
            "StateChangeTime": "2015-06-03T17:43:27.123+0000",
            "Region": "US East (N. Virginia)",
            "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:iamwatchd-iam-changes",
            "OldStateValue": "OK",
            "Trigger": {
                "MetricName": "IAMChanges",
                "Namespace": "iamwatchd/iamwatchd",
                "Statistic": "SUM",
                "Period": 300,
                "EvaluationPeriods": "2",
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "Threshold": 1.0,
                "TreatMissingData": "- TreatMissingData:                    NotBreaching",
            }
        })
    }

    #[test]
    fn reads_the_alarm_inside_an_sns_envelope() {
        let envelope = serde_json::json!({
            "Type": "Notification",
            "MessageId": "m-1",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:iamwatchd",
            "Subject": "ALARM: \"iamwatchd-iam-changes\" in US East (N. Virginia)",
            "Message": alarm_json().to_string(),
        });
        let notice = parse_notice(&envelope.to_string()).unwrap();
        assert_eq!(notice.alarm_name, "iamwatchd-iam-changes");
        assert_eq!(notice.new_state, "ALARM");
        assert_eq!(
            notice.state_change_time,
            Utc.with_ymd_and_hms(2015, 6, 3, 17, 43, 27).unwrap() + TimeDelta::milliseconds(123)
        );
        assert_eq!(notice.period, 300);
        assert_eq!(notice.evaluation_periods, 2, "a string number is read");
        assert_eq!(notice.pattern(), Pattern::IamChanges);
    }

    #[test]
    fn reads_raw_delivery_too() {
        let notice = parse_notice(&alarm_json().to_string()).unwrap();
        assert_eq!(notice.account.as_deref(), Some("123456789012"));
        assert_eq!(
            notice.synthetic_event_id(),
            "alarm:arn:aws:cloudwatch:us-east-1:123456789012:alarm:iamwatchd-iam-changes:\
             2015-06-03T17:43:27.123+0000"
        );
    }

    #[test]
    fn the_window_covers_the_evaluated_periods_and_the_margin() {
        let notice = parse_notice(&alarm_json().to_string()).unwrap();
        let (start, end) = notice.window(Duration::from_secs(60));
        assert_eq!(
            notice.state_change_time - start,
            TimeDelta::seconds(2 * 300 + 60)
        );
        assert_eq!(end - notice.state_change_time, TimeDelta::seconds(60));
    }

    #[test]
    fn the_tampering_metric_selects_the_tampering_pattern() {
        let mut alarm = alarm_json();
        alarm["Trigger"]["MetricName"] = template::metric::TAMPERING.into();
        let notice = parse_notice(&alarm.to_string()).unwrap();
        assert_eq!(notice.pattern(), Pattern::Tampering);
        assert_eq!(
            notice.pattern().filter_pattern(),
            rules::tampering_metric_filter_pattern()
        );
    }

    #[test]
    fn missing_trigger_values_fall_back_to_the_template_defaults() {
        let mut alarm = alarm_json();
        alarm["Trigger"] = Value::Null;
        alarm["StateChangeTime"] = "2015-06-03T17:43:27Z".into();
        let notice = parse_notice(&alarm.to_string()).unwrap();
        assert_eq!(notice.period, 300);
        assert_eq!(notice.evaluation_periods, 1);
        assert_eq!(notice.pattern(), Pattern::IamChanges);
    }

    #[test]
    fn unreadable_messages_say_what_is_wrong() {
        for body in [
            "not json",
            r#"{"Type": "Notification", "Message": "not json either"}"#,
            r#"{"Type": "Notification", "Message": "{\"AlarmName\": \"x\"}"}"#,
            r#"{"AlarmName": "x", "NewStateValue": "ALARM", "StateChangeTime": "yesterday"}"#,
        ] {
            let error = parse_notice(body).unwrap_err();
            assert!(
                matches!(error, AlarmError::Unreadable(_)),
                "{body}: {error}"
            );
            assert!(error.to_string().contains("stays in the queue"));
        }
    }
}
