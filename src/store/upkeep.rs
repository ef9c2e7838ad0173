//! The store's upkeep: what the alarm path has not confirmed (the health check reads it) and
//! the events old enough to forget.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{millis, seen_event_row, Result, SeenEvent, Store, StoreError};

impl Store {
    /// [`Store::unconfirmed_between`] since the beginning of time (the tests' shorthand).
    #[cfg(test)]
    pub(crate) fn unconfirmed(
        &self,
        seen_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<SeenEvent>> {
        self.unconfirmed_between(DateTime::<Utc>::UNIX_EPOCH, seen_before, limit)
    }

    /// Events first reported by another path (poller, scan) between `seen_after` and
    /// `seen_before` (both inclusive) that the alarm path has not confirmed, oldest first, at
    /// most `limit`: the pipeline-health check uses them to notice a broken or tampered
    /// trail → filter → alarm path. It looks at recent changes only, so an incident ends once
    /// the alarm path works again instead of lasting until the old events are pruned.
    pub(crate) fn unconfirmed_between(
        &self,
        seen_after: DateTime<Utc>,
        seen_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<SeenEvent>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT event_id, first_seen_at, event_time, first_path, confirmed_by_alarm_at, \
                 event_name, severity FROM seen_event \
                 WHERE first_path IN ('poller', 'scan') AND confirmed_by_alarm_at IS NULL \
                   AND first_seen_at <= ?1 AND first_seen_at >= ?3 \
                 ORDER BY first_seen_at, event_id LIMIT ?2",
            )
            .map_err(self.err("reading unconfirmed events"))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(
                params![millis(seen_before), limit, millis(seen_after)],
                seen_event_row,
            )
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.err("reading unconfirmed events"))?;
        Ok(rows)
    }

    /// Forgets events whose `event_time` is more than `horizon` before `now` (normally
    /// [`crate::aws::LOOKUP_EVENTS_RETENTION`]: LookupEvents cannot return them again) and that have no
    /// pending notification; their sent or given-up outbox rows go with them. Returns how many
    /// events were forgotten.
    pub fn prune(&mut self, horizon: Duration, now: DateTime<Utc>) -> Result<usize> {
        let cutoff = millis(now).saturating_sub(super::duration_millis(horizon));
        let path = self.path.clone();
        let err = move |source| StoreError::Sqlite {
            path: path.clone(),
            op: "pruning old events",
            source,
        };
        let tx = self.write()?;
        let n = tx
            .execute(
                "DELETE FROM seen_event WHERE event_time < ?1 AND NOT EXISTS ( \
                     SELECT 1 FROM outbox o WHERE o.event_id = seen_event.event_id \
                     AND o.sent_at IS NULL AND o.given_up_at IS NULL)",
                [cutoff],
            )
            .map_err(&err)?;
        tx.execute(
            "DELETE FROM burst WHERE last_at < ?1 AND NOT EXISTS ( \
                 SELECT 1 FROM outbox o WHERE o.burst_id = burst.id)",
            [cutoff],
        )
        .map_err(&err)?;
        tx.execute("DELETE FROM silenced WHERE seen_at < ?1", [cutoff])
            .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::aws::LOOKUP_EVENTS_RETENTION;
    use crate::event::SeenBy;
    use crate::store::NewEvent;

    #[test]
    fn prune_forgets_old_events_but_keeps_those_with_unsent_notifications() {
        let (_dir, mut store) = open();
        let day = 24 * 3600;
        for id in ["sent", "given-up"] {
            store
                .record_event(&event(id, SeenBy::Poller, 0), &notes(&["smtp"]))
                .unwrap();
        }
        // An old event found late (by a long sweep): its notification is still being retried.
        let late = NewEvent {
            event_time: t(0),
            ..event("pending", SeenBy::Scan, 89 * day)
        };
        store.record_event(&late, &notes(&["smtp"])).unwrap();
        store
            .record_event(&event("recent", SeenBy::Poller, 80 * day), &notes(&[]))
            .unwrap();
        let sent = store.due("smtp", t(0), 10).unwrap();
        assert_eq!(sent[0].event_id, "sent");
        store.mark_sent(sent[0].id, t(1)).unwrap();
        let given_up = store
            .expire(Duration::from_secs(day as u64), t(2 * day))
            .unwrap();
        assert_eq!(given_up.len(), 1);
        assert_eq!(given_up[0].event_id, "given-up");

        let now = t(91 * day);
        assert_eq!(store.prune(LOOKUP_EVENTS_RETENTION, now).unwrap(), 2);
        assert_eq!(store.seen("sent").unwrap(), None);
        assert_eq!(store.seen("given-up").unwrap(), None);
        assert!(store.seen("pending").unwrap().is_some());
        assert!(store.seen("recent").unwrap().is_some());
        let stats = store.stats().unwrap();
        assert_eq!(stats.seen, 2);
        assert_eq!(stats.pending, [("smtp".into(), 1)].into());
        // The given-up count is a counter: forgetting the row does not lower it.
        assert_eq!(stats.given_up, [("smtp".into(), 1)].into(), "{stats:?}");
        // The outbox rows of forgotten events went with them.
        let rows: i64 = store
            .conn
            .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1);
        assert_eq!(store.prune(LOOKUP_EVENTS_RETENTION, now).unwrap(), 0);
    }

    #[test]
    fn unconfirmed_lists_old_poller_events_the_alarm_never_confirmed() {
        let (_dir, mut store) = open();
        store
            .record_event(&event("confirmed", SeenBy::Poller, 0), &[])
            .unwrap();
        store
            .record_event(&event("confirmed", SeenBy::Alarm, 60), &[])
            .unwrap();
        store
            .record_event(&event("scan", SeenBy::Scan, 10), &[])
            .unwrap();
        store
            .record_event(&event("silent", SeenBy::Poller, 20), &[])
            .unwrap();
        store
            .record_event(&event("by-alarm", SeenBy::Alarm, 30), &[])
            .unwrap();
        store
            .record_event(&event("too-recent", SeenBy::Poller, 500), &[])
            .unwrap();
        let ids: Vec<_> = store
            .unconfirmed(t(100), 10)
            .unwrap()
            .into_iter()
            .map(|e| e.event_id)
            .collect();
        assert_eq!(ids, ["scan", "silent"]);
        assert_eq!(store.unconfirmed(t(100), 1).unwrap().len(), 1);
    }
}
