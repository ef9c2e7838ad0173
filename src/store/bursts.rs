//! Bursts, per notifier: a run of findings from one principal in one account, each seen
//! within a window of the previous one. The first few of a burst are queued as usual; the
//! rest are *held*, and then carried by one digest: the first held row becomes the digest (its
//! payload replaced, so it keeps its place, its dedup key and its retries) and every other
//! held row is marked `covered_by` it, all in one transaction. A covered row is sent, given
//! up or expired with its digest, never on its own; so each finding is in exactly one message
//! per notifier.
//!
//! Which findings are never held (CRITICAL, tampering, the pipeline's own) is the caller's
//! decision ([`Hold`]); the store counts them in the burst as `separate`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use super::{duration_millis, millis, time_at, Result, Store, StoreError};

/// Whether a finding may wait for its burst's digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Always sent at once (CRITICAL, tampering); counted in the burst as sent separately.
    Never,
    /// Held once the burst has had its immediate findings.
    Normal,
    /// Held from the first finding (an allow-list entry with `digest = "always"`).
    Always,
}

/// How a notification takes part in a burst.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BurstPlan {
    /// The principal and account (`123456789012 arn:aws:iam::123456789012:role/ci`).
    pub key: String,
    /// Whether it may be held.
    pub hold: Hold,
    /// A finding later than this after the burst's previous one starts a new burst.
    pub window: Duration,
    /// Findings of a burst sent at once before the rest are held.
    pub immediate: u32,
}

/// A burst whose held rows are due for their digest.
#[derive(Debug, Clone)]
pub struct ReadyBurst {
    /// The burst.
    pub id: i64,
    /// Its principal and account.
    pub key: String,
    /// When its first and latest findings were seen.
    pub span: (DateTime<Utc>, DateTime<Utc>),
    /// The held rows, oldest first: (outbox id, payload).
    pub held: Vec<(i64, Vec<u8>)>,
    /// Payloads of the burst's findings sent at once although past its immediate ones.
    pub separate: Vec<Vec<u8>>,
    /// Events of the same principal and account the allow-list silenced within the span.
    pub silenced: u64,
}

