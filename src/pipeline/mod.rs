//! The pipeline: what every source hands in is judged, rendered once and recorded with its
//! notifications in one transaction; one delivery worker per notifier sends what is due; the
//! alarm path's health is checked from the store; undeliverable notifications expire and old
//! events are pruned.
//!
//! ```text
//!   poller ──────records──►┐
//!                          ├► Reporter: judge (rules) → render (notify) → record + outbox ─► store
//!   alarm path ──records──►┘                                       (one transaction)     │
//!   delivery worker per notifier ◄──────────────── due rows ◄────────────────────────────┘
//! ```
//!
//! Both paths record through the same [`Reporter`], keyed by `eventID`: whichever sees a
//! change first reports it; the alarm path's later sighting confirms it, the poller's later
//! sighting is a duplicate.
//!
//! Guarantees, and where they come from:
//! - **nothing lost**: a record is marked seen and its notifications queued in the same
//!   transaction that may move the poller's cursor; a notification is marked sent only after
//!   the notifier accepted it ([`delivery`]); one that keeps failing is given up only after
//!   `delivery.max_age`, with an error line naming it ([`housekeeping`]);
//! - **nothing repeated** beyond the sends in flight at a crash (SMTP messages carry a
//!   Message-ID derived from the eventID so mail systems can drop even those);
//! - **one dead notifier never blocks another**: each has its own worker and backoff.

pub(crate) mod analyst;
pub mod delivery;
pub mod health;
pub(crate) mod housekeeping;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::accounts::Roster;
use crate::event::{Record, SeenBy};
use crate::metrics::Metrics;
use crate::notify::digest;
use crate::notify::render;
use crate::notify::route::Outlet;
use crate::notify::{Alert, Message};
use crate::rules::DigestMode;
use crate::rules::Ruleset;
use crate::source::{
    Accepted, AccountProblem, Batch, CursorUpdate, EmptyAlarm, Intake, IntakeError,
};
use crate::store::{NewEvent, Notification, Recorded, SetCursor, SharedStore, StoreError};
use analyst::Analyst;

/// Turns records into stored events with their queued messages, for every source: judges each
/// record, renders it once, and records it with one outbox row per notifier in one
/// transaction. The poller and the alarm path both hand their records to it (it is their
/// [`Intake`]), so a change reads the same whichever path saw it first.
#[derive(Clone)]
pub(crate) struct Reporter {
    store: SharedStore,
    ruleset: Arc<Ruleset>,
    outlets: Arc<[Outlet]>,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    analyst: Analyst,
    roster: Roster,
}

impl Reporter {
    /// A reporter that judges by `ruleset`, queues one notification for every notifier in
    /// `routes` whose route takes it, and wakes the delivery workers through `wake` when it
    /// queued something.
    pub fn new(
        store: SharedStore,
        ruleset: Ruleset,
        outlets: Vec<Outlet>,
        wake: Arc<Notify>,
        metrics: Arc<Metrics>,
    ) -> Reporter {
        Reporter {
            store,
            ruleset: Arc::new(ruleset),
            outlets: outlets.into(),
            wake,
            metrics,
            analyst: Analyst::offline(),
            roster: Roster::default(),
        }
    }

    /// The reporter naming each record's account from `roster` (`[accounts]`).
    pub fn with_roster(mut self, roster: Roster) -> Reporter {
        self.roster = roster;
        self
    }

    /// The reporter with `analyst` analysing policy changes (the default looks nothing up in
    /// IAM: managed policy versions are "unknown").
    pub fn with_analyst(mut self, analyst: Analyst) -> Reporter {
        self.analyst = analyst;
        self
    }

    /// The store it records into.
    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// Records every record the rules report, as seen by `seen_by` (for `scan --notify`);
    /// returns how many were new.
    pub async fn report(&self, records: Vec<Record>, seen_by: SeenBy) -> Result<usize, StoreError> {
        let recorded = self.judge_and_record(records, seen_by, None).await?;
        Ok(recorded.iter().filter(|r| **r == Recorded::New).count())
    }

