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
//! name: the metric names are fixed by our template ([`crate::stack::names::metric`]) while alarm
//! names carry the stack name. The tampering metric selects the tampering pattern; every other
//! metric (the IAM and the CIS 4.4 one, a subset of it) the IAM pattern.
//!
//! The queue is read by the one SQS consumer ([`crate::source`]'s `sqs`): a message is deleted
//! only after everything it caused is committed to the store and its outbox, so a crash in
//! between re-processes it, and eventID dedup makes that harmless. A message that cannot be
//! read is logged with its message ID and left in the queue, hidden for
//! [`super::sqs::UNREADABLE_VISIBILITY`] so it is not read again at once: the queue's redrive policy (or the age-of-oldest-message alarm) makes it
//! visible to a human.

mod config;
mod notice;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::sqs::{Handled, Queue};
use super::{Accepted, Batch, EmptyAlarm, Intake, IntakeError};
use crate::event::{Record, SeenBy};
pub use config::AlarmConfig;
pub(crate) use config::RawAlarm;
pub(crate) use notice::{parse_notice, AlarmNotice, Pattern};

/// The AWS actions this module calls (the daemon's policy, `deploy/iamwatchd-policy.json`,
/// must allow exactly the union of every module's list; `src/aws/actions.rs` enforces it).
#[cfg(test)]
pub(crate) const ACTIONS: &[&str] = &["logs:FilterLogEvents"];

/// Why an alarm message could not be reconciled.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AlarmError {
    /// Not a CloudWatch alarm notification.
    #[error(
        "the message is not a CloudWatch alarm notification ({0}); it stays in the queue: \
         check what else publishes to the alarm topic"
    )]
    Unreadable(String),
    /// The log group could not be read.
    #[error(
        "cannot read log group {log_group}: {problem}; check alarm.log_group and the \
         daemon's logs:FilterLogEvents permission"
    )]
    Logs {
        /// The log group.
        log_group: String,
        /// What went wrong.
        problem: String,
    },
    /// The intake could not store what was found.
    #[error("cannot record the alarm's findings: {0}")]
    Intake(#[from] IntakeError),
}

/// What one ALARM notification amounted to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reconciled {
    /// Records found in the window that the catalogue matches.
    pub records: usize,
    /// What the intake made of them: new (the poller had not seen them), confirmed (the
    /// poller had), duplicate (an earlier alarm had: a re-delivered notification).
    pub accepted: Accepted,
    /// Whether the "nothing found" message was queued.
    pub nothing_found: bool,
}

/// The alarm path: the queue's ALARM notices, each reconciled against the trail's log group.
pub(crate) struct AlarmPath<I> {
    /// The queue the stack subscribes to the alarm topic, with the client of its region.
    queue: Queue,
    /// The client of the log group's region.
    pub logs: aws_sdk_cloudwatchlogs::Client,
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
    /// The alarm path on the queue `queue_url` (read with `sqs`), reading `log_group` with
    /// `logs` and handing what it finds to `intake`.
    pub fn new(
        sqs: aws_sdk_sqs::Client,
        queue_url: String,
        logs: aws_sdk_cloudwatchlogs::Client,
        log_group: String,
        region: String,
        margin: Duration,
        intake: Arc<I>,
    ) -> AlarmPath<I> {
        AlarmPath {
            queue: Queue {
                client: sqs,
                url: queue_url,
            },
            logs,
            log_group,
            region,
            margin,
            intake,
        }
    }

    /// Long-polls the queue until `stop` fires; the receive in flight and the messages it
    /// brought are finished first (at most the 10 s long poll plus their processing).
    pub async fn run(self, stop: CancellationToken) {
        tracing::info!(queue = %self.queue.url, log_group = %self.log_group, "alarm path listening");
        let path = &self;
        self.queue
            .consume("alarm", stop, |message| async move {
                path.handle(&message).await
            })
            .await;
    }

    async fn handle(&self, message: &aws_sdk_sqs::types::Message) -> Handled {
        let id = message.message_id().unwrap_or("unknown");
        let notice = match parse_notice(message.body().unwrap_or_default()) {
            Ok(notice) => notice,
            Err(error) => {
                tracing::error!(message_id = id, "{error}");
                return Handled::Unreadable;
            }
        };
        if notice.new_state != "ALARM" {
            tracing::info!(message_id = id, alarm = %notice.alarm_name, state = %notice.new_state,
                "alarm state change without anything to reconcile");
            return Handled::Done;
        }
        match self.reconcile(&notice).await {
            Ok(result) => {
                if result.accepted.new > 0 {
                    // An alarm firing the poller never explained: counted by the health job
                    // from the store (events first seen by the alarm path).
                    tracing::warn!(alarm = %notice.alarm_name, new = result.accepted.new,
                        "the alarm found changes the poller had not reported; reported now");
                }
                tracing::info!(message_id = id, alarm = %notice.alarm_name,
                    records = result.records, new = result.accepted.new,
                    confirmed = result.accepted.confirmed, duplicate = result.accepted.duplicate,
                    nothing_found = result.nothing_found, "alarm reconciled");
                Handled::Done
            }
            Err(error) => {
                // Not deleted: the message is read again after its visibility timeout.
                tracing::error!(message_id = id, alarm = %notice.alarm_name, "{error}");
                Handled::Failed
            }
        }
    }

    /// Reads the alarm's window and records what it finds; see the module doc.
    pub(crate) async fn reconcile(&self, notice: &AlarmNotice) -> Result<Reconciled, AlarmError> {
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
        result.accepted = self
            .intake
            .accept(Batch {
                records,
                seen_by: SeenBy::Alarm,
                pass: None,
                cursor: None,
            })
            .await?;
        Ok(result)
    }

    /// Every record of the log group in `window` that one of `pattern`'s filter patterns
    /// matches, all pages, each record once.
    async fn records_in(
        &self,
        pattern: Pattern,
        window: (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<Vec<Record>, AlarmError> {
        let mut records: Vec<Record> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for filter_pattern in pattern.filter_patterns() {
            let mut pages = self
                .logs
                .filter_log_events()
                .log_group_name(&self.log_group)
                .filter_pattern(filter_pattern)
                .start_time(window.0.timestamp_millis())
                .end_time(window.1.timestamp_millis())
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|error| AlarmError::Logs {
                    log_group: self.log_group.clone(),
                    problem: aws_sdk_cloudwatchlogs::error::DisplayErrorContext(&error).to_string(),
                })?;
                for event in page.events() {
                    match Record::parse(event.message().unwrap_or_default()) {
                        Ok(record) => {
                            if seen.insert(record.event_id.clone()) {
                                records.push(record);
                            }
                        }
                        Err(error) => tracing::warn!(log_group = %self.log_group,
                            event_id = event.event_id().unwrap_or_default(),
                            "skipping an unreadable record in the log group: {error}"),
                    }
                }
            }
        }
        Ok(records)
    }
}
