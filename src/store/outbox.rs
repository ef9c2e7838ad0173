//! The per-notifier outbox: what is due, what was sent, what failed (and when to retry it),
//! what was given up, and the numbers `/metrics` shows.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{
    duration_millis, millis, time_at, Expired, OutboxRow, Result, SeenBy, Stats, Store, StoreError,
};

impl Store {
    /// Pending rows of `notifier` whose next attempt is due at `now`, oldest first, at most
    /// `limit`.
    pub(crate) fn due(
        &self,
        notifier: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, event_id, notifier, payload, created_at, attempts, next_attempt_at, \
                 last_error FROM outbox \
                 WHERE notifier = ?1 AND next_attempt_at <= ?2 \
                   AND sent_at IS NULL AND given_up_at IS NULL \
                   AND held = 0 AND covered_by IS NULL \
                 ORDER BY created_at, id LIMIT ?3",
            )
            .map_err(self.err("reading the outbox"))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![notifier, millis(now), limit], |r| {
                Ok(OutboxRow {
                    id: r.get(0)?,
                    event_id: r.get(1)?,
                    notifier: r.get(2)?,
                    payload: r.get(3)?,
                    created_at: time_at(r, 4)?,
                    attempts: r.get(5)?,
                    next_attempt_at: time_at(r, 6)?,
                    last_error: r.get(7)?,
                })
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.err("reading the outbox"))?;
        Ok(rows)
    }

    /// The notifier accepted row `id`. Recorded even if [`Store::expire`] gave up on the row
    /// meanwhile: it was delivered, and that is what matters.
    pub(crate) fn mark_sent(&mut self, id: i64, now: DateTime<Utc>) -> Result<()> {
        let changed = self
            .conn
            .execute(
                "UPDATE outbox SET sent_at = ?2, given_up_at = NULL \
                 WHERE id = ?1 OR covered_by = ?1",
                params![id, millis(now)],
            )
            .map_err(self.err("marking a notification sent"))?;
        self.require_row(id, changed)
    }

    /// An attempt to send row `id` failed with `error`; retry at `next_attempt_at` (see
    /// the delivery worker's backoff). Returns the number of failed attempts so far.
    pub(crate) fn mark_failed(
        &mut self,
        id: i64,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<u32> {
        let attempts = self
            .conn
            .query_row(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 \
                 WHERE id = ?1 RETURNING attempts",
                params![id, error, millis(next_attempt_at)],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err("recording a failed attempt"))?;
        attempts.ok_or_else(|| StoreError::UnknownOutboxRow {
            path: self.path.clone(),
            id,
        })
    }

    /// Gives up on row `id` at once, with `error`: a send that may have been delivered must
    /// not be retried (see `NotifyError::Uncertain`). Counted with the other given-up rows.
    pub(crate) fn give_up(&mut self, id: i64, error: &str, now: DateTime<Utc>) -> Result<()> {
        let changed = self
            .conn
            .execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, given_up_at = ?3 \
                 WHERE (id = ?1 OR covered_by = ?1) AND sent_at IS NULL",
                params![id, error, millis(now)],
            )
            .map_err(self.err("giving up a notification"))?;
        self.require_row(id, changed)
    }

    fn require_row(&self, id: i64, changed: usize) -> Result<()> {
        if changed == 0 {
            return Err(StoreError::UnknownOutboxRow {
                path: self.path.clone(),
                id,
            });
        }
        Ok(())
    }

    /// Gives up on every pending row created more than `max_age` before `now` and returns them,
    /// oldest first. The caller must report each (an error log line and a metric): this is the
    /// only way a notification leaves the outbox unsent, and it must never be silent.
    pub(crate) fn expire(&mut self, max_age: Duration, now: DateTime<Utc>) -> Result<Vec<Expired>> {
        let cutoff = millis(now).saturating_sub(duration_millis(max_age));
        let mut stmt = self
            .conn
            .prepare_cached(
                "UPDATE outbox SET given_up_at = ?2 \
                 WHERE sent_at IS NULL AND given_up_at IS NULL AND created_at < ?1 \
                   AND held = 0 AND covered_by IS NULL \
                 RETURNING id, event_id, notifier, created_at, attempts, last_error",
            )
            .map_err(self.err("expiring old notifications"))?;
        let mut rows = stmt
            .query_map(params![cutoff, millis(now)], |r| {
                Ok(Expired {
                    id: r.get(0)?,
                    event_id: r.get(1)?,
                    notifier: r.get(2)?,
                    created_at: time_at(r, 3)?,
                    attempts: r.get(4)?,
                    last_error: r.get(5)?,
                })
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.err("expiring old notifications"))?;
        rows.sort_by_key(|e| (e.created_at, e.id));
        drop(stmt);
        // The findings a given-up digest carried are given up with it.
        let mut cover = self
            .conn
            .prepare_cached(
                "UPDATE outbox SET given_up_at = ?2 WHERE covered_by = ?1 AND sent_at IS NULL",
            )
            .map_err(self.err("expiring old notifications"))?;
        for row in &rows {
            cover
                .execute(params![row.id, millis(now)])
                .map_err(self.err("expiring old notifications"))?;
        }
        Ok(rows)
    }

    /// Pending notifications per notifier (only notifiers with some).
    pub(crate) fn pending_counts(&self) -> Result<BTreeMap<String, u64>> {
        self.counts(
            "SELECT notifier, count(*) FROM outbox \
             WHERE sent_at IS NULL AND given_up_at IS NULL AND covered_by IS NULL \
             GROUP BY notifier",
        )
    }

    pub(super) fn counts(&self, sql: &str) -> Result<BTreeMap<String, u64>> {
        let mut stmt = self
            .conn
            .prepare_cached(sql)
            .map_err(self.err("counting"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.err("counting"))?;
        Ok(rows
            .into_iter()
            .map(|(k, n)| (k, n.max(0) as u64))
            .collect())
    }

    /// Numbers for `/metrics`, `/healthz` and the health tick. O(1) in the size of the store:
    /// the event and given-up counts are the `counter` rows the schema's triggers keep (see
    /// schema.rs, 2 → 3), and pending and held notifications are read from the index of
    /// pending rows only.
    pub fn stats(&self) -> Result<Stats> {
        let mut stats = Stats::default();
        let counters = self.counts("SELECT name, value FROM counter")?;
        let bad_path = |e: String| StoreError::Sqlite {
            path: self.path.clone(),
            op: "reading the counters",
            source: rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                e.into(),
            ),
        };
        for (name, n) in counters {
            if let Some(path) = name.strip_prefix("seen:") {
                let path: SeenBy = path.parse().map_err(bad_path)?;
                stats.seen += n;
                if n > 0 {
                    stats.seen_by_path.insert(path, n);
                }
            } else if let Some(notifier) = name.strip_prefix("given_up:") {
                stats.given_up.insert(notifier.to_owned(), n);
            } else if name == "confirmed" {
                stats.confirmed_by_alarm = n;
            }
        }
        stats.pending = self.pending_counts()?;
        stats.held = self.held_counts()?;
        let pages: i64 = self
            .conn
            .pragma_query_value(None, "page_count", |r| r.get(0))
            .map_err(self.err("reading the database size"))?;
        let page_size: i64 = self
            .conn
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .map_err(self.err("reading the database size"))?;
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        stats.db_size_bytes = (pages.max(0) as u64) * (page_size.max(0) as u64) + wal_len;
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn due_is_oldest_first_and_respects_next_attempt_and_limit() {
        let (_dir, mut store) = open();
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            store
                .record_event(&event(id, SeenBy::Poller, i as i64), &notes(&["smtp"]))
                .unwrap();
        }
        let due = store.due("smtp", t(2), 10).unwrap();
        let ids: Vec<_> = due.iter().map(|r| r.event_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(store.due("smtp", t(2), 2).unwrap().len(), 2);
        // Not yet due: created at t(2), asked at t(1).
        assert_eq!(store.due("smtp", t(1), 10).unwrap().len(), 2);
        assert!(store.due("sns", t(2), 10).unwrap().is_empty());

        // "a" fails: it waits for its backoff, the others go first.
        let a = due[0].id;
        let retry_at = t(2) + chrono::Duration::seconds(5);
        assert_eq!(store.mark_failed(a, "421 try later", retry_at).unwrap(), 1);
        let ids: Vec<_> = store
            .due("smtp", t(3), 10)
            .unwrap()
            .into_iter()
            .map(|r| r.event_id)
            .collect();
        assert_eq!(ids, ["b", "c"]);
        let again = store.due("smtp", retry_at, 10).unwrap();
        assert_eq!(again[0].event_id, "a");
        assert_eq!(again[0].attempts, 1);
        assert_eq!(again[0].last_error.as_deref(), Some("421 try later"));
        assert_eq!(store.mark_failed(a, "timeout", retry_at).unwrap(), 2);

        store.mark_sent(due[1].id, t(3)).unwrap();
        let ids: Vec<_> = store
            .due("smtp", retry_at, 10)
            .unwrap()
            .into_iter()
            .map(|r| r.event_id)
            .collect();
        assert_eq!(ids, ["a", "c"]);
        assert_eq!(store.pending_counts().unwrap(), [("smtp".into(), 2)].into());
        assert!(matches!(
            store.mark_sent(9999, t(3)),
            Err(StoreError::UnknownOutboxRow { id: 9999, .. })
        ));
    }

    #[test]
    fn expire_gives_up_on_old_unsent_rows_and_returns_them() {
        let (_dir, mut store) = open();
        store
            .record_event(&event("old", SeenBy::Poller, 0), &notes(&["smtp", "sns"]))
            .unwrap();
        store
            .record_event(&event("new", SeenBy::Poller, 3000), &notes(&["smtp"]))
            .unwrap();
        let sns = store.due("sns", t(0), 1).unwrap()[0].id;
        store.mark_sent(sns, t(1)).unwrap();
        let smtp = store.due("smtp", t(0), 1).unwrap()[0].id;
        store
            .mark_failed(smtp, "connection refused", t(100))
            .unwrap();

        let expired = store.expire(Duration::from_secs(3600), t(3601)).unwrap();
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].event_id, "old");
        assert_eq!(expired[0].notifier, "smtp");
        assert_eq!(expired[0].attempts, 1);
        assert_eq!(expired[0].last_error.as_deref(), Some("connection refused"));
        // Given up: no longer due, counted apart; and reported only once.
        let due: Vec<_> = store
            .due("smtp", t(4000), 10)
            .unwrap()
            .into_iter()
            .map(|r| r.event_id)
            .collect();
        assert_eq!(due, ["new"]);
        assert!(store
            .expire(Duration::from_secs(3600), t(3602))
            .unwrap()
            .is_empty());
        let stats = store.stats().unwrap();
        assert_eq!(stats.given_up, [("smtp".into(), 1)].into());
        assert_eq!(stats.pending, [("smtp".into(), 1)].into());
    }

    #[test]
    fn stats_count_by_path_and_notifier() {
        let (_dir, mut store) = open();
        store
            .record_event(&event("p", SeenBy::Poller, 0), &notes(&["smtp", "sns"]))
            .unwrap();
        store
            .record_event(&event("a", SeenBy::Alarm, 0), &notes(&["smtp"]))
            .unwrap();
        store
            .record_event(&event("s", SeenBy::Scan, 0), &notes(&[]))
            .unwrap();
        let stats = store.stats().unwrap();
        assert_eq!(stats.seen, 3);
        assert_eq!(
            stats.seen_by_path,
            [(SeenBy::Poller, 1), (SeenBy::Alarm, 1), (SeenBy::Scan, 1)].into()
        );
        assert_eq!(
            stats.pending,
            [("smtp".into(), 2), ("sns".into(), 1)].into()
        );
        assert!(stats.db_size_bytes > 0);
    }
}