    /// Judges `records`, renders what the rules report and records it, seen by `seen_by`,
    /// with `cursor`, in one transaction: what every source's records go through.
    async fn judge_and_record(
        &self,
        records: Vec<Record>,
        seen_by: SeenBy,
        cursor: Option<CursorUpdate>,
    ) -> Result<Vec<Recorded>, StoreError> {
        let now = Utc::now();
        let mut silenced = Vec::new();
        // The lookups first, asynchronously and within their budget: judging, rendering and
        // recording stay one synchronous step. Records already seen (the poller's overlapping
        // windows, the alarm path's confirmations) queue nothing, so they are not analysed: no
        // IAM lookup and no billed Access Analyzer call for them.
        // Only policy changes are asked about (none with the analysis off): most records of a
        // batch are not, and the poller's overlapping windows hand in many batches.
        let ids: Vec<String> = records
            .iter()
            .filter(|r| self.analyst.wants(r))
            .map(|r| r.event_id.clone())
            .collect();
        let seen = if ids.is_empty() {
            HashSet::new()
        } else {
            match self.store.with(move |s| s.already_seen(&ids)).await {
                Ok(seen) => seen,
                Err(error) => {
                    tracing::warn!(%error, "cannot tell which records were seen; analysing them all");
                    HashSet::new()
                }
            }
        };
        let analysed = self.analyst.analyse(&self.store, &records, &seen).await;
        let items = records
            .into_iter()
            .zip(analysed.analyses)
            .filter_map(|(record, analysis)| {
                if self.ruleset.silenced(&record) {
                    if let Some(key) = burst_key_of(&record) {
                        silenced.push((record.event_id.clone(), key));
                    }
                }
                self.alert_item(record, analysis, seen_by, now)
            })
            .collect();
        if !silenced.is_empty() {
            // Only counted for digests: a failure to count is logged, never fatal.
            let counted = self
                .store
                .with(move |s| {
                    silenced
                        .iter()
                        .try_for_each(|(id, key)| s.record_silenced(id, key, now))
                })
                .await;
            if let Err(error) = counted {
                tracing::warn!(%error, "cannot count events the allow-list silenced");
            }
        }
        let results = self.record(items, cursor).await?;
        // After the findings: a crash in between leaves a snapshot older than the change,
        // so the change is compared with more than it changed, never with itself.
        if !analysed.writes.is_empty() {
            let writes = analysed.writes;
            let written = self
                .store
                .with(move |store| store.write_snapshots(&writes, None, now))
                .await;
            if let Err(error) = written {
                tracing::warn!(%error, "could not record the policy snapshots; the next change \
                    to these policies will say \"previous version unknown\"");
            }
        }
        Ok(results)
    }

    /// The stored event and its queued messages for `record`, or `None` when the rules say it
    /// must not be reported.
    fn alert_item(
        &self,
        record: Record,
        analysis: Option<crate::analysis::Analysis>,
        seen_by: SeenBy,
        now: DateTime<Utc>,
    ) -> Option<(NewEvent, Vec<Notification>)> {
        let classification = self.ruleset.judge_with(&record, analysis.as_ref())?;
        let account_name = record
            .account()
            .and_then(|account| self.roster.name(account));
        let alert = Alert {
            account_name,
            classification,
            detected_at: now,
            seen_by,
            record,
            analysis,
        };
        let message = alert.render();
        let burst =
            burst_key_of(&alert.record).map(|key| (key, self.ruleset.digest_mode(&alert.record)));
        let event = NewEvent {
            event_id: alert.record.event_id.clone(),
            event_time: alert.record.event_time.unwrap_or(now),
            event_name: alert.record.event_name.clone(),
            severity: alert.classification.severity.to_string(),
            seen_by,
            seen_at: now,
        };
        Some(self.message_item(&message, event, burst))
    }

    /// `event` with `message` queued for every notifier whose route takes it: also used for
    /// messages about the pipeline itself, under a synthetic event ID.
    /// `burst` is the finding's burst key and the allow-list's digest mode for it (none for
    /// messages about the pipeline).
    fn message_item(
        &self,
        message: &Message,
        event: NewEvent,
        burst: Option<(String, Option<DigestMode>)>,
    ) -> (NewEvent, Vec<Notification>) {
        let payload = serde_json::to_vec(message).expect("a message serialises");
        let notifications = self
            .outlets
            .iter()
            .filter(|outlet| outlet.route.accepts(message))
            .map(|outlet| Notification {
                notifier: outlet.name.clone(),
                payload: payload.clone(),
                burst: burst.as_ref().and_then(|(key, mode)| {
                    digest::plan(&outlet.digest, message, Some(key), *mode)
                }),
            })
            .collect();
        (event, notifications)
    }

