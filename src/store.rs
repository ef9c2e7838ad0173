//! The daemon's durable state: cursors, every seen `eventID`, and the per-notifier outbox.
//!
//! This is where the delivery guarantee of `DESIGN.md` ("Delivery guarantees") is kept: an event
//! is marked seen and all of its notifications are queued **in one transaction**, optionally
//! together with the poller's cursor ([`Store::record_batch`]). So after any crash either all of
//! "seen + queued + cursor moved" happened or none of it did, and the cursor can never be ahead of
//! an event whose notifications are not committed. A notification is marked sent only after its
//! notifier accepted it ([`Store::mark_sent`]), so a crash repeats at most what was in flight.
//!
//! # Threading
//!
//! [`Store`] is a plain synchronous value that owns one SQLite connection. It is `Send` but not
//! `Sync`: the async service owns it from a single place (a dedicated thread fed by a channel, or
//! a `Mutex<Store>` used inside `tokio::task::spawn_blocking`) and never calls it directly on a
//! runtime worker, because every write waits for an `fsync`.
//!
//! # Durability settings
//!
//! WAL journal with `synchronous=FULL`. With `NORMAL`, a commit survives a process crash but the
//! last transactions may be rolled back by a power loss. That alone would be harmless for the
//! poller (cursor and events roll back together, the poller re-reads), but the daemon performs
//! irreversible acts right after a commit: it deletes the alarm path's SQS message once the
//! events it caused are "durably in the outbox" (issue 5) and it hands queued messages to
//! notifiers. A rolled-back commit after such an act loses an event. `FULL` syncs the WAL on every
//! commit; the daemon commits a handful of times per poll, so the cost is irrelevant.
//!
//! # Time
//!
//! Every operation takes the current time as an argument (tests drive it); times are stored as
//! Unix milliseconds (`INTEGER`) so comparisons and indexes are plain integer ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{
    params, Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};

pub use crate::event::SeenBy;

/// Where the daemon keeps its state unless configured otherwise (systemd's `StateDirectory=`).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/iamwatchd";

/// The database's file name inside the state directory.
pub const FILE_NAME: &str = "iamwatchd.sqlite3";

/// How long CloudTrail `LookupEvents` keeps events. A seen mark older than this can never be
/// needed again by the poller, so [`Store::prune`] may drop it.
pub const LOOKUP_EVENTS_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// How long a writer waits for another connection's lock (an operator's read-only inspection,
/// a checkpoint) before failing with "busy".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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
];

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// What went wrong with the state database, and what the operator can do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "state directory {path} does not exist or is not a directory: create it, writable by the \
         daemon's user (systemd's StateDirectory=iamwatchd does), or fix the configured state \
         directory"
    )]
    MissingDir { path: PathBuf },
    #[error("cannot open state database {path}: {source}{}", hint(.source))]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "state database {path} has schema version {found}, but this iamwatchd understands only \
         up to {supported}: it was written by a newer iamwatchd. Run that version, or move the \
         file away to start afresh (which forgets which events were already reported)"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error(
        "state database {path} has schema version {found}, which no iamwatchd writes: the file \
         belongs to something else. Point iamwatchd at its own state directory"
    )]
    ForeignSchema { path: PathBuf, found: i64 },
    #[error("state database {path}: {op} failed: {source}{}", hint(.source))]
    Sqlite {
        path: PathBuf,
        op: &'static str,
        source: rusqlite::Error,
    },
    #[error("state database {path}: no outbox row {id} (a bug: ids come from due())")]
    UnknownOutboxRow { path: PathBuf, id: i64 },
}

/// The operator's next step for the SQLite errors that have one.
fn hint(error: &rusqlite::Error) -> &'static str {
    match error.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => {
            "; the disk is full: free space on the state directory's filesystem"
        }
        Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen) => {
            "; check that the state directory and the files in it are writable by the daemon's \
             user"
        }
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            "; the file is not a usable iamwatchd database: move it away to start afresh (which \
             forgets which events were already reported)"
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            "; another process holds the database locked: is a second iamwatchd using the same \
             state directory?"
        }
        _ => "",
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A sighting of an event by one path, to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// CloudTrail's `eventID`, the deduplication key. Opaque text: a message that is not about
    /// one record (an alarm that fired with nothing found) uses an id of its own making.
    pub event_id: String,
    /// The record's `eventTime`; when a record has none, the caller passes the time it saw it.
    /// [`Store::prune`] ages events by this.
    pub event_time: DateTime<Utc>,
    pub event_name: String,
    /// The rules' severity, as text (kept for metrics and health queries).
    pub severity: String,
    pub seen_by: SeenBy,
    pub seen_at: DateTime<Utc>,
}

