//! `[alarm]`: the queue the stack subscribes to the alarm topic, the trail's log group, and
//! how long the alarm path has to confirm what the poller reported.

use std::time::Duration;

use serde::Deserialize;

use crate::config::problem::Problems;
use crate::config::shapes::{is_log_group_name, is_queue_url};
use crate::config::{defaults, values};

/// The alarm path, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmConfig {
    /// SQS queue subscribed to the alarm topic; `None` disables the alarm path in the daemon.
    pub queue_url: Option<String>,
    /// A change the poller reported must be confirmed by the alarm path within this long, or
    /// the alarm path is reported as unhealthy.
    pub confirm_within: Duration,
    /// The trail's log group (the stack's `LogGroupName` output), read in the aws region when
    /// an alarm fires; required with `queue_url`.
    pub log_group: Option<String>,
    /// Added before and after the alarm's own window when its records are read.
    pub lookback_margin: Duration,
    /// Whether an unhealthy pipeline (changes the alarm path never confirmed) is also sent as
    /// a message, not only logged.
    pub health_messages: bool,
}

/// `[alarm]`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawAlarm {
    /// Alarm queue URL.
    queue_url: Option<String>,
    /// Time the alarm path has to confirm a change.
    #[serde(deserialize_with = "values::duration")]
    confirm_within: Duration,
    /// The trail's log group name.
    log_group: Option<String>,
    /// Margin around the alarm's window.
    #[serde(deserialize_with = "values::duration")]
    lookback_margin: Duration,
    /// Send pipeline-health findings as messages too.
    health_messages: bool,
}

impl Default for RawAlarm {
    fn default() -> Self {
        RawAlarm {
            queue_url: None,
            confirm_within: defaults::CONFIRM_WITHIN,
            log_group: None,
            lookback_margin: defaults::LOOKBACK_MARGIN,
            health_messages: true,
        }
    }
}

impl RawAlarm {
    /// Validates `[alarm]`: a queue URL and the log group it needs, sane windows.
    pub(crate) fn validate(&self, problems: &mut Problems) -> AlarmConfig {
        let raw = self;
        if let Some(url) = &raw.queue_url {
            if !is_queue_url(url) {
                problems.error(
                    "alarm.queue_url",
                    format!(
                        "must be an SQS queue URL such as \
                     \"https://sqs.us-east-1.amazonaws.com/123456789012/iamwatchd-alarms\" (the \
                     stack's AlarmQueueUrl output), got {url:?}"
                    ),
                );
            }
        }
        if raw.confirm_within.is_zero() {
            problems.error("alarm.confirm_within", "must be greater than 0");
        }
        match (&raw.queue_url, &raw.log_group) {
            (Some(_), None) => problems.error(
                "alarm.log_group",
                "is required with alarm.queue_url: name the trail's log group (the stack's \
             LogGroupName output), which the daemon reads when an alarm fires",
            ),
            (_, Some(group)) if !is_log_group_name(group) => problems.error(
                "alarm.log_group",
                format!(
                    "must be a CloudWatch Logs group name (1 to 512 characters of letters, digits \
                 and _ - / . #), got {group:?}"
                ),
            ),
            _ => {}
        }
        if raw.lookback_margin > Duration::from_secs(24 * 60 * 60) {
            problems.error(
                "alarm.lookback_margin",
                "must be at most 1 day: CloudTrail delivers to CloudWatch Logs within minutes",
            );
        }
        AlarmConfig {
            queue_url: raw.queue_url.clone(),
            confirm_within: raw.confirm_within,
            log_group: raw.log_group.clone(),
            lookback_margin: raw.lookback_margin,
            health_messages: raw.health_messages,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::defaults;
    use crate::config::testing::*;

    #[test]
    fn the_alarm_path_needs_its_log_group() {
        let text =
            format!("{MINIMAL}[alarm]\nqueue_url = \"https://sqs.us-east-1.amazonaws.com/1/q\"\n");
        let found = problems(&text);
        assert!(problem_at(&found, "alarm.log_group")
            .message
            .contains("LogGroupName"));
        let bad = format!("{text}log_group = \"no spaces allowed\"\nlookback_margin = \"2d\"\n");
        let found = problems(&bad);
        problem_at(&found, "alarm.log_group");
        problem_at(&found, "alarm.lookback_margin");
        let good = format!("{text}log_group = \"iamwatchd-LogGroup-1\"\n");
        let config = load_str(&good, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.alarm.log_group.as_deref(),
            Some("iamwatchd-LogGroup-1")
        );
        assert_eq!(config.alarm.lookback_margin, defaults::LOOKBACK_MARGIN);
        assert!(config.alarm.health_messages);
        let found = problems(&format!("{MINIMAL}[alarm]\nqueue_url = \"not a url\"\n"));
        assert!(problem_at(&found, "alarm.queue_url")
            .message
            .contains("AlarmQueueUrl"));
    }
}