    /// Records a message about the pipeline under its own event ID (an empty alarm, a silent
    /// alarm path) at `now`; whether it was new. It counts as the alarm path's own finding: a
    /// poller or scan entry would count as a change awaiting the alarm's confirmation itself.
    async fn record_message(
        &self,
        message: &Message,
        event_id: String,
        event_time: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let event = NewEvent {
            event_id,
            event_time,
            event_name: message.event_name.clone(),
            severity: message.severity.clone(),
            seen_by: SeenBy::Alarm,
            seen_at: now,
        };
        let recorded = self
            .record(vec![self.message_item(message, event, None)], None)
            .await?;
        Ok(recorded.contains(&Recorded::New))
    }

    /// Records `items` (and moves a cursor) in one transaction, then wakes the delivery
    /// workers when something new was queued. With nothing to write, no transaction.
    async fn record(
        &self,
        items: Vec<(NewEvent, Vec<Notification>)>,
        cursor: Option<CursorUpdate>,
    ) -> Result<Vec<Recorded>, StoreError> {
        if items.is_empty() && cursor.is_none() {
            return Ok(Vec::new());
        }
        let now = Utc::now();
        let (items, results) = self
            .store
            .with(move |store| {
                let value = cursor.as_ref().map(|c| c.value.to_rfc3339());
                let update = cursor
                    .as_ref()
                    .zip(value.as_deref())
                    .map(|(c, value)| SetCursor {
                        name: &c.key,
                        value,
                        now,
                    });
                store
                    .record_batch(&items, update)
                    .map(|results| (items, results))
            })
            .await?;
        for ((event, notifications), result) in items.iter().zip(&results) {
            if *result == Recorded::New {
                let lag = (now - event.event_time).to_std().unwrap_or_default();
                self.metrics.new_event(event.seen_by, lag);
                if notifications.is_empty() && !self.outlets.is_empty() {
                    // Recorded (so not reported again), but nobody told: say so, loudly.
                    self.metrics.finding_unrouted();
                    tracing::warn!(event_id = %event.event_id, event_name = %event.event_name,
                        severity = %event.severity,
                        "no notifier's routing takes this finding, so nobody is told of it; \
                         widen a notifier's min_severity, categories, accounts, events or \
                         attempts (`iamwatchd check` prints the routing table)");
                }
            }
        }
        if results.contains(&Recorded::New) {
            self.wake.notify_waiters();
        }
        Ok(results)
    }
}

/// A record's burst key (account and principal), when the record names its principal.
fn burst_key_of(record: &Record) -> Option<String> {
    let principal = record.identity.principal()?;
    Some(digest::burst_key(
        record.account().unwrap_or("unknown"),
        &principal,
    ))
}

fn intake_error(error: StoreError) -> IntakeError {
    IntakeError(error.to_string())
}

impl Intake for Reporter {
    async fn cursor(&self, key: &str) -> Result<Option<DateTime<Utc>>, IntakeError> {
        let key = key.to_owned();
        let cursor = self
            .store
            .with(move |store| store.cursor(&key))
            .await
            .map_err(intake_error)?;
        match cursor {
            None => Ok(None),
            Some(cursor) => DateTime::parse_from_rfc3339(&cursor.value)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|e| {
                    IntakeError(format!(
                        "stored cursor {:?} is unreadable: {e}",
                        cursor.value
                    ))
                }),
        }
    }

    async fn accept(&self, batch: Batch) -> Result<Accepted, IntakeError> {
        let results = self
            .judge_and_record(batch.records, batch.seen_by, batch.cursor)
            .await
            .map_err(intake_error)?;
        let mut accepted = Accepted::default();
        for result in results {
            match result {
                Recorded::New => accepted.new += 1,
                Recorded::Confirmed { .. } => accepted.confirmed += 1,
                Recorded::Duplicate { .. } => accepted.duplicate += 1,
            }
        }
        Ok(accepted)
    }

    async fn empty_alarm(&self, alarm: EmptyAlarm) -> Result<bool, IntakeError> {
        let message = render::empty_alarm(&alarm);
        self.record_message(
            &message,
            alarm.event_id,
            alarm.state_change_time,
            Utc::now(),
        )
        .await
        .map_err(intake_error)
    }

    async fn account_problem(&self, problem: AccountProblem) -> Result<bool, IntakeError> {
        let message = render::account_problem(&problem);
        self.record_message(&message, problem.event_id, problem.since, Utc::now())
            .await
            .map_err(intake_error)
    }
}

