//! The alarm path's health, watched from the store in both directions: changes the poller
//! reported that the alarm never confirmed (the trail, log group, filter, alarm, topic or queue
//! may be broken or tampered with), and alarm firings the poller never explained.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Reporter;
use crate::event::SeenBy;
use crate::notify::render;
use crate::store::StoreError;

/// The health check runs every 10 seconds (the store's counts and the unconfirmed changes), so
/// a broken alarm path is noticed soon after `alarm.confirm_within`.
pub(crate) const HEALTH_SCHEDULE: &str = "*/10 * * * * *";

/// Changes listed by name in a health message.
const HEALTH_EXAMPLES: usize = 5;

/// Unconfirmed changes looked at per check.
const HEALTH_LIMIT: usize = 1000;

/// The pipeline-health check of the alarm path, both directions.
///
/// - Changes the poller reported that the alarm path has not confirmed within
///   `confirm_within`: the trail, the log group, the filter, the alarm, the topic or the queue
///   may be broken or tampered with. Only changes first seen within `confirm_within` (at
///   least a minute) before that count, so an incident ends once the alarm path confirms again. An
///   incident is logged and (configurable) sent once, when it starts, under the synthetic
///   event ID `health:alarm-silent:<first eventID>` so a restart does not repeat it either.
///   An alarm that stays in ALARM across periods sends no new notification: changes in a
///   long burst can look unconfirmed; the message says so.
/// - Alarm firings the poller never explained (changes first seen by the alarm path) are
///   counted from the store and logged whenever the count grows.
pub(crate) struct Health {
    confirm_within: Duration,
    send: bool,
    incident: Option<String>,
    alarm_first: Option<u64>,
}

impl Health {
    /// A check that wants changes confirmed within `confirm_within`; `send` = a silent alarm
    /// path is also sent as a message, not only logged.
    pub(crate) fn new(confirm_within: Duration, send: bool) -> Health {
        Health {
            confirm_within,
            send,
            incident: None,
            alarm_first: None,
        }
    }

    /// One check at `now`; see the type's documentation.
    pub(crate) async fn check(
        &mut self,
        reporter: &Reporter,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let within = chrono::TimeDelta::from_std(self.confirm_within).unwrap_or_default();
        // Recent changes only (see the type's doc), but never a window shorter than a few
        // checks, or a change could slip between two of them.
        let lookback = within.max(chrono::TimeDelta::minutes(1));
        let (after, before) = (now - within - lookback, now - within);
        let (silent, stats) = reporter
            .store
            .with(move |s| {
                Ok((
                    s.unconfirmed_between(after, before, HEALTH_LIMIT)?,
                    s.stats()?,
                ))
            })
            .await?;

        let alarm_first = stats.seen_by_path.get(&SeenBy::Alarm).copied().unwrap_or(0);
        if self.alarm_first.is_some_and(|before| alarm_first > before) {
            tracing::warn!(
                alarm_first,
                "alarm firings the poller did not explain: changes (or \
                empty alarm windows) first reported by the alarm path since start-up grew"
            );
        }
        self.alarm_first = Some(alarm_first);

        let Some(first) = silent.first() else {
            if let Some(incident) = self.incident.take() {
                tracing::info!(%incident, "the alarm path confirms changes again");
            }
            return Ok(());
        };
        if self.incident.is_some() {
            return Ok(());
        }
        let event_id = format!("health:alarm-silent:{}", first.event_id);
        let examples: Vec<_> = silent
            .iter()
            .take(HEALTH_EXAMPLES)
            .map(|e| (e.event_name.clone(), e.event_id.clone(), e.first_seen_at))
            .collect();
        tracing::warn!(count = silent.len(), confirm_within = ?self.confirm_within,
            examples = ?examples.iter().map(|e| &e.0).collect::<Vec<_>>(),
            "alarm path silent: changes the poller reported were not confirmed by the alarm");
        self.incident = Some(event_id.clone());
        if self.send {
            let message = render::silent_alarm_path(&render::SilentAlarmPath {
                event_id: &event_id,
                count: silent.len(),
                examples: &examples,
                confirm_within: self.confirm_within,
            });
            // Recorded as the alarm path's own finding (see record_message).
            let new = reporter
                .record_message(&message, event_id, now, now)
                .await?;
            if new {
                // Not an alarm firing: keep it out of the count above.
                self.alarm_first = Some(alarm_first + 1);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::notify::Message;
    use crate::store::{NewEvent, Recorded};

    fn seen(id: &str, by: SeenBy, at: DateTime<Utc>) -> NewEvent {
        NewEvent {
            event_id: id.to_owned(),
            event_time: at,
            event_name: "CreateUser".to_owned(),
            severity: "MEDIUM".to_owned(),
            seen_by: by,
            seen_at: at,
        }
    }

    #[tokio::test]
    async fn a_silent_alarm_path_is_one_message_per_incident() {
        let (_dir, reporter) = reporter();
        let now = Utc::now();
        let minute = chrono::TimeDelta::minutes(1);
        let mut health = Health::new(Duration::from_secs(600), true);
        // Reported 11 minutes ago, never confirmed: an incident.
        let message = Message::for_test("MEDIUM", "iam-change", "CreateUser");
        let old = reporter.message_item(
            &message,
            seen("e-1", SeenBy::Poller, now - minute * 11),
            None,
        );
        let fresh =
            reporter.message_item(&message, seen("e-2", SeenBy::Poller, now - minute), None);
        reporter.record(vec![old, fresh], None).await.unwrap();
        health.check(&reporter, now).await.unwrap();
        health
            .check(&reporter, now + chrono::TimeDelta::seconds(10))
            .await
            .unwrap();
        let ids = queued(&reporter).await;
        assert_eq!(
            ids.iter()
                .filter(|id| id.starts_with("health:"))
                .collect::<Vec<_>>(),
            ["health:alarm-silent:e-1"],
            "once, not every check"
        );
        // A fresh daemon (restart) re-detects the same incident: the event ID dedups it.
        let mut restarted = Health::new(Duration::from_secs(600), true);
        restarted.check(&reporter, now).await.unwrap();
        assert_eq!(queued(&reporter).await.len(), ids.len());

        // The alarm confirms both: the incident ends.
        let confirm = vec![
            reporter.message_item(&message, seen("e-1", SeenBy::Alarm, now), None),
            reporter.message_item(&message, seen("e-2", SeenBy::Alarm, now), None),
        ];
        let results = reporter.record(confirm, None).await.unwrap();
        assert!(results
            .iter()
            .all(|r| matches!(r, Recorded::Confirmed { .. })));
        health.check(&reporter, now + minute * 20).await.unwrap();
        assert_eq!(health.incident, None);
    }
}