/// Puts a notification for `notifier`, seen at `now`, into its burst; returns the burst, whether
/// the row is held, and its kind.
pub(super) fn place(
    tx: &Transaction<'_>,
    notifier: &str,
    plan: &BurstPlan,
    now: DateTime<Utc>,
) -> rusqlite::Result<(i64, bool, &'static str)> {
    let now_ms = millis(now);
    let window = duration_millis(plan.window);
    let open: Option<(i64, i64)> = tx
        .query_row(
            "SELECT id, findings FROM burst WHERE notifier = ?1 AND key = ?2 AND last_at >= ?3 \
             ORDER BY last_at DESC LIMIT 1",
            params![notifier, plan.key, now_ms.saturating_sub(window)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (id, findings) = match open {
        Some((id, findings)) => {
            tx.execute(
                "UPDATE burst SET findings = findings + 1, last_at = max(last_at, ?2) \
                 WHERE id = ?1",
                params![id, now_ms],
            )?;
            (id, findings + 1)
        }
        None => {
            tx.execute(
                "INSERT INTO burst (notifier, key, started_at, last_at, findings) \
                 VALUES (?1, ?2, ?3, ?3, 1)",
                params![notifier, plan.key, now_ms],
            )?;
            (tx.last_insert_rowid(), 1)
        }
    };
    let past_immediate = findings > i64::from(plan.immediate);
    let held = match plan.hold {
        Hold::Never => false,
        Hold::Normal => past_immediate,
        Hold::Always => true,
    };
    if held {
        tx.execute(
            "UPDATE burst SET first_held_at = coalesce(first_held_at, ?2) WHERE id = ?1",
            params![id, now_ms],
        )?;
    }
    let kind = match (held, plan.hold) {
        (false, Hold::Never) if past_immediate => "separate",
        _ => "single",
    };
    Ok((id, held, kind))
}

/// Burst `burst`'s hold period starts again at its oldest row still held (none: not holding):
/// rows held after a digest, or after a release, wait their own `max_delay`.
fn restart_hold(tx: &Transaction<'_>, burst: i64) -> rusqlite::Result<usize> {
    tx.execute(
        "UPDATE burst SET first_held_at = (SELECT min(created_at) FROM outbox \
         WHERE burst_id = ?1 AND held = 1) WHERE id = ?1",
        [burst],
    )
}

impl Store {
    /// Notes that the allow-list silenced event `event_id` of `key` at `now` (a digest counts
    /// them; an event seen again by a sweep is counted once).
    pub fn record_silenced(&mut self, event_id: &str, key: &str, now: DateTime<Utc>) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO silenced (event_id, key, seen_at) VALUES (?1, ?2, ?3)",
                params![event_id, key, millis(now)],
            )
            .map_err(self.err("counting a silenced event"))?;
        Ok(())
    }

    /// The bursts of `notifier` whose held rows are due for a digest at `now`: the burst ended
    /// (nothing for `window`), or the first held row has waited `max_delay`.
    pub fn ready_bursts(
        &self,
        notifier: &str,
        now: DateTime<Utc>,
        window: Duration,
        max_delay: Duration,
    ) -> Result<Vec<ReadyBurst>> {
        let now_ms = millis(now);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, key, started_at, last_at FROM burst \
                 WHERE notifier = ?1 AND first_held_at IS NOT NULL \
                   AND (last_at <= ?2 OR first_held_at <= ?3) ORDER BY first_held_at",
            )
            .map_err(self.err("reading bursts"))?;
        let bursts = stmt
            .query_map(
                params![
                    notifier,
                    now_ms.saturating_sub(duration_millis(window)),
                    now_ms.saturating_sub(duration_millis(max_delay))
                ],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        time_at(r, 2)?,
                        time_at(r, 3)?,
                    ))
                },
            )
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.err("reading bursts"))?;
        let mut ready = Vec::with_capacity(bursts.len());
        for (id, key, started, last) in bursts {
            let rows = |sql: &str| -> Result<Vec<(i64, Vec<u8>)>> {
                let mut stmt = self
                    .conn
                    .prepare_cached(sql)
                    .map_err(self.err("reading a burst"))?;
                let rows = stmt
                    .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(self.err("reading a burst"))?;
                Ok(rows)
            };
            let held = rows(
                "SELECT id, payload FROM outbox WHERE burst_id = ?1 AND held = 1 \
                 ORDER BY created_at, id",
            )?;
            let separate = rows(
                "SELECT id, payload FROM outbox WHERE burst_id = ?1 AND kind = 'separate' \
                 ORDER BY created_at, id",
            )?
            .into_iter()
            .map(|(_, payload)| payload)
            .collect();
            let silenced: i64 = self
                .conn
                .query_row(
                    "SELECT count(*) FROM silenced WHERE key = ?1 AND seen_at BETWEEN ?2 AND ?3",
                    params![key, millis(started), millis(last)],
                    |r| r.get(0),
                )
                .map_err(self.err("counting silenced events"))?;
            ready.push(ReadyBurst {
                id,
                key,
                span: (started, last),
                held,
                separate,
                silenced: silenced.max(0) as u64,
            });
        }
        Ok(ready)
    }

    /// Makes the first of `covered` (held rows of burst `burst`) the digest with `payload`,
    /// and marks the others as carried by it, in one transaction. Returns the digest's outbox
    /// id, or `None` when the rows are no longer held (another worker's digest took them).
    pub fn commit_digest(
        &mut self,
        burst: i64,
        covered: &[i64],
        payload: &[u8],
    ) -> Result<Option<i64>> {
        let Some((&digest, rest)) = covered.split_first() else {
            return Ok(None);
        };
        let path = self.path.clone();
        let err = move |source| StoreError::Sqlite {
            path: path.clone(),
            op: "committing a digest",
            source,
        };
        let tx = self.write()?;
        let still_held: i64 = tx
            .query_row(
                "SELECT count(*) FROM outbox WHERE burst_id = ?1 AND held = 1",
                [burst],
                |r| r.get(0),
            )
            .map_err(&err)?;
        if still_held < covered.len() as i64 {
            return Ok(None);
        }
        tx.execute(
            "UPDATE outbox SET payload = ?2, held = 0, kind = 'digest' WHERE id = ?1",
            params![digest, payload],
        )
        .map_err(&err)?;
        {
            let mut cover = tx
                .prepare_cached("UPDATE outbox SET held = 0, covered_by = ?2 WHERE id = ?1")
                .map_err(&err)?;
            for id in rest {
                cover.execute(params![id, digest]).map_err(&err)?;
            }
        }
        // Rows held after these start the next hold period of the same burst.
        restart_hold(&tx, burst).map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(Some(digest))
    }

    /// Lets go of burst `burst`'s one held row `id` as it is: a digest of one finding would
    /// only be that finding, later and in other words.
    pub fn release_held(&mut self, burst: i64, id: i64) -> Result<bool> {
        let path = self.path.clone();
        let err = move |source| StoreError::Sqlite {
            path: path.clone(),
            op: "releasing a held finding",
            source,
        };
        let tx = self.write()?;
        let released = tx
            .execute(
                "UPDATE outbox SET held = 0 WHERE id = ?1 AND burst_id = ?2 AND held = 1",
                params![id, burst],
            )
            .map_err(&err)?;
        restart_hold(&tx, burst).map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(released == 1)
    }

    /// Rows waiting for a digest, per notifier.
    pub(crate) fn held_counts(&self) -> Result<std::collections::BTreeMap<String, u64>> {
        self.counts(
            "SELECT notifier, count(*) FROM outbox \
             WHERE held = 1 AND sent_at IS NULL AND given_up_at IS NULL GROUP BY notifier",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::SeenBy;
    use super::*;

    const WINDOW: Duration = Duration::from_secs(60);
    const MAX_DELAY: Duration = Duration::from_secs(300);

    fn plan(hold: Hold) -> Vec<super::super::Notification> {
        vec![super::super::Notification {
            notifier: "mail".to_owned(),
            payload: b"{}".to_vec(),
            burst: Some(BurstPlan {
                key: "111122223333 arn:aws:iam::111122223333:role/ci".to_owned(),
                hold,
                window: WINDOW,
                immediate: 3,
            }),
        }]
    }

    /// Records finding `id` at `at` seconds.
    fn find(store: &mut Store, id: &str, at: i64, hold: Hold) {
        store
            .record_event(&event(id, SeenBy::Poller, at), &plan(hold))
            .unwrap();
    }

    fn due_ids(store: &Store, at: i64) -> Vec<String> {
        store
            .due("mail", t(at), 1000)
            .unwrap()
            .into_iter()
            .map(|r| r.event_id)
            .collect()
    }

    fn ready(store: &Store, at: i64) -> Vec<ReadyBurst> {
        store
            .ready_bursts("mail", t(at), WINDOW, MAX_DELAY)
            .unwrap()
    }

    #[test]
    fn the_first_three_go_at_once_the_rest_wait_for_one_digest() {
        let (_dir, mut store) = open();
        for i in 0..10 {
            find(&mut store, &format!("e{i}"), i * 10, Hold::Normal);
        }
        assert_eq!(due_ids(&store, 100), ["e0", "e1", "e2"]);
        assert!(ready(&store, 149).is_empty(), "the burst has not ended");
        let bursts = ready(&store, 150);
        assert_eq!(
            bursts.len(),
            1,
            "exactly at the window, the burst has ended"
        );
        let held: Vec<i64> = bursts[0].held.iter().map(|(id, _)| *id).collect();
        assert_eq!(held.len(), 7);
        let digest = store
            .commit_digest(bursts[0].id, &held, b"digest")
            .unwrap()
            .unwrap();
        assert!(ready(&store, 151).is_empty());
        let due = store.due("mail", t(151), 1000).unwrap();
        assert_eq!(due.len(), 4, "three singles and one digest");
        assert_eq!(due.last().unwrap().payload, b"digest");
        store.mark_sent(digest, t(152)).unwrap();
        assert_eq!(store.pending_counts().unwrap().get("mail"), Some(&3));
        assert_eq!(store.held_counts().unwrap().get("mail"), None);
    }

    #[test]
    fn a_gap_longer_than_the_window_starts_a_new_burst_so_a_slow_trickle_is_never_held() {
        let (_dir, mut store) = open();
        for (id, at) in [("a", 0), ("b", 60), ("c", 120), ("d", 181), ("e", 182)] {
            find(&mut store, id, at, Hold::Normal);
        }
        // a, b, c: one burst (each exactly within the window); d starts a new one.
        assert_eq!(due_ids(&store, 200), ["a", "b", "c", "d", "e"]);
        assert!(ready(&store, 400).is_empty(), "nothing was held");
    }

    #[test]
    fn critical_is_never_held_but_counts_and_a_digest_names_it() {
        let (_dir, mut store) = open();
        find(&mut store, "crit-first", 0, Hold::Never);
        for i in 1..5 {
            find(&mut store, &format!("e{i}"), i, Hold::Normal);
        }
        find(&mut store, "crit-late", 6, Hold::Never);
        assert_eq!(due_ids(&store, 7), ["crit-first", "e1", "e2", "crit-late"]);
        let bursts = ready(&store, 66);
        assert_eq!(bursts[0].held.len(), 2, "e3 and e4");
        assert_eq!(
            bursts[0].separate.len(),
            1,
            "crit-late, past the immediate ones"
        );
    }

    #[test]
    fn a_long_burst_is_digested_every_max_delay_and_always_holds_from_the_first() {
        let (_dir, mut store) = open();
        for i in 0..40 {
            find(&mut store, &format!("e{i}"), i * 10, Hold::Normal);
        }
        // e3 held at 30 s: its digest is due 300 s later although the burst goes on.
        assert!(ready(&store, 329).is_empty());
        assert_eq!(ready(&store, 330).len(), 1);

        let (_dir, mut store) = open();
        find(&mut store, "ci-1", 0, Hold::Always);
        assert!(due_ids(&store, 1).is_empty());
        let burst = ready(&store, 60).remove(0);
        assert_eq!(burst.held.len(), 1);
        assert!(store.release_held(burst.id, burst.held[0].0).unwrap());
        assert_eq!(
            due_ids(&store, 61),
            ["ci-1"],
            "one held finding goes out as itself"
        );
        assert!(ready(&store, 62).is_empty());
    }

    #[test]
    fn held_rows_survive_a_restart_and_resume_their_burst() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        for i in 0..5 {
            find(&mut store, &format!("e{i}"), i, Hold::Normal);
        }
        drop(store);
        let mut store = Store::open(dir.path()).unwrap();
        find(&mut store, "e5", 30, Hold::Normal);
        let bursts = ready(&store, 90);
        assert_eq!(bursts.len(), 1);
        assert_eq!(
            bursts[0].held.len(),
            3,
            "e3, e4 from before the restart and e5"
        );
        assert_eq!(bursts[0].span, (t(0), t(30)));
    }

    #[test]
    fn a_digest_given_up_gives_up_what_it_carries_and_silenced_events_count_once() {
        let (_dir, mut store) = open();
        for i in 0..6 {
            find(&mut store, &format!("e{i}"), i, Hold::Normal);
        }
        let key = "111122223333 arn:aws:iam::111122223333:role/ci";
        store.record_silenced("s1", key, t(2)).unwrap();
        store.record_silenced("s1", key, t(3)).unwrap();
        store.record_silenced("s2", "other", t(2)).unwrap();
        let burst = ready(&store, 65).remove(0);
        assert_eq!(burst.silenced, 1);
        let held: Vec<i64> = burst.held.iter().map(|(id, _)| *id).collect();
        let digest = store.commit_digest(burst.id, &held, b"d").unwrap().unwrap();
        assert_eq!(
            store.commit_digest(burst.id, &held, b"d").unwrap(),
            None,
            "a second digest of the same rows is refused"
        );
        store.give_up(digest, "HTTP 500", t(70)).unwrap();
        let stats = store.stats().unwrap();
        assert_eq!(stats.given_up.get("mail"), Some(&3));
    }
}