/// A reporter over a fresh store in a temporary directory, for the pipeline's tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::time::Duration;

    use super::*;
    use crate::source::cloudtrail::stream::Counters;
    use crate::store::Store;

    /// A reporter with one notifier, `smtp`, that reports everything.
    pub(crate) fn reporter() -> (tempfile::TempDir, Reporter) {
        let dir = tempfile::tempdir().unwrap();
        let store = SharedStore::new(Store::open(dir.path()).unwrap());
        let names = vec!["smtp".to_owned()];
        let routes = vec![Outlet::everything("smtp")];
        let metrics = Arc::new(Metrics::new(
            Arc::new(Counters::default()),
            &names,
            Duration::from_secs(60),
        ));
        let reporter = Reporter::new(
            store,
            Ruleset::default(),
            routes,
            Arc::new(Notify::new()),
            metrics,
        );
        (dir, reporter)
    }

    /// The event IDs queued for `smtp`, due or not.
    pub(crate) async fn queued(reporter: &Reporter) -> Vec<String> {
        reporter
            .store
            .with(|s| s.due("smtp", Utc::now() + chrono::TimeDelta::days(1), 100))
            .await
            .unwrap()
            .into_iter()
            .map(|row| row.event_id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    fn record(id: &str, name: &str) -> Record {
        Record::from_json(serde_json::json!({
            "eventID": id, "eventName": name, "eventSource": "iam.amazonaws.com",
            "eventTime": "2026-11-25T12:00:00Z", "readOnly": false,
            "recipientAccountId": "111122223333",
        }))
        .unwrap()
    }

    /// Regression: the scan's sightings were rendered as the poller's ("detected by the
    /// LookupEvents poller") because only the alarm path had a name of its own.
    #[tokio::test]
    async fn a_scan_finding_is_not_said_to_come_from_the_poller() {
        let (_dir, reporter) = reporter();
        let new = reporter
            .report(vec![record("e-1", "CreateUser")], SeenBy::Scan)
            .await
            .unwrap();
        assert_eq!(new, 1);
        let rows = reporter
            .store
            .with(|s| s.due("smtp", Utc::now() + chrono::TimeDelta::days(1), 10))
            .await
            .unwrap();
        let message: Message = serde_json::from_slice(&rows[0].payload).unwrap();
        assert!(
            message.text.contains("by `iamwatchd scan`"),
            "{}",
            message.text
        );
        assert!(!message.text.contains("LookupEvents poller"));
    }

    #[tokio::test]
    async fn the_alarm_path_confirms_what_the_poller_reported_and_reports_what_it_missed() {
        let (_dir, reporter) = reporter();
        let batch = |ids: &[&str], seen_by| Batch {
            records: ids.iter().map(|id| record(id, "CreateRole")).collect(),
            seen_by,
            pass: None,
            cursor: None,
        };
        let polled = reporter
            .accept(batch(&["a"], SeenBy::Poller))
            .await
            .unwrap();
        assert_eq!(polled.new, 1);
        let alarm = reporter
            .accept(batch(&["a", "b"], SeenBy::Alarm))
            .await
            .unwrap();
        assert_eq!((alarm.new, alarm.confirmed, alarm.duplicate), (1, 1, 0));
        let again = reporter
            .accept(batch(&["a", "b"], SeenBy::Alarm))
            .await
            .unwrap();
        assert_eq!((again.new, again.confirmed, again.duplicate), (0, 0, 2));
        assert_eq!(queued(&reporter).await, ["a", "b"]);
    }

    #[tokio::test]
    async fn an_empty_alarm_is_one_message_per_firing() {
        let (_dir, reporter) = reporter();
        let alarm = EmptyAlarm {
            event_id: "alarm:x:2026-01-02T03:15:00.000+0000".to_owned(),
            alarm_name: "iamwatchd-iam-changes".to_owned(),
            reason: "Threshold Crossed".to_owned(),
            account: Some("123456789012".to_owned()),
            state_change_time: Utc::now(),
            window: (Utc::now(), Utc::now()),
            log_group: "group".to_owned(),
            region: "us-east-1".to_owned(),
            pattern: "IAM changes",
        };
        assert!(reporter.empty_alarm(alarm.clone()).await.unwrap());
        assert!(!reporter.empty_alarm(alarm).await.unwrap(), "re-delivered");
        assert_eq!(queued(&reporter).await.len(), 1);
    }
}
