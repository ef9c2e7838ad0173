//! Where changes come from: CloudTrail `LookupEvents` (the low-latency path, [`cloudtrail`]) and
//! the CloudWatch alarm heard through SQS, reconciled against the trail's log group
//! ([`alarm`]).
//!
//! Sources know nothing of rules, storage or notifications: every source hands what it read to
//! an [`Intake`] (the pipeline's `Reporter`), together with the cursor update that becomes
//! true once the records are stored. The intake stores both atomically; that is what makes a
//! restart lose nothing.

pub mod alarm;
pub mod cloudtrail;
pub mod sqs;

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::event::{Record, SeenBy};

/// Which kind of poller pass read a batch (see [`cloudtrail`] for why there are two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// The frequent pass over the last few minutes.
    Fast,
    /// The slower pass from the durable cursor, for late arrivals.
    Sweep,
}

/// A cursor value that becomes true once the batch it comes with is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorUpdate {
    /// The cursor's name (`lookup:us-east-1:EventSource=iam.amazonaws.com`).
    pub key: String,
    /// Where the next sweep starts.
    pub value: DateTime<Utc>,
}

/// What a source read, handed to the [`Intake`] in one piece.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The records, oldest first; the intake judges which of them to report.
    pub records: Vec<Record>,
    /// Which watcher read them.
    pub seen_by: SeenBy,
    /// The poller's pass that read them (`None` for the other sources).
    pub pass: Option<Pass>,
    /// A cursor to move in the same transaction as the records.
    pub cursor: Option<CursorUpdate>,
}

/// What the intake did with a batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Records seen for the first time (and queued for notification if they matter).
    pub new: usize,
    /// Records another watcher had reported, now confirmed by the alarm path.
    pub confirmed: usize,
    /// Records already seen: the cost of overlapping windows and re-delivered messages.
    pub duplicate: usize,
}

/// An alarm fired and its window of the trail's log group held no record the catalogue
/// matches: the metric said "change", the records cannot say which. Every string comes from
/// the alarm's SNS message, which anyone allowed to publish to the topic can craft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmptyAlarm {
    /// The synthetic dedup key, `alarm:<AlarmArn>:<StateChangeTime>`: a re-delivered
    /// notification yields the same key.
    pub event_id: String,
    /// The alarm's name.
    pub alarm_name: String,
    /// CloudWatch's reason for the state change.
    pub reason: String,
    /// The account the alarm belongs to, when the message says.
    pub account: Option<String>,
    /// When the alarm went into ALARM.
    pub state_change_time: DateTime<Utc>,
    /// The searched window, margins included.
    pub window: (DateTime<Utc>, DateTime<Utc>),
    /// The log group searched.
    pub log_group: String,
    /// The log group's region.
    pub region: String,
    /// Which filter pattern was searched (`IAM changes` or `tampering with the monitoring`).
    pub pattern: &'static str,
}

/// A watched account the daemon cannot read: its role cannot be assumed or its event history
/// cannot be read. One per account and incident: the event ID stays the same until the
/// account is read again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountProblem {
    /// The synthetic dedup key, `account:<id>:<since, Unix seconds>`.
    pub event_id: String,
    /// The account's ID.
    pub account: String,
    /// The account's name, when known.
    pub name: Option<String>,
    /// The role the daemon tried to assume.
    pub role_arn: String,
    /// What went wrong, in AWS's words (error code and message).
    pub error: String,
    /// What to do about it.
    pub fix: String,
    /// When the incident began.
    pub since: DateTime<Utc>,
}

/// The intake could not store what a source handed in; the source keeps it (the poller's
/// next sweep reads the window again, the alarm path leaves its message in the queue).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct IntakeError(pub String);

/// Where every source hands what it read.
pub trait Intake: Send + Sync + 'static {
    /// The stored value of cursor `key`, if one was ever set.
    fn cursor(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<DateTime<Utc>>, IntakeError>> + Send;

    /// Judges the batch's records, stores those the rules report with their notifications
    /// and, in the same transaction, the batch's cursor update.
    fn accept(&self, batch: Batch) -> impl Future<Output = Result<Accepted, IntakeError>> + Send;

    /// Stores the message about an alarm that found nothing, once per firing; `true` when it
    /// was new.
    fn empty_alarm(
        &self,
        alarm: EmptyAlarm,
    ) -> impl Future<Output = Result<bool, IntakeError>> + Send;

    /// Stores the message about a watched account that cannot be read, once per incident;
    /// `true` when it was new.
    fn account_problem(
        &self,
        problem: AccountProblem,
    ) -> impl Future<Output = Result<bool, IntakeError>> + Send;
}