/// One rendered notification to queue, for one notifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The configured notifier's name (the outbox is per notifier).
    pub notifier: String,
    /// What the notifier layer will send; opaque to the store.
    pub payload: Vec<u8>,
}

/// What [`Store::record_event`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// First sighting: marked seen and every notification queued.
    New,
    /// The alarm path saw an event another path had reported: marked confirmed, nothing queued.
    Confirmed { first_path: SeenBy },
    /// Already seen (and, for an alarm sighting, already confirmed): nothing written.
    Duplicate { first_path: SeenBy },
}

/// A cursor's stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Opaque to the store: a timestamp, a JSON document, a token.
    pub value: String,
    pub updated_at: DateTime<Utc>,
}

/// A cursor to move in the same transaction as a batch of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorUpdate<'a> {
    pub name: &'a str,
    pub value: &'a str,
    pub now: DateTime<Utc>,
}

/// What the store knows about a seen event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenEvent {
    pub event_id: String,
    pub first_seen_at: DateTime<Utc>,
    pub event_time: DateTime<Utc>,
    pub first_path: SeenBy,
    pub confirmed_by_alarm_at: Option<DateTime<Utc>>,
    pub event_name: String,
    pub severity: String,
}

/// A pending outbox row, as handed to a notifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub event_id: String,
    pub notifier: String,
    pub payload: Vec<u8>,
    pub created_at: DateTime<Utc>,
    /// Failed attempts so far.
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// An outbox row [`Store::expire`] gave up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub id: i64,
    pub event_id: String,
    pub notifier: String,
    pub created_at: DateTime<Utc>,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// Numbers for `/metrics` and health.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub seen: u64,
    pub seen_by_path: BTreeMap<SeenBy, u64>,
    /// Events the alarm path confirmed after another path reported them.
    pub confirmed_by_alarm: u64,
    /// Notifications not yet sent nor given up, per notifier.
    pub pending: BTreeMap<String, u64>,
    /// Notifications given up by [`Store::expire`], per notifier.
    pub given_up: BTreeMap<String, u64>,
    /// The database file plus its write-ahead log, in bytes.
    pub db_size_bytes: u64,
}

/// Delay before the next attempt after `attempts` failed ones, on the default schedule:
/// 5 s, 10 s, 20 s, … doubling, capped at 15 minutes. No jitter: each notifier retries its own
/// queue one row at a time, so there is no herd to spread, and a fixed schedule is testable.
pub fn backoff(attempts: u32) -> Duration {
    backoff_with(
        attempts,
        Duration::from_secs(5),
        Duration::from_secs(15 * 60),
    )
}

/// [`backoff`] with its first delay and cap given (tests and configuration shorten them).
/// `attempts` counts failures so far; 0 and 1 both give `base`.
pub fn backoff_with(attempts: u32, base: Duration, cap: Duration) -> Duration {
    let doublings = attempts.saturating_sub(1).min(31);
    base.saturating_mul(1u32 << doublings).min(cap)
}

/// The state database. See the module documentation for the guarantees and threading.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_millis(idx: usize, ms: i64) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| rusqlite::Error::IntegralValueOutOfRange(idx, ms))
}

fn time_at(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
    from_millis(idx, row.get(idx)?)
}

fn opt_time_at(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    row.get::<_, Option<i64>>(idx)?
        .map(|ms| from_millis(idx, ms))
        .transpose()
}

fn seen_by_at(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<SeenBy> {
    let text: String = row.get(idx)?;
    text.parse().map_err(|e: String| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e.into())
    })
}

fn seen_event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SeenEvent> {
    Ok(SeenEvent {
        event_id: r.get(0)?,
        first_seen_at: time_at(r, 1)?,
        event_time: time_at(r, 2)?,
        first_path: seen_by_at(r, 3)?,
        confirmed_by_alarm_at: opt_time_at(r, 4)?,
        event_name: r.get(5)?,
        severity: r.get(6)?,
    })
}

fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// Opens (creating if needed) `iamwatchd.sqlite3` in `state_dir`, which must exist: a
    /// missing directory is more likely a wrong setting than a first start, and silently
    /// starting afresh elsewhere would forget what was already reported.
    pub fn open(state_dir: &Path) -> Result<Store> {
        if !state_dir.is_dir() {
            return Err(StoreError::MissingDir {
                path: state_dir.to_owned(),
            });
        }
        Store::open_file(&state_dir.join(FILE_NAME))
    }

    /// Opens (creating if needed) the database at `path`, applies the settings and migrates the
    /// schema. Refuses a schema newer than this build's.
    pub fn open_file(path: &Path) -> Result<Store> {
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        let mut store = Store {
            conn,
            path: path.to_owned(),
        };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    /// The database file's path (for log lines).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite {
            path: self.path.clone(),
            op,
            source,
        }
    }

    fn configure(&mut self) -> Result<()> {
        // The first statement that touches the file: a file that is not a database, or that
        // cannot be read, fails here, so report it as an open error.
        // Switching a new file to WAL needs an exclusive moment; SQLite answers "busy" at once
        // (without the busy handler) when another process is opening the same file, so retry
        // for as long as the busy timeout would have waited.
        let mut waited = Duration::ZERO;
        let mode: String = loop {
            match self
                .conn
                .pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0))
            {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy && waited < BUSY_TIMEOUT =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                    waited += Duration::from_millis(20);
                }
                other => {
                    break other.map_err(|source| StoreError::Open {
                        path: self.path.clone(),
                        source,
                    })?
                }
            }
        };
        if !mode.eq_ignore_ascii_case("wal") {
            // Some network filesystems cannot do WAL. Durability does not depend on it (the
            // rollback journal with synchronous=FULL is as safe), only concurrency does.
            tracing::warn!(path = %self.path.display(), %mode, "state database is not in WAL mode");
        }
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(self.err("setting synchronous=FULL"))?;
        self.conn
            .pragma_update(None, "foreign_keys", true)
            .map_err(self.err("enabling foreign keys"))?;
        Ok(())
    }

    fn migrate(&mut self) -> Result<()> {
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

    /// A write transaction. `IMMEDIATE` takes the write lock up front, so a concurrent reader
    /// can never make the upgrade fail with "busy" halfway through.
    fn write(&mut self) -> Result<Transaction<'_>> {
        let path = self.path.clone();
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(move |source| StoreError::Sqlite {
                path,
                op: "starting a transaction",
                source,
            })
    }

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

    /// Sets a cursor on its own (a window that held no events). When events were found, move
    /// the cursor with [`Store::record_batch`] instead, so it cannot get ahead of them.
    pub fn set_cursor(&mut self, name: &str, value: &str, now: DateTime<Utc>) -> Result<()> {
        let path = self.path.clone();
        set_cursor(&self.conn, name, value, now).map_err(|source| StoreError::Sqlite {
            path,
            op: "setting a cursor",
            source,
        })
    }

    /// What the store knows about `event_id` (lets a caller skip rendering for known events).
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

    /// Records one sighting, in one transaction:
    /// - first sighting → the seen mark and one outbox row per notification ([`Recorded::New`]);
    /// - the alarm path sighting an event another path reported and the alarm had not yet
    ///   confirmed → `confirmed_by_alarm_at` is set, nothing queued ([`Recorded::Confirmed`]);
    /// - anything else → nothing written ([`Recorded::Duplicate`]).
    pub fn record_event(
        &mut self,
        event: &NewEvent,
        notifications: &[Notification],
    ) -> Result<Recorded> {
        let items = [(event.clone(), notifications.to_vec())];
        Ok(self.record_batch(&items, None)?[0])
    }

    /// Records several sightings and optionally moves a cursor, all in one transaction, so
    /// "seen + queued + cursor" is atomic: the cursor is never ahead of a committed event.
    /// Returns one [`Recorded`] per item, in order (the same id twice in a batch: the second is
    /// a duplicate of the first). Notifier names must be unique within one item's list (they are
    /// configuration names); a repeat fails the whole batch and writes nothing.
    pub fn record_batch(
        &mut self,
        items: &[(NewEvent, Vec<Notification>)],
        cursor: Option<CursorUpdate<'_>>,
    ) -> Result<Vec<Recorded>> {
        self.record_batch_with(items, cursor, |_| Ok(()))
    }

    /// [`Store::record_batch`] with a hook called after each item, inside the transaction; an
    /// error from it aborts the whole batch. The tests use it to crash mid-batch.
    fn record_batch_with(
        &mut self,
        items: &[(NewEvent, Vec<Notification>)],
        cursor: Option<CursorUpdate<'_>>,
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

    /// Events first reported by another path (poller, scan) at or before `seen_before` that the
    /// alarm path has not confirmed, oldest first, at most `limit`: the pipeline-health check
    /// (issue 5) uses them to notice a broken or tampered trail → filter → alarm path.
    pub fn unconfirmed(&self, seen_before: DateTime<Utc>, limit: usize) -> Result<Vec<SeenEvent>> {
        self.unconfirmed_between(DateTime::<Utc>::UNIX_EPOCH, seen_before, limit)
    }

    /// [`Store::unconfirmed`] limited to events first seen at or after `seen_after`: the
    /// health check looks at recent changes only, so an incident ends once the alarm path
    /// works again instead of lasting until the old events are pruned.
    pub fn unconfirmed_between(
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

    /// Pending rows of `notifier` whose next attempt is due at `now`, oldest first, at most
    /// `limit`.
    pub fn due(&self, notifier: &str, now: DateTime<Utc>, limit: usize) -> Result<Vec<OutboxRow>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, event_id, notifier, payload, created_at, attempts, next_attempt_at, \
                 last_error FROM outbox \
                 WHERE notifier = ?1 AND next_attempt_at <= ?2 \
                   AND sent_at IS NULL AND given_up_at IS NULL \
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
    pub fn mark_sent(&mut self, id: i64, now: DateTime<Utc>) -> Result<()> {
        let changed = self
            .conn
            .execute(
                "UPDATE outbox SET sent_at = ?2, given_up_at = NULL WHERE id = ?1",
                params![id, millis(now)],
            )
            .map_err(self.err("marking a notification sent"))?;
        self.require_row(id, changed)
    }

    /// An attempt to send row `id` failed with `error`; retry at `next_attempt_at` (see
    /// [`backoff`]). Returns the number of failed attempts so far.
    pub fn mark_failed(
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
    pub fn expire(&mut self, max_age: Duration, now: DateTime<Utc>) -> Result<Vec<Expired>> {
        let cutoff = millis(now).saturating_sub(duration_millis(max_age));
        let mut stmt = self
            .conn
            .prepare_cached(
                "UPDATE outbox SET given_up_at = ?2 \
                 WHERE sent_at IS NULL AND given_up_at IS NULL AND created_at < ?1 \
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
        Ok(rows)
    }

    /// Pending notifications per notifier (only notifiers with some).
    pub fn pending_counts(&self) -> Result<BTreeMap<String, u64>> {
        self.counts(
            "SELECT notifier, count(*) FROM outbox \
             WHERE sent_at IS NULL AND given_up_at IS NULL GROUP BY notifier",
        )
    }

    fn counts(&self, sql: &str) -> Result<BTreeMap<String, u64>> {
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

    /// Forgets events whose `event_time` is more than `horizon` before `now` (normally
    /// [`LOOKUP_EVENTS_RETENTION`]: LookupEvents cannot return them again) and that have no
    /// pending notification; their sent or given-up outbox rows go with them. Returns how many
    /// events were forgotten.
    pub fn prune(&mut self, horizon: Duration, now: DateTime<Utc>) -> Result<usize> {
        let cutoff = millis(now).saturating_sub(duration_millis(horizon));
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
        tx.commit().map_err(&err)?;
        Ok(n)
    }

    /// Numbers for `/metrics`.
    pub fn stats(&self) -> Result<Stats> {
        let mut stats = Stats::default();
        for (path, n) in self.counts("SELECT first_path, count(*) FROM seen_event GROUP BY 1")? {
            let path: SeenBy = path.parse().map_err(|e: String| StoreError::Sqlite {
                path: self.path.clone(),
                op: "counting seen events",
                source: rusqlite::Error::FromSqlConversionFailure(
                    0,
                    rusqlite::types::Type::Text,
                    e.into(),
                ),
            })?;
            stats.seen += n;
            stats.seen_by_path.insert(path, n);
        }
        let confirmed: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM seen_event WHERE confirmed_by_alarm_at IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .map_err(self.err("counting confirmed events"))?;
        stats.confirmed_by_alarm = confirmed.max(0) as u64;
        stats.pending = self.pending_counts()?;
        stats.given_up = self.counts(
            "SELECT notifier, count(*) FROM outbox \
             WHERE sent_at IS NULL AND given_up_at IS NOT NULL GROUP BY notifier",
        )?;
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
            let mut insert = tx.prepare_cached(
                "INSERT INTO outbox (event_id, notifier, payload, created_at, next_attempt_at) \
                 VALUES (?1, ?2, ?3, ?4, ?4)",
            )?;
            for n in notifications {
                insert.execute(params![
                    event.event_id,
                    n.notifier,
                    n.payload,
                    millis(event.seen_at)
                ])?;
            }
            Ok(Recorded::New)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    fn event(id: &str, by: SeenBy, at: i64) -> NewEvent {
        NewEvent {
            event_id: id.to_owned(),
            event_time: t(at - 60),
            event_name: "CreateUser".to_owned(),
            severity: "high".to_owned(),
            seen_by: by,
            seen_at: t(at),
        }
    }

    fn notes(names: &[&str]) -> Vec<Notification> {
        names
            .iter()
            .map(|n| Notification {
                notifier: (*n).to_owned(),
                payload: format!("payload for {n}").into_bytes(),
            })
            .collect()
    }

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn store_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<Store>();
    }

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
        let cursor = CursorUpdate {
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
            let cursor = CursorUpdate {
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
        let retry_at = t(2) + chrono::Duration::from_std(backoff(1)).unwrap();
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
    fn backoff_doubles_from_five_seconds_to_a_fifteen_minute_cap() {
        let secs: Vec<u64> = (0..12).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [5, 5, 10, 20, 40, 80, 160, 320, 640, 900, 900, 900]);
        assert_eq!(backoff(u32::MAX), Duration::from_secs(900));
        assert_eq!(
            backoff_with(3, Duration::from_millis(100), Duration::from_secs(1)),
            Duration::from_millis(400)
        );
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
        assert!(stats.given_up.is_empty(), "{stats:?}");
        // The outbox rows of forgotten events went with them.
        let rows: i64 = store
            .conn
            .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1);
        assert_eq!(store.prune(LOOKUP_EVENTS_RETENTION, now).unwrap(), 0);
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
        drop(store);
        // Opening again does not re-run the migration.
        Store::open(dir.path()).unwrap();
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

    #[test]
    fn two_processes_opening_a_new_store_at_once_both_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let openers: Vec<_> = (0..8)
            .map(|_| {
                let path = dir.path().to_owned();
                std::thread::spawn(move || Store::open(&path).map(|_| ()))
            })
            .collect();
        for opener in openers {
            opener.join().unwrap().expect("concurrent open");
        }
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
    fn a_missing_directory_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = Store::open(&missing).unwrap_err();
        assert!(matches!(err, StoreError::MissingDir { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&missing.display().to_string()), "{msg}");
        assert!(msg.contains("StateDirectory"), "{msg}");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE_NAME);
        std::fs::write(&file, vec![b'x'; 4096]).unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&file.display().to_string()), "{msg}");
        assert!(msg.contains("move it away"), "{msg}");
    }

    #[test]
    fn a_read_only_directory_is_named_in_the_error() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
        if std::fs::write(dir.path().join("probe"), b"").is_ok() {
            // root ignores permission bits; a_database_path_that_cannot_be_opened_is_named
            // covers the same error path for root.
            eprintln!("skipped: permission bits do not apply to this user");
            return;
        }
        let err = Store::open(dir.path()).unwrap_err();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let msg = err.to_string();
        assert!(
            msg.contains(&dir.path().join(FILE_NAME).display().to_string()),
            "{msg}"
        );
        assert!(msg.contains("writable by the daemon's user"), "{msg}");
    }

    #[test]
    fn a_database_path_that_cannot_be_opened_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE_NAME);
        std::fs::create_dir(&file).unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&file.display().to_string()), "{msg}");
        assert!(msg.contains("writable by the daemon's user"), "{msg}");
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
}
