//! Cursors, seen events and the alarm path's confirmations: the dedup decision, made in the
//! same transaction that queues an event's notifications and moves the poller's cursor.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::{
    millis, seen_by_at, seen_event_row, time_at, Cursor, NewEvent, Notification, Recorded, Result,
    SeenBy, SeenEvent, SetCursor, Store, StoreError,
};

impl Store {
    /// The cursor called `name`, if one was ever set.
    pub fn cursor(&self, name: &str) -> Result<Option<Cursor>> {
        self.conn
            .query_row(
                "SELECT value, updated_at FROM cursor WHERE name = ?1",
                [name],
                |r| {
                    Ok(Cursor {
                        value: r.get(0)?,
                        updated_at: time_at(r, 1)?,
                    })
                },
            )
            .optional()
            .map_err(self.err("reading a cursor"))
    }

    /// Sets a cursor on its own (the tests' shorthand; the daemon moves cursors with
    /// [`Store::record_batch`], so a cursor cannot get ahead of its events).
    #[cfg(test)]
    pub(crate) fn set_cursor(&mut self, name: &str, value: &str, now: DateTime<Utc>) -> Result<()> {
        let path = self.path.clone();
        set_cursor(&self.conn, name, value, now).map_err(|source| StoreError::Sqlite {
            path,
            op: "setting a cursor",
            source,
        })
    }

    /// What the store knows about `event_id`.
    pub fn seen(&self, event_id: &str) -> Result<Option<SeenEvent>> {
        self.conn
            .query_row(
                "SELECT event_id, first_seen_at, event_time, first_path, confirmed_by_alarm_at, \
                 event_name, severity FROM seen_event WHERE event_id = ?1",
                [event_id],
                seen_event_row,
            )
            .optional()
            .map_err(self.err("reading a seen event"))
    }

    /// Which of `event_ids` the store has seen already (one indexed lookup each).
    pub(crate) fn already_seen(&self, event_ids: &[String]) -> Result<HashSet<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM seen_event WHERE event_id = ?1")
            .map_err(self.err("reading seen events"))?;
        let mut seen = HashSet::new();
        for id in event_ids {
            if stmt.exists([id]).map_err(self.err("reading seen events"))? {
                seen.insert(id.clone());
            }
        }
        Ok(seen)
    }

    /// One sighting through [`Store::record_batch`] (the tests' shorthand).
    #[cfg(test)]
    pub(crate) fn record_event(
        &mut self,
        event: &NewEvent,
        notifications: &[Notification],
    ) -> Result<Recorded> {
        let items = [(event.clone(), notifications.to_vec())];
        Ok(self.record_batch(&items, None)?[0])
    }

    /// Records several sightings and optionally moves a cursor, all in one transaction, so
    /// "seen + queued + cursor" is atomic: the cursor is never ahead of a committed event.
    /// For each sighting:
    /// - first sighting → the seen mark and one outbox row per notification ([`Recorded::New`]);
    /// - the alarm path sighting an event another path reported and the alarm had not yet
    ///   confirmed → `confirmed_by_alarm_at` is set, nothing queued ([`Recorded::Confirmed`]);
    /// - anything else → nothing written ([`Recorded::Duplicate`]).
    ///
    /// Returns one [`Recorded`] per item, in order (the same id twice in a batch: the second is
    /// a duplicate of the first). Notifier names must be unique within one item's list (they are
    /// configuration names); a repeat fails the whole batch and writes nothing.
    pub fn record_batch(
        &mut self,
        items: &[(NewEvent, Vec<Notification>)],
        cursor: Option<SetCursor<'_>>,
    ) -> Result<Vec<Recorded>> {
        self.record_batch_with(items, cursor, |_| Ok(()))
    }

    /// [`Store::record_batch`] with a hook called after each item, inside the transaction; an
    /// error from it aborts the whole batch. The tests use it to crash mid-batch.
    fn record_batch_with(
        &mut self,
        items: &[(NewEvent, Vec<Notification>)],
        cursor: Option<SetCursor<'_>>,
        mut after_item: impl FnMut(usize) -> rusqlite::Result<()>,
    ) -> Result<Vec<Recorded>> {
        let path = self.path.clone();
        let err = |op| {
            let path = path.clone();
            move |source| StoreError::Sqlite { path, op, source }
        };
        let tx = self.write()?;
        let mut results = Vec::with_capacity(items.len());
        for (i, (event, notifications)) in items.iter().enumerate() {
            results.push(record_one(&tx, event, notifications).map_err(err("recording an event"))?);
            after_item(i).map_err(err("recording an event"))?;
        }
        // Last, so that even a bug in the loop above can never leave the cursor moved alone.
        if let Some(c) = cursor {
            set_cursor(&tx, c.name, c.value, c.now).map_err(err("moving a cursor"))?;
        }
        tx.commit().map_err(err("committing events"))?;
        Ok(results)
    }
}

