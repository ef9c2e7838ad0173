//! The schema, and its migrations: applied in order when a store is opened, each in its own
//! transaction, so a crash mid-migration leaves the previous version intact.

use rusqlite::TransactionBehavior;

use super::{Result, Store, StoreError};

/// The schema, one step per version: `MIGRATIONS[n]` takes `user_version` n to n + 1. Steps are
/// only ever appended; a released step is never edited.
const MIGRATIONS: &[&str] = &[
    // 0 → 1: the initial schema.
    r#"
    CREATE TABLE cursor (
        name       TEXT PRIMARY KEY,
        value      TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE seen_event (
        event_id              TEXT PRIMARY KEY,
        first_seen_at         INTEGER NOT NULL,
        event_time            INTEGER NOT NULL,
        first_path            TEXT NOT NULL CHECK (first_path IN ('poller', 'alarm', 'scan')),
        confirmed_by_alarm_at INTEGER,
        event_name            TEXT NOT NULL,
        severity              TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
    -- prune() scans by event time.
    CREATE INDEX seen_event_time ON seen_event (event_time);
    -- health checks: events one path reported that the alarm path has not confirmed.
    CREATE INDEX seen_event_unconfirmed ON seen_event (first_path, first_seen_at)
        WHERE confirmed_by_alarm_at IS NULL;

    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY,
        event_id        TEXT NOT NULL REFERENCES seen_event (event_id) ON DELETE CASCADE,
        notifier        TEXT NOT NULL,
        payload         BLOB NOT NULL,
        created_at      INTEGER NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_error      TEXT,
        sent_at         INTEGER,
        given_up_at     INTEGER,
        UNIQUE (event_id, notifier)
    ) STRICT;
    -- due() and pending_counts(): only pending rows are indexed, so the index stays small.
    CREATE INDEX outbox_pending ON outbox (notifier, next_attempt_at)
        WHERE sent_at IS NULL AND given_up_at IS NULL;
    CREATE INDEX outbox_pending_age ON outbox (created_at)
        WHERE sent_at IS NULL AND given_up_at IS NULL;
    "#,
    // 1 → 2: bursts. A run of findings from one principal in one account, per notifier; past
    // its first few, its rows are held and then carried by one digest row (see bursts.rs).
    r#"
    CREATE TABLE burst (
        id            INTEGER PRIMARY KEY,
        notifier      TEXT NOT NULL,
        key           TEXT NOT NULL,
        started_at    INTEGER NOT NULL,
        last_at       INTEGER NOT NULL,
        findings      INTEGER NOT NULL,
        first_held_at INTEGER
    ) STRICT;
    CREATE INDEX burst_open ON burst (notifier, key, last_at);
    CREATE INDEX burst_holding ON burst (notifier, first_held_at) WHERE first_held_at IS NOT NULL;

    -- held: 1 while the row waits for its burst's digest; covered_by: the digest row that
    -- carries it; kind: 'single', 'separate' (never held, inside a burst) or 'digest'.
    ALTER TABLE outbox ADD COLUMN burst_id INTEGER;
    ALTER TABLE outbox ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN covered_by INTEGER;
    ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'single';
    CREATE INDEX outbox_burst ON outbox (burst_id) WHERE burst_id IS NOT NULL;
    CREATE INDEX outbox_covered ON outbox (covered_by) WHERE covered_by IS NOT NULL;

    -- Events the allow-list silenced, by principal and account: a digest says how many fell
    -- in its span.
    CREATE TABLE silenced (
        event_id TEXT PRIMARY KEY,
        key      TEXT NOT NULL,
        seen_at  INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX silenced_key ON silenced (key, seen_at);
    "#,
    // 2 → 3: the policy snapshots the analysis compares changes with, and the seed record.
    r#"
    CREATE TABLE policy_snapshot (
        account  TEXT NOT NULL,
        kind     TEXT NOT NULL,
        entity   TEXT NOT NULL,
        name     TEXT NOT NULL,
        document TEXT NOT NULL,
        as_of    INTEGER NOT NULL,
        source   TEXT NOT NULL CHECK (source IN ('event', 'seed')),
        PRIMARY KEY (account, kind, entity, name)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE policy_seed (
        account   TEXT PRIMARY KEY,
        seeded_at INTEGER NOT NULL,
        complete  INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    "#,
    // 3 → 4: counts kept as rows change, so that `/metrics`, `/healthz` and the health tick
    // read a handful of rows instead of counting the whole seen_event table (O(1), whatever
    // the store holds), and a persistent, monotonic count of given-up notifications, which
    // pruning old outbox rows no longer lowers. Names: `seen:<path>` (events by the path that
    // saw them first), `confirmed` (confirmed by the alarm path), `given_up:<notifier>`. The
    // triggers run inside the statement that changes the rows, so a count is always in the
    // same transaction as its change.
    r#"
    CREATE TABLE counter (
        name  TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;

    INSERT INTO counter (name, value)
        SELECT 'seen:' || first_path, count(*) FROM seen_event GROUP BY first_path;
    INSERT INTO counter (name, value)
        SELECT 'confirmed', count(*) FROM seen_event WHERE confirmed_by_alarm_at IS NOT NULL;
    INSERT INTO counter (name, value)
        SELECT 'given_up:' || notifier, count(*) FROM outbox
        WHERE sent_at IS NULL AND given_up_at IS NOT NULL GROUP BY notifier;

    CREATE TRIGGER seen_event_counted AFTER INSERT ON seen_event BEGIN
        INSERT OR IGNORE INTO counter (name, value) VALUES ('seen:' || NEW.first_path, 0);
        UPDATE counter SET value = value + 1 WHERE name = 'seen:' || NEW.first_path;
        INSERT OR IGNORE INTO counter (name, value) VALUES ('confirmed', 0);
        UPDATE counter SET value = value + (NEW.confirmed_by_alarm_at IS NOT NULL)
            WHERE name = 'confirmed';
    END;
    CREATE TRIGGER seen_event_uncounted AFTER DELETE ON seen_event BEGIN
        UPDATE counter SET value = value - 1 WHERE name = 'seen:' || OLD.first_path;
        UPDATE counter SET value = value - (OLD.confirmed_by_alarm_at IS NOT NULL)
            WHERE name = 'confirmed';
    END;
    CREATE TRIGGER seen_event_recounted AFTER UPDATE OF first_path, confirmed_by_alarm_at
        ON seen_event BEGIN
        UPDATE counter SET value = value - 1 WHERE name = 'seen:' || OLD.first_path;
        INSERT OR IGNORE INTO counter (name, value) VALUES ('seen:' || NEW.first_path, 0);
        UPDATE counter SET value = value + 1 WHERE name = 'seen:' || NEW.first_path;
        INSERT OR IGNORE INTO counter (name, value) VALUES ('confirmed', 0);
        UPDATE counter SET value = value + (NEW.confirmed_by_alarm_at IS NOT NULL)
            - (OLD.confirmed_by_alarm_at IS NOT NULL) WHERE name = 'confirmed';
    END;
    -- Counted when given up and never uncounted: a counter only goes up.
    CREATE TRIGGER outbox_given_up AFTER UPDATE OF given_up_at ON outbox
        WHEN OLD.given_up_at IS NULL AND NEW.given_up_at IS NOT NULL AND NEW.sent_at IS NULL
    BEGIN
        INSERT OR IGNORE INTO counter (name, value) VALUES ('given_up:' || NEW.notifier, 0);
        UPDATE counter SET value = value + 1 WHERE name = 'given_up:' || NEW.notifier;
    END;
    "#,
];

/// The schema version this build writes and understands.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

impl Store {
    /// Brings the schema up to [`SCHEMA_VERSION`]; refuses one that is newer or foreign.
    pub(super) fn migrate(&mut self) -> Result<()> {
        let found: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(self.err("reading the schema version"))?;
        if found < 0 {
            return Err(StoreError::ForeignSchema {
                path: self.path.clone(),
                found,
            });
        }
        if found > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: self.path.clone(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        let path = self.path.clone();
        let err = |op| {
            let path = path.clone();
            move |source| StoreError::Sqlite { path, op, source }
        };
        for (from, step) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            // One transaction per step, including the version bump: a crash mid-migration leaves
            // the previous version intact.
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(err("starting the schema migration"))?;
            // Another process (a scan beside the daemon) may have migrated while we waited for
            // the write lock: re-read the version under the lock and skip what is done.
            let now: i64 = tx
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(err("reading the schema version"))?;
            if now > from as i64 {
                continue;
            }
            tx.execute_batch(step)
                .map_err(err("migrating the schema"))?;
            tx.pragma_update(None, "user_version", from as i64 + 1)
                .map_err(err("recording the schema version"))?;
            tx.commit()
                .map_err(err("committing the schema migration"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::event::SeenBy;
    use crate::store::FILE_NAME;
    use rusqlite::Connection;

    #[test]
    fn an_empty_file_is_migrated_to_the_current_schema() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"").unwrap();
        let store = Store::open(dir.path()).unwrap();
        let version: i64 = store
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let mode: String = store
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = store
            .conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        let cache: i64 = store
            .conn
            .pragma_query_value(None, "cache_size", |r| r.get(0))
            .unwrap();
        assert_eq!(
            cache,
            -crate::store::PAGE_CACHE_KIB,
            "the page cache in KiB"
        );
        drop(store);
        // Opening again does not re-run the migration.
        Store::open(dir.path()).unwrap();
    }

    #[test]
    fn a_newer_schema_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE_NAME);
        Connection::open(&file)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(
            matches!(err, StoreError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains(&file.display().to_string()), "{msg}");
        assert!(msg.contains("newer iamwatchd"), "{msg}");
    }

    #[test]
    fn a_negative_schema_version_is_refused_as_foreign() {
        let dir = tempfile::tempdir().unwrap();
        Connection::open(dir.path().join(FILE_NAME))
            .unwrap()
            .pragma_update(None, "user_version", -3)
            .unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(
            matches!(err, StoreError::ForeignSchema { found: -3, .. }),
            "{err:?}"
        );
    }

    /// A store written by the previous version (schema 2), with events of both paths, a
    /// confirmation and given-up notifications, keeps its numbers across the upgrade; after
    /// it, pruning lowers the stored events but never the given-up count.
    #[test]
    fn the_counts_survive_the_upgrade_from_schema_2_and_given_up_never_goes_down() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
            for step in &MIGRATIONS[..2] {
                conn.execute_batch(step).unwrap();
            }
            conn.pragma_update(None, "user_version", 2).unwrap();
            conn.execute_batch(
                "INSERT INTO seen_event VALUES ('old', 1, 1, 'poller', NULL, 'CreateUser', 'high');
                 INSERT INTO seen_event VALUES ('p2', 2, 9000000000000, 'poller', 3, 'CreateUser', 'high');
                 INSERT INTO seen_event VALUES ('a1', 2, 9000000000000, 'alarm', NULL, 'CreateUser', 'high');
                 INSERT INTO outbox (event_id, notifier, payload, created_at, next_attempt_at, given_up_at)
                     VALUES ('old', 'smtp', x'00', 1, 1, 5);
                 INSERT INTO outbox (event_id, notifier, payload, created_at, next_attempt_at, given_up_at)
                     VALUES ('p2', 'smtp', x'00', 1, 1, 5);
                 INSERT INTO outbox (event_id, notifier, payload, created_at, next_attempt_at)
                     VALUES ('a1', 'smtp', x'00', 1, 1);",
            )
            .unwrap();
        }
        let mut store = Store::open(dir.path()).unwrap();
        let stats = store.stats().unwrap();
        assert_eq!(stats.seen, 3);
        assert_eq!(
            stats.seen_by_path,
            [(SeenBy::Poller, 2), (SeenBy::Alarm, 1)].into()
        );
        assert_eq!(stats.confirmed_by_alarm, 1);
        assert_eq!(stats.given_up, [("smtp".into(), 2)].into());
        assert_eq!(stats.pending, [("smtp".into(), 1)].into());

        // Pruning deletes 'old' and, with it, its given-up outbox row.
        let pruned = store
            .prune(std::time::Duration::from_secs(60), t(0))
            .unwrap();
        assert_eq!(pruned, 1);
        let after = store.stats().unwrap();
        assert_eq!(
            after.seen_by_path,
            [(SeenBy::Poller, 1), (SeenBy::Alarm, 1)].into()
        );
        assert_eq!(
            after.given_up,
            [("smtp".into(), 2)].into(),
            "a counter never goes down"
        );
    }

    #[test]
    fn lookups_use_indexes() {
        let (_dir, store) = open();
        let plan = |sql: &str| -> String {
            let mut stmt = store
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<rusqlite::Result<Vec<_>>>()
                .unwrap();
            rows.join("; ")
        };
        let by_id = plan("SELECT first_path FROM seen_event WHERE event_id = 'x'");
        assert!(by_id.contains("PRIMARY KEY"), "{by_id}");
        let due = plan(
            "SELECT id FROM outbox WHERE notifier = 'smtp' AND next_attempt_at <= 5 \
             AND sent_at IS NULL AND given_up_at IS NULL",
        );
        assert!(due.contains("outbox_pending"), "{due}");
        let unconfirmed = plan(
            "SELECT event_id FROM seen_event WHERE first_path IN ('poller', 'scan') \
             AND confirmed_by_alarm_at IS NULL AND first_seen_at <= 5",
        );
        assert!(
            unconfirmed.contains("seen_event_unconfirmed"),
            "{unconfirmed}"
        );
        let prune = plan("SELECT event_id FROM seen_event WHERE event_time < 5");
        assert!(prune.contains("seen_event_time"), "{prune}");
    }
}
