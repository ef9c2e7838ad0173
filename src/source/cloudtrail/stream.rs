//! What the poller polls ([`Stream`]) and what it counts ([`Counters`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;

use super::lookup::{Lookup, PassStats};
use crate::source::Accepted;

/// One thing to poll: a lookup attribute in a region of an account, at its own pace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    /// The member account whose event history is read (`[accounts]`); `None`: the daemon's
    /// own account.
    pub account: Option<String>,
    /// The region whose event history is read.
    pub region: String,
    /// The one lookup attribute of every call.
    pub lookup: Lookup,
    /// How often the fast pass runs for this stream.
    pub poll_interval: Duration,
}

impl Stream {
    /// The durable cursor's key: `lookup:us-east-1:EventSource=iam.amazonaws.com`, and for a
    /// member account `lookup:111122223333:us-east-1:EventSource=iam.amazonaws.com` (so an
    /// account that leaves the watch list and comes back resumes where it stopped).
    pub(crate) fn cursor_key(&self) -> String {
        match &self.account {
            None => format!("lookup:{}:{}", self.region, self.lookup.label()),
            Some(account) => format!("lookup:{account}:{}:{}", self.region, self.lookup.label()),
        }
    }
}

/// Running totals for logs, metrics and benchmarks.
#[derive(Debug, Default)]
pub struct Counters {
    /// Passes (fast passes and sweeps) whose every page was read and stored.
    pub passes: AtomicU64,
    /// LookupEvents pages read and stored.
    pub pages: AtomicU64,
    /// LookupEvents calls answered with throttling, counted as they happen.
    pub throttled: AtomicU64,
    /// Records the intake saw for the first time.
    pub events_new: AtomicU64,
    /// Records the intake had already seen (duplicates and confirmations): the cost of
    /// overlapping windows.
    pub events_refetched: AtomicU64,
    /// Read-only entries LookupEvents returned and the poller dropped.
    pub reads_dropped: AtomicU64,
    /// Entries whose `CloudTrailEvent` could not be parsed.
    pub malformed: AtomicU64,
    /// Passes that stopped early: LookupEvents failed, or the intake could not store a page.
    pub failed_passes: AtomicU64,
    /// When a page was last read and stored (of any stream), in Unix milliseconds; 0 before
    /// the first. `/healthz` reads it: a poller that stopped making progress is not healthy.
    pub last_pass_unix_ms: AtomicI64,
    /// When each stream last completed a pass (every page read and stored), in Unix
    /// milliseconds, by (region, lookup label); a stream appears after its first pass.
    pub last_complete_pass: Mutex<BTreeMap<(String, String), i64>>,
}

impl Counters {
    /// `stream` completed a pass now.
    pub(super) fn pass_complete(&self, stream: &Stream) {
        self.passes.fetch_add(1, Ordering::Relaxed);
        let key = (stream.region.clone(), stream.lookup.label());
        let now = Utc::now().timestamp_millis();
        let mut last = self
            .last_complete_pass
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let at = last.entry(key).or_insert(now);
        *at = (*at).max(now);
    }

    /// Each stream's last complete pass ([`Counters::last_complete_pass`]), a copy.
    pub(crate) fn last_complete_passes(&self) -> BTreeMap<(String, String), i64> {
        self.last_complete_pass
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub(super) fn add_page(&self, stats: PassStats, accepted: Accepted) {
        self.pages.fetch_add(stats.pages.into(), Ordering::Relaxed);
        self.reads_dropped
            .fetch_add(stats.reads_dropped.into(), Ordering::Relaxed);
        self.malformed
            .fetch_add(stats.malformed.into(), Ordering::Relaxed);
        self.events_new
            .fetch_add(accepted.new as u64, Ordering::Relaxed);
        self.events_refetched.fetch_add(
            (accepted.duplicate + accepted.confirmed) as u64,
            Ordering::Relaxed,
        );
        self.last_pass_unix_ms
            .fetch_max(Utc::now().timestamp_millis(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_keys_name_region_and_attribute() {
        let mut stream = Stream {
            account: None,
            region: "us-east-1".into(),
            lookup: Lookup::EventSource("iam.amazonaws.com".into()),
            poll_interval: Duration::from_secs(10),
        };
        assert_eq!(
            stream.cursor_key(),
            "lookup:us-east-1:EventSource=iam.amazonaws.com"
        );
        stream.account = Some("111122223333".into());
        assert_eq!(
            stream.cursor_key(),
            "lookup:111122223333:us-east-1:EventSource=iam.amazonaws.com"
        );
    }
}