fn set_cursor(
    conn: &Connection,
    name: &str,
    value: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO cursor (name, value, updated_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        params![name, value, millis(now)],
    )?;
    Ok(())
}

/// The dedup decision and its writes, inside the caller's transaction.
fn record_one(
    tx: &Transaction<'_>,
    event: &NewEvent,
    notifications: &[Notification],
) -> rusqlite::Result<Recorded> {
    let existing: Option<(SeenBy, Option<i64>)> = tx
        .query_row(
            "SELECT first_path, confirmed_by_alarm_at FROM seen_event WHERE event_id = ?1",
            [&event.event_id],
            |r| Ok((seen_by_at(r, 0)?, r.get(1)?)),
        )
        .optional()?;
    match existing {
        Some((first_path, None))
            if event.seen_by == SeenBy::Alarm && first_path != SeenBy::Alarm =>
        {
            tx.execute(
                "UPDATE seen_event SET confirmed_by_alarm_at = ?2 WHERE event_id = ?1",
                params![event.event_id, millis(event.seen_at)],
            )?;
            Ok(Recorded::Confirmed { first_path })
        }
        Some((first_path, _)) => Ok(Recorded::Duplicate { first_path }),
        None => {
            tx.execute(
                "INSERT INTO seen_event (event_id, first_seen_at, event_time, first_path, \
                 event_name, severity) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    event.event_id,
                    millis(event.seen_at),
                    millis(event.event_time),
                    event.seen_by.as_str(),
                    event.event_name,
                    event.severity,
                ],
            )?;
            for n in notifications {
                let (burst, held, kind) = match &n.burst {
                    Some(plan) => {
                        let (id, held, kind) =
                            super::bursts::place(tx, &n.notifier, plan, event.seen_at)?;
                        (Some(id), held, kind)
                    }
                    None => (None, false, "single"),
                };
                tx.prepare_cached(
                    "INSERT INTO outbox (event_id, notifier, payload, created_at, \
                     next_attempt_at, burst_id, held, kind) VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    event.event_id,
                    n.notifier,
                    n.payload,
                    millis(event.seen_at),
                    burst,
                    held,
                    kind
                ])?;
            }
            Ok(Recorded::New)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn first_sighting_is_new_and_queues_every_notification() {
        let (_dir, mut store) = open();
        let r = store
            .record_event(&event("e1", SeenBy::Poller, 0), &notes(&["smtp", "sns"]))
            .unwrap();
        assert_eq!(r, Recorded::New);
        let seen = store.seen("e1").unwrap().unwrap();
        assert_eq!(seen.first_path, SeenBy::Poller);
        assert_eq!(seen.first_seen_at, t(0));
        assert_eq!(seen.event_time, t(-60));
        assert_eq!(seen.confirmed_by_alarm_at, None);
        let smtp = store.due("smtp", t(0), 10).unwrap();
        assert_eq!(smtp.len(), 1);
        assert_eq!(smtp[0].payload, b"payload for smtp");
        assert_eq!(smtp[0].attempts, 0);
        assert_eq!(store.due("sns", t(0), 10).unwrap().len(), 1);
    }

    #[test]
    fn already_seen_names_exactly_the_recorded_ids() {
        let (_dir, mut store) = open();
        store
            .record_event(&event("e1", SeenBy::Poller, 0), &notes(&["smtp"]))
            .unwrap();
        let ids = ["e1", "e2"].map(str::to_owned);
        let seen = store.already_seen(&ids).unwrap();
        assert_eq!(seen, HashSet::from(["e1".to_owned()]));
        assert!(store.already_seen(&[]).unwrap().is_empty());
    }

    #[test]
    fn second_sighting_by_the_same_path_is_a_duplicate_and_writes_nothing() {
        let (_dir, mut store) = open();
        store
            .record_event(&event("e1", SeenBy::Poller, 0), &notes(&["smtp"]))
            .unwrap();
        let r = store
            .record_event(&event("e1", SeenBy::Scan, 5), &notes(&["smtp", "sns"]))
            .unwrap();
        assert_eq!(
            r,
            Recorded::Duplicate {
                first_path: SeenBy::Poller
            }
        );
        assert_eq!(store.pending_counts().unwrap(), [("smtp".into(), 1)].into());
        assert_eq!(store.seen("e1").unwrap().unwrap().first_seen_at, t(0));
    }

    #[test]
    fn alarm_sighting_of_a_poller_event_confirms_it_once() {
        let (_dir, mut store) = open();
        store
            .record_event(&event("e1", SeenBy::Poller, 0), &notes(&["smtp"]))
            .unwrap();
        let r = store
            .record_event(&event("e1", SeenBy::Alarm, 300), &notes(&["smtp"]))
            .unwrap();
        assert_eq!(
            r,
            Recorded::Confirmed {
                first_path: SeenBy::Poller
            }
        );
        assert_eq!(
            store.seen("e1").unwrap().unwrap().confirmed_by_alarm_at,
            Some(t(300))
        );
        assert_eq!(store.pending_counts().unwrap(), [("smtp".into(), 1)].into());
        // A re-delivered alarm message confirms nothing new and keeps the first confirmation.
        let again = store
            .record_event(&event("e1", SeenBy::Alarm, 400), &notes(&["smtp"]))
            .unwrap();
        assert_eq!(
            again,
            Recorded::Duplicate {
                first_path: SeenBy::Poller
            }
        );
        assert_eq!(
            store.seen("e1").unwrap().unwrap().confirmed_by_alarm_at,
            Some(t(300))
        );
        assert_eq!(store.stats().unwrap().confirmed_by_alarm, 1);
    }

    #[test]
    fn poller_sighting_of_an_alarm_event_is_a_plain_duplicate() {
        let (_dir, mut store) = open();
        store
            .record_event(&event("e1", SeenBy::Alarm, 0), &notes(&["smtp"]))
            .unwrap();
        let r = store
            .record_event(&event("e1", SeenBy::Poller, 10), &notes(&["smtp"]))
            .unwrap();
        assert_eq!(
            r,
            Recorded::Duplicate {
                first_path: SeenBy::Alarm
            }
        );
        assert_eq!(
            store.seen("e1").unwrap().unwrap().confirmed_by_alarm_at,
            None
        );
        assert_eq!(store.pending_counts().unwrap(), [("smtp".into(), 1)].into());
    }

    #[test]
    fn the_same_event_twice_in_one_batch_is_queued_once() {
        let (_dir, mut store) = open();
        let e = event("e1", SeenBy::Poller, 0);
        let r = store
            .record_batch(
                &[(e.clone(), notes(&["smtp"])), (e, notes(&["smtp"]))],
                None,
            )
            .unwrap();
        assert_eq!(
            r,
            vec![
                Recorded::New,
                Recorded::Duplicate {
                    first_path: SeenBy::Poller
                }
            ]
        );
        assert_eq!(store.due("smtp", t(0), 10).unwrap().len(), 1);
    }

    #[test]
    fn a_crash_mid_batch_leaves_no_seen_mark_no_outbox_row_and_no_cursor_move() {
        let (_dir, mut store) = open();
        store
            .set_cursor("lookup:a:us-east-1:iam", "old", t(0))
            .unwrap();
        let batch = vec![
            (event("e1", SeenBy::Poller, 10), notes(&["smtp", "sns"])),
            (event("e2", SeenBy::Poller, 10), notes(&["smtp", "sns"])),
        ];
        let cursor = SetCursor {
            name: "lookup:a:us-east-1:iam",
            value: "new",
            now: t(10),
        };
        let crash = store.record_batch_with(&batch, Some(cursor), |i| {
            if i == 0 {
                Err(rusqlite::Error::InvalidQuery)
            } else {
                Ok(())
            }
        });
        assert!(matches!(crash, Err(StoreError::Sqlite { .. })), "{crash:?}");
        assert_eq!(store.seen("e1").unwrap(), None);
        assert!(store.pending_counts().unwrap().is_empty());
        assert_eq!(
            store
                .cursor("lookup:a:us-east-1:iam")
                .unwrap()
                .unwrap()
                .value,
            "old"
        );
        // Re-processing after the crash records everything as new.
        let r = store.record_batch(&batch, Some(cursor)).unwrap();
        assert_eq!(r, vec![Recorded::New, Recorded::New]);
        assert_eq!(
            store.pending_counts().unwrap(),
            [("smtp".into(), 2), ("sns".into(), 2)].into()
        );
        let c = store.cursor("lookup:a:us-east-1:iam").unwrap().unwrap();
        assert_eq!((c.value.as_str(), c.updated_at), ("new", t(10)));
    }

    #[test]
    fn a_transaction_dropped_with_the_store_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = Store::open(dir.path()).unwrap();
            let tx = store.write().unwrap();
            record_one(&tx, &event("e1", SeenBy::Poller, 0), &notes(&["smtp"])).unwrap();
            set_cursor(&tx, "c", "moved", t(0)).unwrap();
            // The process "dies" here: neither commit nor an explicit rollback.
            std::mem::drop(tx);
        }
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(store.seen("e1").unwrap(), None);
        assert_eq!(store.cursor("c").unwrap(), None);
        assert!(store.pending_counts().unwrap().is_empty());
        let r = store
            .record_event(&event("e1", SeenBy::Poller, 0), &notes(&["smtp"]))
            .unwrap();
        assert_eq!(r, Recorded::New);
    }

    #[test]
    fn everything_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = Store::open(dir.path()).unwrap();
            let cursor = SetCursor {
                name: "c",
                value: r#"{"next":"2026-01-01T00:00:00Z"}"#,
                now: t(5),
            };
            store
                .record_batch(
                    &[
                        (event("e1", SeenBy::Poller, 0), notes(&["smtp"])),
                        (event("e2", SeenBy::Alarm, 0), notes(&["smtp"])),
                    ],
                    Some(cursor),
                )
                .unwrap();
            let id = store.due("smtp", t(0), 1).unwrap()[0].id;
            store.mark_sent(id, t(1)).unwrap();
        }
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.cursor("c").unwrap().unwrap().value,
            r#"{"next":"2026-01-01T00:00:00Z"}"#
        );
        let due = store.due("smtp", t(10), 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].event_id, "e2");
        assert_eq!(
            store
                .record_event(&event("e1", SeenBy::Poller, 20), &[])
                .unwrap(),
            Recorded::Duplicate {
                first_path: SeenBy::Poller
            }
        );
    }
}
