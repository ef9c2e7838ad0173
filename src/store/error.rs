//! What went wrong with the state database, and what the operator can do about it.

use std::path::PathBuf;

use rusqlite::ErrorCode;

/// What went wrong with the state database, and what the operator can do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The configured state directory is missing or not a directory.
    #[error(
        "state directory {path} does not exist or is not a directory: create it, writable by the \
         daemon's user (systemd's StateDirectory=iamwatchd does), or fix the configured state \
         directory"
    )]
    MissingDir {
        /// The state directory.
        path: PathBuf,
    },
    /// SQLite could not open the database file, or it is not a database.
    #[error("cannot open state database {path}: {source}{}", hint(.source))]
    Open {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The file is not an SQLite database, or SQLite found it damaged. Never re-created
    /// silently: a fresh store would forget what was reported and re-send up to 90 days.
    #[error(
        "state database {path} is corrupt ({source}): restore it from a backup, or move it \
         aside (`mv {path} {path}.corrupt`) to start afresh, which forgets which events were \
         already reported and so reports the last 90 days' changes again"
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// Another connection holds the database locked for longer than the busy timeout.
    #[error(
        "state database {path} is locked ({source}): another iamwatchd (or a `scan --notify`) \
         is using this state directory; stop it, or give each daemon its own \
         store.state_directory. If none is running, a stale lock is held by a process that \
         has the file open (`fuser {path}` names it)"
    )]
    Locked {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The file's schema version is newer than this build understands.
    #[error(
        "state database {path} has schema version {found}, but this iamwatchd understands only \
         up to {supported}: it was written by a newer iamwatchd. Run that version, or move the \
         file away to start afresh (which forgets which events were already reported)"
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// The file's schema version (SQLite's `user_version`).
        found: i64,
        /// The newest schema version this build knows.
        supported: i64,
    },
    /// The file's schema version is negative, which iamwatchd never writes.
    #[error(
        "state database {path} has schema version {found}, which no iamwatchd writes: the file \
         belongs to something else. Point iamwatchd at its own state directory"
    )]
    ForeignSchema {
        /// The database file.
        path: PathBuf,
        /// The file's schema version (SQLite's `user_version`).
        found: i64,
    },
    /// An SQLite operation on the open database failed.
    #[error("state database {path}: {op} failed: {source}{}", hint(.source))]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What the store was doing, such as "recording an event".
        op: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// SQLite could open the database only read-only (its filesystem is mounted read-only, or
    /// the file is not writable): nothing reported could be recorded, so every message would
    /// be sent again and again.
    #[error(
        "state database {path} opens read-only: its filesystem is mounted read-only or the file          is not writable by the daemon's user; remount it read-write or fix the permissions          (the daemon waits for that, reporting nothing meanwhile)"
    )]
    ReadOnly {
        /// The database file.
        path: PathBuf,
    },
    /// An outbox row id that is not in the database was marked sent or failed.
    #[error("state database {path}: no outbox row {id} (a bug: ids come from due())")]
    UnknownOutboxRow {
        /// The database file.
        path: PathBuf,
        /// The unknown row id.
        id: i64,
    },
}

impl StoreError {
    /// `self`, as [`StoreError::Corrupt`] or [`StoreError::Locked`] when SQLite's error says
    /// the file is damaged or locked (opening a store turns those into their own errors, with
    /// their own exit statuses).
    pub(crate) fn classified(self) -> StoreError {
        let (path, source) = match self {
            StoreError::Open { path, source } | StoreError::Sqlite { path, source, .. }
                if matches!(
                    source.sqlite_error_code(),
                    Some(
                        ErrorCode::DatabaseCorrupt
                            | ErrorCode::NotADatabase
                            | ErrorCode::DatabaseBusy
                            | ErrorCode::DatabaseLocked
                    )
                ) =>
            {
                (path, source)
            }
            other => return other,
        };
        match source.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                StoreError::Corrupt { path, source }
            }
            _ => StoreError::Locked { path, source },
        }
    }
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
            "; the file is damaged: stop iamwatchd and restore the file from a backup, or move it \
             aside to start afresh (which forgets which events were already reported)"
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            "; another process holds the database locked: is a second iamwatchd using the same \
             state directory?"
        }
        _ => "",
    }
}

/// A store operation's result; the error is a [`StoreError`] unless given.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
