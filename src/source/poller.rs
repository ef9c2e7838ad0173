//! Runs the LookupEvents streams: a fast pass every poll interval, a sweep from the durable
//! cursor every sweep interval (see [`super::lookup`] for why), all streams of one region
//! sharing that region's request budget.
//!
//! The poller knows nothing of rules, storage or notifications: it hands each pass's records
//! to a [`Sink`], together with the cursor update that becomes true once they are stored. The
//! sink must store both atomically; that is what makes a restart lose nothing.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::budget::Budget;
use super::lookup::{fetch_window, Lookup, LookupError, PassStats, Schedule, Window};
use crate::event::Record;

/// One thing to poll: a lookup attribute in a region, at its own pace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    pub region: String,
    pub lookup: Lookup,
    /// How often the fast pass runs for this stream.
    pub poll_interval: Duration,
}

impl Stream {
    /// The durable cursor's key: `lookup:us-east-1:EventSource=iam.amazonaws.com`.
    pub fn cursor_key(&self) -> String {
        format!("lookup:{}:{}", self.region, self.lookup.label())
    }
}

/// Which kind of pass produced a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Fast,
    Sweep,
}

/// A cursor value that becomes true once the batch it comes with is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorUpdate {
    pub key: String,
    pub value: DateTime<Utc>,
}

/// What the sink did with a batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Records seen for the first time (and queued for notification if they matter).
    pub new: usize,
    /// Records already seen: the cost of overlapping windows.
    pub duplicate: usize,
}

/// Where the poller's records go. Implemented by the service over the store.
pub trait Sink: Send + Sync + 'static {
    /// The stored cursor, if any.
    fn cursor(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<DateTime<Utc>>, String>> + Send;
    /// Stores the records and, in the same transaction, the cursor update.
    fn accept(
        &self,
        records: Vec<Record>,
        pass: Pass,
        cursor: Option<CursorUpdate>,
    ) -> impl Future<Output = Result<Accepted, String>> + Send;
}

/// Running totals for logs, metrics and benchmarks.
#[derive(Debug, Default)]
pub struct Counters {
    pub passes: AtomicU64,
    pub pages: AtomicU64,
    pub throttled: AtomicU64,
    pub events_new: AtomicU64,
    pub events_refetched: AtomicU64,
    pub reads_dropped: AtomicU64,
    pub malformed: AtomicU64,
    pub failed_passes: AtomicU64,
    /// When the last pass (of any stream) was stored, in Unix milliseconds; 0 before the
    /// first. `/healthz` reads it: a poller that stopped completing passes is not healthy.
    pub last_pass_unix_ms: AtomicI64,
}

impl Counters {
    fn add(&self, stats: PassStats, accepted: Accepted) {
        self.passes.fetch_add(1, Ordering::Relaxed);
        self.pages.fetch_add(stats.pages.into(), Ordering::Relaxed);
        self.throttled
            .fetch_add(stats.throttled.into(), Ordering::Relaxed);
        self.reads_dropped
            .fetch_add(stats.reads_dropped.into(), Ordering::Relaxed);
        self.malformed
            .fetch_add(stats.malformed.into(), Ordering::Relaxed);
        self.events_new
            .fetch_add(accepted.new as u64, Ordering::Relaxed);
        self.events_refetched
            .fetch_add(accepted.duplicate as u64, Ordering::Relaxed);
        self.last_pass_unix_ms
            .fetch_max(Utc::now().timestamp_millis(), Ordering::Relaxed);
    }
}

/// The streams, their clients and budgets, and the schedule.
pub struct Poller {
    streams: Vec<Stream>,
    clients: HashMap<String, aws_sdk_cloudtrail::Client>,
    budgets: HashMap<String, Arc<Budget>>,
    schedule: Schedule,
    counters: Arc<Counters>,
}

impl Poller {
    /// `clients` must hold a CloudTrail client for every stream's region; each region gets one
    /// budget of `requests_per_second`, shared by its streams.
    pub fn new(
        streams: Vec<Stream>,
        clients: HashMap<String, aws_sdk_cloudtrail::Client>,
        requests_per_second: f64,
        schedule: Schedule,
    ) -> Poller {
        let budgets = streams
            .iter()
            .map(|s| (s.region.clone(), Arc::new(Budget::new(requests_per_second))))
            .collect();
        Poller {
            streams,
            clients,
            budgets,
            schedule,
            counters: Arc::new(Counters::default()),
        }
    }

    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// Polls until `cancel` fires; each stream runs as its own task.
    pub async fn run<S: Sink>(self, sink: Arc<S>, cancel: CancellationToken) {
        let mut tasks = tokio::task::JoinSet::new();
        for stream in self.streams {
            let Some(client) = self.clients.get(&stream.region).cloned() else {
                tracing::error!(region = %stream.region, "no CloudTrail client for this region; stream not polled");
                continue;
            };
            let runner = StreamRunner {
                budget: self.budgets[&stream.region].clone(),
                stream,
                client,
                schedule: self.schedule,
                counters: self.counters.clone(),
            };
            tasks.spawn(runner.run(sink.clone(), cancel.clone()));
        }
        while tasks.join_next().await.is_some() {}
    }
}

