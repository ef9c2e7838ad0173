//! What went wrong with the state database, and what the operator can do about it.

use std::path::PathBuf;

use rusqlite::ErrorCode;

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
