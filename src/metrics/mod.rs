//! `/metrics` (Prometheus text format) and `/healthz`, on an optional local HTTP listener
//! (`[metrics] listen`).
//!
//! The numbers come from where they are produced: the poller's [`Counters`], the delivery
//! workers (sent / failed per notifier), the pipeline's reporter (new events per path and the
//! detection lag), and the store itself (pending / given-up notifications, alarm-path confirmations,
//! size), read at scrape time.
//!
//! The Prometheus text is written in `exposition.rs`, the listener in `http.rs`.

mod exposition;
mod http;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::accounts::Roster;
use crate::event::SeenBy;
use crate::source::cloudtrail::stream::Counters;

pub use http::{bind, ListenError};

pub(crate) use http::{serve, Endpoint};

/// Upper bounds, in seconds, of the detection-lag histogram's buckets: from "the poller saw it
/// within seconds" to "the alarm path found it an hour later".
const LAG_BUCKETS_SECONDS: [f64; 11] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
];

/// A histogram with fixed buckets ([`LAG_BUCKETS_SECONDS`]); each observation counts once, in
/// the first bucket it fits (cumulated when rendered).
#[derive(Debug, Default)]
struct Histogram {
    /// One per bucket plus the overflow (+Inf).
    buckets: [AtomicU64; LAG_BUCKETS_SECONDS.len() + 1],
    sum_millis: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn observe(&self, value: Duration) {
        let seconds = value.as_secs_f64();
        let index = LAG_BUCKETS_SECONDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LAG_BUCKETS_SECONDS.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        let millis = u64::try_from(value.as_millis()).unwrap_or(u64::MAX);
        self.sum_millis.fetch_add(millis, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Per-notifier delivery counters.
#[derive(Debug, Default)]
struct NotifierCounters {
    sent: AtomicU64,
    failed: AtomicU64,
    digests: AtomicU64,
    digested: AtomicU64,
}

/// Per-path counters of the pipeline's reporter.
#[derive(Debug, Default)]
struct PathCounters {
    new_events: AtomicU64,
    lag: Histogram,
}

/// Every number the daemon exposes, shared by the tasks that produce them.
#[derive(Debug)]
pub(crate) struct Metrics {
    poller: Arc<Counters>,
    notifiers: BTreeMap<String, NotifierCounters>,
    paths: BTreeMap<SeenBy, PathCounters>,
    /// Findings that no notifier's route took.
    unrouted: AtomicU64,
    /// `/healthz` fails when no poll pass completed for this long.
    health_max_age: Duration,
    started: DateTime<Utc>,
    /// The member accounts (`[accounts]`), each with its state and poller counters.
    accounts: Roster,
}

impl Metrics {
    /// `notifiers` are the configured notifier names (their counters exist from the start, so
    /// a scraper sees zeroes rather than missing series); `health_max_age` is how old the last
    /// completed poll pass may be before `/healthz` fails.
    pub fn new(poller: Arc<Counters>, notifiers: &[String], health_max_age: Duration) -> Metrics {
        Metrics {
            poller,
            notifiers: notifiers
                .iter()
                .map(|n| (n.clone(), NotifierCounters::default()))
                .collect(),
            paths: [SeenBy::Poller, SeenBy::Alarm]
                .into_iter()
                .map(|p| (p, PathCounters::default()))
                .collect(),
            unrouted: AtomicU64::new(0),
            health_max_age,
            started: Utc::now(),
            accounts: Roster::default(),
        }
    }

    /// The metrics with a series per member account of `roster`.
    pub fn with_roster(mut self, roster: Roster) -> Metrics {
        self.accounts = roster;
        self
    }

    /// A notifier accepted a notification.
    pub(crate) fn notification_sent(&self, notifier: &str) {
        if let Some(counters) = self.notifiers.get(notifier) {
            counters.sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A notifier accepted a digest carrying `findings` findings.
    pub(crate) fn digest_sent(&self, notifier: &str, findings: usize) {
        if let Some(counters) = self.notifiers.get(notifier) {
            counters.digests.fetch_add(1, Ordering::Relaxed);
            counters
                .digested
                .fetch_add(findings as u64, Ordering::Relaxed);
        }
    }

    /// A notifier failed to deliver a notification (it stays queued or is retried).
    pub(crate) fn notification_failed(&self, notifier: &str) {
        if let Some(counters) = self.notifiers.get(notifier) {
            counters.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A finding was recorded that no notifier's route takes (logged with its eventID).
    pub(crate) fn finding_unrouted(&self) {
        self.unrouted.fetch_add(1, Ordering::Relaxed);
    }

    /// An event was seen for the first time by `path`, `lag` after CloudTrail's eventTime.
    pub(crate) fn new_event(&self, path: SeenBy, lag: Duration) {
        if let Some(counters) = self.paths.get(&path) {
            counters.new_events.fetch_add(1, Ordering::Relaxed);
            counters.lag.observe(lag);
        }
    }

    /// `Ok` when the poller completed a pass within the allowed age, else why not.
    pub(crate) fn poller_health(&self, now: DateTime<Utc>) -> Result<(), String> {
        let last = self.poller.last_pass_unix_ms.load(Ordering::Relaxed);
        let max_age = chrono::TimeDelta::from_std(self.health_max_age).unwrap_or_default();
        if last == 0 {
            let up = now - self.started;
            return Err(format!(
                "no poll pass has completed yet (running for {}s)",
                up.num_seconds()
            ));
        }
        let age = now.timestamp_millis().saturating_sub(last);
        if age > max_age.num_milliseconds() {
            return Err(format!(
                "the last completed poll pass was {}s ago (more than {}s); see the log for \
                 LookupEvents errors",
                age / 1000,
                max_age.num_seconds()
            ));
        }
        Ok(())
    }
}

/// Test helpers the tests of several files share.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;
    use std::time::Duration;

    use super::Metrics;
    use crate::source::cloudtrail::stream::Counters;

    /// Metrics with two notifiers, one of them with a name that needs escaping in a label.
    pub(crate) fn metrics() -> Metrics {
        Metrics::new(
            Arc::new(Counters::default()),
            &["smtp".to_owned(), "ops\"mail".to_owned()],
            Duration::from_secs(60),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::testing::metrics;
    use super::*;

    #[test]
    fn health_needs_a_recent_pass() {
        let m = metrics();
        let now = Utc::now();
        assert!(m.poller_health(now).unwrap_err().contains("no poll pass"));
        let pass = now - chrono::TimeDelta::seconds(30);
        m.poller
            .last_pass_unix_ms
            .store(pass.timestamp_millis(), Ordering::Relaxed);
        assert_eq!(m.poller_health(now), Ok(()));
        let later = now + chrono::TimeDelta::seconds(45);
        assert!(m.poller_health(later).unwrap_err().contains("75s ago"));
    }
}