struct StreamRunner {
    stream: Stream,
    client: aws_sdk_cloudtrail::Client,
    budget: Arc<Budget>,
    schedule: Schedule,
    counters: Arc<Counters>,
}

impl StreamRunner {
    async fn run<S: Sink>(self, sink: Arc<S>, cancel: CancellationToken) {
        // The first sweep runs at once: it catches up from the stored cursor after a restart.
        let mut next_sweep = Instant::now();
        let mut next_fast = Instant::now();
        let mut swept_once = false;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(next_sweep.min(next_fast)) => {}
            }
            let now = Instant::now();
            if now >= next_sweep {
                swept_once |= self.sweep(&*sink, &cancel).await;
                next_sweep = Instant::now() + self.schedule.sweep_interval;
            } else if swept_once {
                self.fast(&*sink, &cancel).await;
                next_fast = Instant::now() + self.stream.poll_interval;
            } else {
                // Until a first sweep succeeded, fast passes would only duplicate its work.
                next_fast = next_sweep;
            }
        }
    }

    async fn sweep<S: Sink>(&self, sink: &S, cancel: &CancellationToken) -> bool {
        let key = self.stream.cursor_key();
        let cursor = match sink.cursor(&key).await {
            Ok(cursor) => cursor,
            Err(error) => {
                tracing::error!(stream = %key, %error, "cannot read the cursor; sweep skipped");
                return false;
            }
        };
        let window = self.schedule.sweep_window(cursor, Utc::now());
        let update = CursorUpdate {
            key: key.clone(),
            value: self.schedule.cursor_after_sweep(cursor, window.end),
        };
        self.pass(sink, cancel, Pass::Sweep, window, Some(update))
            .await
    }

    async fn fast<S: Sink>(&self, sink: &S, cancel: &CancellationToken) {
        let window = self.schedule.fast_window(Utc::now());
        self.pass(sink, cancel, Pass::Fast, window, None).await;
    }

    async fn pass<S: Sink>(
        &self,
        sink: &S,
        cancel: &CancellationToken,
        pass: Pass,
        window: Window,
        cursor: Option<CursorUpdate>,
    ) -> bool {
        let label = self.stream.lookup.label();
        let fetched = match fetch_window(
            &self.client,
            &self.stream.region,
            &self.budget,
            &self.stream.lookup,
            window,
            cancel,
        )
        .await
        {
            Ok(fetched) => fetched,
            Err(LookupError::Cancelled) => return false,
            Err(error) => {
                self.counters.failed_passes.fetch_add(1, Ordering::Relaxed);
                tracing::error!(region = %self.stream.region, stream = %label, ?pass, "{error}");
                return false;
            }
        };
        let (records, stats) = (fetched.records, fetched.stats);
        let count = records.len();
        match sink.accept(records, pass, cursor).await {
            Ok(accepted) => {
                self.counters.add(stats, accepted);
                tracing::debug!(
                    region = %self.stream.region, stream = %label, ?pass,
                    from = %window.start, to = %window.end,
                    pages = stats.pages, events = stats.events, reads_dropped = stats.reads_dropped,
                    new = accepted.new, refetched = accepted.duplicate, throttled = stats.throttled,
                    "pass complete"
                );
                true
            }
            Err(error) => {
                self.counters.failed_passes.fetch_add(1, Ordering::Relaxed);
                tracing::error!(stream = %label, records = count, %error,
                    "could not store a pass's records; the next sweep reads them again");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_keys_name_region_and_attribute() {
        let stream = Stream {
            region: "us-east-1".into(),
            lookup: Lookup::EventSource("iam.amazonaws.com".into()),
            poll_interval: Duration::from_secs(10),
        };
        assert_eq!(
            stream.cursor_key(),
            "lookup:us-east-1:EventSource=iam.amazonaws.com"
        );
    }
}
