//! Property tests of the alarm path's reader of SQS message bodies: any text, SNS envelopes
//! around any `Message`, and CloudWatch alarm JSON whose every field may be missing, null, of
//! the wrong type, hostile or out of range. Nothing may panic, from the parse through the
//! window it searches to the "nothing found" message; a body that is not an alarm is refused
//! as unreadable, saying it stays in the queue.

use std::time::Duration;

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::{parse_notice, AlarmError, AlarmNotice};
use crate::hostile::{config, deep_json, hostile_string, json_value, CASES};
use crate::notify::render;
use crate::source::EmptyAlarm;

/// A value for an alarm field: plausible, or missing, null, of another type or hostile.
fn field(plausible: Vec<Value>) -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        5 => proptest::sample::select(plausible).prop_map(Some),
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        2 => json_value().prop_map(Some),
        1 => hostile_string().prop_map(|s| Some(Value::String(s))),
    ]
    .boxed()
}

fn object(entries: Vec<(&str, Option<Value>)>) -> Value {
    let map: Map<String, Value> = entries
        .into_iter()
        .filter_map(|(key, value)| Some((key.to_owned(), value?)))
        .collect();
    Value::Object(map)
}

/// CloudWatch's alarm JSON with each field possibly wrong; numbers as numbers or strings, up
/// to the extremes (a period of 10^300 seconds, a time in the year 262,143).
fn alarm_json() -> BoxedStrategy<Value> {
    let trigger = (
        field(vec![
            json!("IAMChanges"),
            json!("TamperingEvents"),
            json!("RootUse"),
        ]),
        field(vec![
            json!(300),
            json!("60"),
            json!(0),
            json!(-5),
            json!(1e300),
            json!(u64::MAX),
            json!("1e30"),
            json!(86_400),
        ]),
        field(vec![
            json!(1),
            json!("2"),
            json!(0),
            json!(u64::MAX),
            json!(1.5e19),
            json!("99999999999"),
        ]),
    )
        .prop_map(|(metric, period, periods)| {
            object(vec![
                ("MetricName", metric),
                ("Period", period),
                ("EvaluationPeriods", periods),
            ])
        })
        .boxed();
    (
        field(vec![json!("iamwatchd-iam-changes")]),
        field(vec![json!(
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:a"
        )]),
        field(vec![json!("123456789012")]),
        field(vec![
            json!("ALARM"),
            json!("OK"),
            json!("INSUFFICIENT_DATA"),
        ]),
        field(vec![json!("Threshold Crossed: 1 datapoint")]),
        field(vec![
            json!("2015-06-03T17:43:27.123+0000"),
            json!("2015-06-03T17:43:27Z"),
            json!("2015-06-03T17:43:27.123"),
            json!("+262143-12-31T23:59:59.999+0000"),
            json!("-262143-01-01T00:00:00+0000"),
            json!("1970-01-01T00:00:00+1400"),
        ]),
        prop_oneof![4 => trigger.prop_map(Some), 1 => json_value().prop_map(Some), 1 => Just(None)],
    )
        .prop_map(|(name, arn, account, state, reason, time, trigger)| {
            object(vec![
                ("AlarmName", name),
                ("AlarmArn", arn),
                ("AWSAccountId", account),
                ("NewStateValue", state),
                ("NewStateReason", reason),
                ("StateChangeTime", time),
                ("Trigger", trigger),
            ])
        })
        .boxed()
}

/// An SQS body: the alarm in an SNS envelope (its `Message` a string), raw delivery, an
/// envelope around anything, or anything at all.
fn body() -> BoxedStrategy<String> {
    prop_oneof![
        4 => alarm_json().prop_map(|alarm| json!({
            "Type": "Notification", "MessageId": "m-1", "Message": alarm.to_string(),
        }).to_string()),
        3 => alarm_json().prop_map(|alarm| alarm.to_string()),
        2 => hostile_string().prop_map(|message| json!({"Type": "Notification",
            "Message": message}).to_string()),
        1 => json_value().prop_map(|v| json!({"Message": v}).to_string()),
        1 => json_value().prop_map(|v| v.to_string()),
        1 => hostile_string(),
        1 => deep_json().prop_map(|(_, text)| text),
        1 => deep_json().prop_map(|(_, text)| json!({"Message": text}).to_string()),
    ]
    .boxed()
}

/// What the alarm path does with a notice it read: the window, the patterns, the dedup key,
/// and the message when nothing is found.
fn exercise(notice: &AlarmNotice, margin: Duration) -> Result<(), TestCaseError> {
    let window = notice.window(margin);
    prop_assert!(window.0 <= window.1, "{window:?}");
    prop_assert!(!notice.pattern().filter_patterns().is_empty());
    let event_id = notice.synthetic_event_id();
    prop_assert!(event_id.starts_with("alarm:"));
    let message = render::empty_alarm(&EmptyAlarm {
        event_id,
        alarm_name: notice.alarm_name.clone(),
        reason: notice.reason.clone(),
        account: notice.account.clone(),
        state_change_time: notice.state_change_time,
        window,
        log_group: "/iamwatchd/trail".to_owned(),
        region: "us-east-1".to_owned(),
        pattern: notice.pattern().describe(),
    });
    render::testing::assert_safe(&message);
    Ok(())
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn any_sqs_body_is_an_alarm_notice_or_unreadable(
        body in body(),
        margin in prop_oneof![Just(Duration::from_secs(60)), any::<u32>().prop_map(|s| Duration::from_secs(u64::from(s)))],
    ) {
        match parse_notice(&body) {
            Ok(notice) => {
                prop_assert!(!notice.alarm_name.is_empty() && !notice.new_state.is_empty());
                prop_assert!(notice.period >= 1 && notice.evaluation_periods >= 1);
                exercise(&notice, margin)?;
            }
            Err(error @ AlarmError::Unreadable(_)) => {
                let shown = error.to_string();
                prop_assert!(shown.contains("stays in the queue"), "{shown}");
            }
            Err(other) => prop_assert!(false, "{other}"),
        }
    }
}
