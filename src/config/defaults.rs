//! Every default value of the configuration, in one place. The raw sections start from these,
//! and the example `config/iamwatchd.toml` shows them.

use std::time::Duration;

const DAY: u64 = 24 * 60 * 60;

/// Where `run` and `check` look for the configuration unless told otherwise.
pub const CONFIG_FILE: &str = "/etc/iamwatchd/iamwatchd.toml";
/// IAM events are recorded in us-east-1 only (see [`crate::aws::IAM_EVENTS_REGION`]).
pub(crate) const REGION: &str = crate::aws::IAM_EVENTS_REGION;
/// Name of the CloudFormation stack `deploy` creates and `check` inspects.
pub(crate) const STACK_NAME: &str = "iamwatchd";
/// Attempts per AWS call, the first one included.
pub(crate) const MAX_ATTEMPTS: u32 = crate::aws::DEFAULT_MAX_ATTEMPTS;
/// Upper bound for `aws.max_attempts`: beyond this, retries only hide an outage.
pub(crate) const MAX_ATTEMPTS_LIMIT: u32 = 10;
/// LookupEvents budget used by the poller, per account and region (at most
/// [`crate::aws::LOOKUP_EVENTS_REQUESTS_PER_SECOND`], which everyone in the account shares).
pub(crate) const REQUESTS_PER_SECOND: f64 = 1.0;
/// How often the short window is polled.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_secs(10);
/// How far back each frequent poll looks.
pub(crate) const SHORT_WINDOW: Duration = Duration::from_secs(2 * 60);
/// How often the slower sweep re-reads the delivery-delay horizon.
pub(crate) const SWEEP_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// How late CloudTrail may deliver an event to LookupEvents.
pub(crate) const SWEEP_HORIZON: Duration = Duration::from_secs(15 * 60);
/// Where durable state (cursor, seen events, outbox) lives (systemd's `StateDirectory=`).
pub(crate) const STATE_DIRECTORY: &str = "/var/lib/iamwatchd";
/// How long seen eventIDs are kept: as long as LookupEvents can return them again.
pub(crate) const RETENTION: Duration = crate::aws::LOOKUP_EVENTS_RETENTION;
/// SMTP connection and command timeout.
pub(crate) const SMTP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long after the poller reports a change the alarm path should confirm it.
pub(crate) const CONFIRM_WITHIN: Duration = Duration::from_secs(30 * 60);
/// How far the alarm path widens the alarm's window on both sides when it reads the log
/// group: CloudTrail delivers to CloudWatch Logs minutes after the call, and the record's
/// timestamp (the call's time) may precede the datapoint that set the alarm off.
pub(crate) const LOOKBACK_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Log filter (tracing `EnvFilter` syntax).
pub(crate) const LOG_LEVEL: &str = "info";
/// The address suggested for `metrics.listen` (the listener is off unless set).
pub(crate) const METRICS_LISTEN_SUGGESTION: &str = "127.0.0.1:9847";
/// `iamwatchd health`'s default URL: `/healthz` on [`METRICS_LISTEN_SUGGESTION`].
pub const HEALTH_URL: &str = "http://127.0.0.1:9847/healthz";
// `[deploy]` has no defaults of its own: a key left out keeps the stack's current value on
// an update and takes the template's default (`crate::stack::names::DEFAULT_*`) on a create,
// so that a file that does not mention a setting never undoes an earlier change to it.

/// After this long undelivered, a notification is given up (logged and counted).
pub(crate) const DELIVERY_MAX_AGE: Duration = Duration::from_secs(DAY);
/// First retry delay of a failed notification.
pub(crate) const INITIAL_BACKOFF: Duration = Duration::from_secs(5);
/// Longest delay between two retries of a notification.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_health_url_is_on_the_suggested_listener() {
        assert_eq!(
            HEALTH_URL,
            format!("http://{METRICS_LISTEN_SUGGESTION}/healthz")
        );
    }
}
