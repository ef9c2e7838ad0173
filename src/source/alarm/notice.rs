//! The CloudWatch alarm's message, as it arrives through SNS and SQS: read tolerantly, with the
//! window of records that can have set the alarm off and the filter pattern it counts.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde_json::Value;

use super::AlarmError;
use crate::rules::{self, Category};
use crate::stack::names;

/// The parts of a CloudWatch alarm notification the alarm path uses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AlarmNotice {
    /// `AlarmName`.
    pub alarm_name: String,
    /// `AlarmArn`; `None` when absent or empty.
    pub alarm_arn: Option<String>,
    /// `AWSAccountId`, the alarm's account; `None` when absent or empty.
    pub account: Option<String>,
    /// `NewStateValue`: `ALARM`, `OK` or `INSUFFICIENT_DATA`; only `ALARM` is reconciled.
    pub new_state: String,
    /// `NewStateReason`, CloudWatch's explanation; empty when absent.
    pub reason: String,
    /// `StateChangeTime`: when the alarm entered the new state.
    pub state_change_time: DateTime<Utc>,
    /// `Trigger.MetricName`, which decides the [`Pattern`]; `None` when absent or empty.
    pub metric_name: Option<String>,
    /// Seconds per period (at least 1).
    pub period: u64,
    /// `Trigger.EvaluationPeriods`: how many periods the alarm evaluates; 1 when absent or 0.
    pub evaluation_periods: u64,
}

/// The longest span a CloudWatch alarm evaluates: `Period` × `EvaluationPeriods` is at most
/// seven days (PutMetricAlarm's documentation). A message that claims more did not come from
/// an alarm as CloudWatch has it; its window is cut to this.
pub(crate) const MAX_EVALUATED_SECONDS: u64 = 7 * 24 * 3600;

/// Which filter patterns of the catalogue an alarm counts: those of one category's metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pattern(pub(crate) Category);

impl Pattern {
    /// The CloudWatch Logs filter patterns, as the stack's metric filters have them, to search
    /// the trail's log group with (one for IAM changes, as many as the category needs else).
    pub fn filter_patterns(self) -> Vec<String> {
        rules::group_patterns(self.0)
    }

    /// A phrase for messages: `IAM changes`, `tampering with the monitoring`, …
    pub fn describe(self) -> &'static str {
        match self.0 {
            Category::IamChange => "IAM changes",
            Category::Tampering => "tampering with the monitoring",
            Category::IdentityCenter => "IAM Identity Center changes",
            Category::Organizations => "Organizations changes",
            Category::RootUse => "use of the root user",
            Category::ConsoleSignIn => "console sign-ins without MFA",
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
pub(crate) fn parse_notice(body: &str) -> Result<AlarmNotice, AlarmError> {
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
            .unwrap_or(u64::from(names::DEFAULT_ALARM_PERIOD_SECONDS)),
        evaluation_periods: number(trigger.get("EvaluationPeriods"))
            .filter(|n| *n > 0)
            .unwrap_or(1),
    })
}

impl AlarmNotice {
    /// The records that can have set the alarm off: the evaluated periods before the state
    /// change, widened by `margin` on both sides for CloudTrail's delivery delay.
    ///
    /// The message is untrusted (anyone allowed to publish to the topic can write one): the
    /// evaluated span is cut to what CloudWatch allows ([`MAX_EVALUATED_SECONDS`]) and the
    /// window to the times chrono can represent, so no value can make the arithmetic overflow.
    pub fn window(&self, margin: Duration) -> (DateTime<Utc>, DateTime<Utc>) {
        let evaluated = self
            .period
            .saturating_mul(self.evaluation_periods)
            .min(MAX_EVALUATED_SECONDS);
        let evaluated = TimeDelta::seconds(i64::try_from(evaluated).expect("at most 7 days"));
        let margin = TimeDelta::from_std(margin).unwrap_or_default();
        let before = evaluated.checked_add(&margin).unwrap_or(TimeDelta::MAX);
        (
            self.state_change_time
                .checked_sub_signed(before)
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
            self.state_change_time
                .checked_add_signed(margin)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        )
    }

    /// The patterns the alarm counts, by its metric name: that metric's category's, else IAM
    /// changes.
    pub fn pattern(&self) -> Pattern {
        Pattern(Category::of_metric(self.metric_name.as_deref()))
    }

    /// The dedup key of this firing's "nothing found" message: a re-delivered or
    /// re-processed notification yields the same key.
    pub(crate) fn synthetic_event_id(&self) -> String {
        format!(
            "alarm:{}:{}",
            self.alarm_arn.as_deref().unwrap_or(&self.alarm_name),
            self.state_change_time.format("%Y-%m-%dT%H:%M:%S%.3f+0000")
        )
    }
}

#[cfg(test)]
mod props;

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
        assert_eq!(notice.pattern(), Pattern(Category::IamChange));
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
    fn a_period_of_1e300_seconds_does_not_panic_the_window_it_is_cut_to_seven_days() {
        let mut alarm = alarm_json();
        alarm["Trigger"]["Period"] = serde_json::json!(1e300);
        let notice = parse_notice(&alarm.to_string()).unwrap();
        let (start, end) = notice.window(Duration::from_secs(60));
        assert_eq!(
            notice.state_change_time - start,
            TimeDelta::seconds(7 * 24 * 3600 + 60)
        );
        assert_eq!(end - notice.state_change_time, TimeDelta::seconds(60));
    }

    #[test]
    fn a_window_at_either_end_of_time_stops_there_rather_than_panic() {
        let mut notice = parse_notice(&alarm_json().to_string()).unwrap();
        notice.state_change_time = DateTime::<Utc>::MAX_UTC;
        let (start, end) = notice.window(Duration::from_secs(60));
        assert!(start < notice.state_change_time);
        assert_eq!(end, DateTime::<Utc>::MAX_UTC);
        notice.state_change_time = DateTime::<Utc>::MIN_UTC;
        assert_eq!(
            notice.window(Duration::from_secs(60)).0,
            DateTime::<Utc>::MIN_UTC
        );
    }

    #[test]
    fn the_tampering_metric_selects_the_tampering_pattern() {
        let mut alarm = alarm_json();
        alarm["Trigger"]["MetricName"] = names::metric::TAMPERING.into();
        let notice = parse_notice(&alarm.to_string()).unwrap();
        assert_eq!(notice.pattern(), Pattern(Category::Tampering));
        assert_eq!(
            notice.pattern().filter_patterns(),
            rules::group_patterns(Category::Tampering)
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
        assert_eq!(notice.pattern(), Pattern(Category::IamChange));
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
