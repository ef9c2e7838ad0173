//! `[store]`: where the state database lives and how long seen events are remembered.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::problem::Problems;
use crate::config::{defaults, values};

/// Durable state.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// Directory of the SQLite database.
    pub state_directory: PathBuf,
    /// How long seen eventIDs are kept.
    pub retention: Duration,
}

/// `[store]`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawStore {
    /// Directory of the state database.
    state_directory: PathBuf,
    /// How long seen eventIDs are kept.
    #[serde(deserialize_with = "values::duration")]
    retention: Duration,
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            state_directory: PathBuf::from(defaults::STATE_DIRECTORY),
            retention: defaults::RETENTION,
        }
    }
}

impl RawStore {
    /// Validates `[store]`; `sweep_horizon` is the poller's (an event a sweep re-reads must
    /// still be remembered).
    pub(crate) fn validate(&self, sweep_horizon: Duration, problems: &mut Problems) -> StoreConfig {
        let raw = self;
        if raw.state_directory.as_os_str().is_empty() {
            problems.error(
                "store.state_directory",
                format!(
                    "must not be empty (the default is {})",
                    defaults::STATE_DIRECTORY
                ),
            );
        }
        problems.at_least(
            ("store.retention", raw.retention),
            ("poller.sweep_horizon", sweep_horizon),
            ": an event the sweep re-reads must still be remembered, or it is reported twice",
        );
        StoreConfig {
            state_directory: raw.state_directory.clone(),
            retention: raw.retention,
        }
    }
}
