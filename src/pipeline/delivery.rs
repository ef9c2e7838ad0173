//! Delivery: one worker per notifier sends that notifier's outbox, oldest first, a few sends in
//! flight; a row is marked sent only after the notifier accepted it, and a failure is retried
//! with backoff (a permanent one at the longest delay: it needs a human). Each notifier has its
//! own worker and backoff, so one dead notifier never blocks another.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::problem::Problems;
use crate::config::{defaults, values};
use crate::metrics::Metrics;
use crate::notify::digest::{self, DigestConfig};
use crate::notify::{Message, Notifier, NotifyError};
use crate::store::{OutboxRow, SharedStore};

/// Notification retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// A notification still undelivered after this long is given up, loudly.
    pub max_age: Duration,
    /// First retry delay; doubles on each failure.
    pub initial_backoff: Duration,
    /// Longest delay between retries.
    pub max_backoff: Duration,
    /// Sends each notifier keeps in flight: also the most copies a crash can repeat.
    pub in_flight: usize,
}

/// `[delivery]`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawDelivery {
    /// Give up after this long.
    #[serde(deserialize_with = "values::duration")]
    max_age: Duration,
    /// First retry delay.
    #[serde(deserialize_with = "values::duration")]
    initial_backoff: Duration,
    /// Longest retry delay.
    #[serde(deserialize_with = "values::duration")]
    max_backoff: Duration,
    /// Sends in flight per notifier.
    in_flight: i64,
}

impl Default for RawDelivery {
    fn default() -> Self {
        RawDelivery {
            max_age: defaults::DELIVERY_MAX_AGE,
            initial_backoff: defaults::INITIAL_BACKOFF,
            max_backoff: defaults::MAX_BACKOFF,
            in_flight: DEFAULT_IN_FLIGHT as i64,
        }
    }
}

impl RawDelivery {
    /// Validates `[delivery]`: a first delay, a cap at least as long, an age limit at least
    /// as long as the cap.
    pub(crate) fn validate(&self, problems: &mut Problems) -> DeliveryConfig {
        let raw = self;
        if raw.initial_backoff.is_zero() {
            problems.error(
                "delivery.initial_backoff",
                "must be greater than 0 (retrying at once only hammers a server that is down)",
            );
        }
        problems.at_least(
            ("delivery.max_backoff", raw.max_backoff),
            ("delivery.initial_backoff", raw.initial_backoff),
            "",
        );
        problems.at_least(
            ("delivery.max_age", raw.max_age),
            ("delivery.max_backoff", raw.max_backoff),
            ", or a notification is given up before its next retry",
        );
        if !(1..=MAX_IN_FLIGHT as i64).contains(&raw.in_flight) {
            problems.error(
                "delivery.in_flight",
                format!(
                    "must be between 1 and {MAX_IN_FLIGHT}, got {}: each send in flight is a \
                     message a crash may repeat",
                    raw.in_flight
                ),
            );
        }
        DeliveryConfig {
            max_age: raw.max_age,
            initial_backoff: raw.initial_backoff,
            max_backoff: raw.max_backoff,
            in_flight: usize::try_from(raw.in_flight)
                .unwrap_or(DEFAULT_IN_FLIGHT)
                .clamp(1, MAX_IN_FLIGHT),
        }
    }
}

/// Outbox rows a worker takes per round.
const DELIVERY_BATCH: usize = 20;

/// Sends a worker keeps in flight unless `delivery.in_flight` says otherwise. A message the
/// notifier accepted is recorded as sent a moment later, so a crash (kill -9, power) in that
/// moment sends it again after the restart: each send in flight is a possible copy. One keeps
/// that to at most one copy per crash and notifier (what the soak measures); more drain a
/// burst faster (one SMTP session delivers a mail per round trip plus the server's delayed
/// ACK, about 40 ms per mail on Linux) at the price of more copies. Digests keep bursts small.
pub(crate) const DEFAULT_IN_FLIGHT: usize = 1;

/// The most sends in flight `delivery.in_flight` allows.
const MAX_IN_FLIGHT: usize = 8;

/// How often a worker looks for rows whose backoff has run out (new rows wake it at once).
pub(crate) const DELIVERY_TICK: Duration = Duration::from_secs(1);

/// How a worker paces its sends: the retry backoff (first, longest) and the sends in flight.
#[derive(Debug, Clone, Copy)]
struct Pace {
    backoff: (Duration, Duration),
    in_flight: usize,
}

/// Delivers one notifier's outbox: oldest first, up to `in_flight` sends at once,
/// each row marked sent only after the notifier accepted it, failures retried with backoff.
/// Returns when `stop` fires and the rows in hand are done.
async fn deliver(
    notifier: Arc<dyn Notifier>,
    digest: Option<DigestConfig>,
    store: SharedStore,
    wake: Arc<Notify>,
    pace: Pace,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let Pace { backoff, in_flight } = pace;
    let name = notifier.name().to_owned();
    loop {
        if let Some(digest) = digest.filter(|d| d.enabled) {
            build_digests(&name, digest, &store).await;
        }
        // Listening before reading the outbox: rows queued while this round sends wake the
        // next round at once instead of after the tick (every worker shares one `Notify`,
        // woken with `notify_waiters`, which only reaches those already listening).
        let queued = wake.notified();
        tokio::pin!(queued);
        queued.as_mut().enable();
        let due = {
            let name = name.clone();
            store
                .with(move |s| s.due(&name, Utc::now(), DELIVERY_BATCH))
                .await
        };
        let rows = match due {
            Ok(rows) => rows,
            Err(error) => {
                tracing::error!(notifier = %name, %error, "cannot read the outbox");
                Vec::new()
            }
        };
        let full = rows.len() == DELIVERY_BATCH;
        futures_util::stream::iter(rows)
            .for_each_concurrent(in_flight, |row| {
                let (notifier, store, metrics, stop) = (&notifier, &store, &metrics, &stop);
                async move {
                    if !stop.is_cancelled() {
                        deliver_row(&**notifier, store, backoff, metrics, stop, row).await;
                    }
                }
            })
            .await;
        if stop.is_cancelled() {
            return;
        }
        if full {
            continue;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = queued => {}
            _ = tokio::time::sleep(DELIVERY_TICK) => {}
        }
    }
}

/// Turns the notifier's bursts that are due into their digests: each digest and the held
/// rows it carries are one transaction, so a crash leaves either the held rows or the digest,
/// never both and never neither.
async fn build_digests(name: &str, digest: DigestConfig, store: &SharedStore) {
    let now = Utc::now();
    let owned = name.to_owned();
    let ready = store
        .with(move |s| s.ready_bursts(&owned, now, digest.window, digest.max_delay))
        .await;
    let ready = match ready {
        Ok(ready) => ready,
        Err(error) => {
            tracing::error!(notifier = %name, %error, "cannot read the held findings");
            return;
        }
    };
    for burst in ready {
        if let [(held, _)] = burst.held[..] {
            // One held finding: sent as itself, not as a digest of one.
            let id = burst.id;
            if let Err(error) = store.with(move |s| s.release_held(id, held)).await {
                tracing::error!(notifier = %name, %error, "cannot release a held finding");
            }
            continue;
        }
        let message = digest::render(&burst);
        let payload = serde_json::to_vec(&message).expect("a message serialises");
        let ids: Vec<i64> = burst.held.iter().map(|(id, _)| *id).collect();
        let id = burst.id;
        match store
            .with(move |s| s.commit_digest(id, &ids, &payload))
            .await
        {
            Ok(Some(_)) => tracing::info!(notifier = %name, findings = message.digest_of,
                event_id = %message.event_id, "digest of a burst queued"),
            Ok(None) => {}
            Err(error) => tracing::error!(notifier = %name, %error, "cannot queue a digest"),
        }
    }
}

/// How long a worker waits before it tries again to record a delivered row as sent.
const RECORD_SENT_RETRY: Duration = Duration::from_secs(1);

/// Records row `id` as sent, trying again until it is recorded or `stop` fires: a row the
/// notifier accepted must not go back to the outbox only because the disk was full or the
/// database read-only for a moment, or every round would send it again. Holding the row also
/// holds one of the worker's sends, so a store that cannot record anything stops the sending
/// after at most `delivery.in_flight` messages instead of repeating them.
async fn record_sent(
    name: &str,
    event_id: &str,
    store: &SharedStore,
    stop: &CancellationToken,
    id: i64,
) -> crate::store::Result<()> {
    let mut failures = 0u32;
    loop {
        let error = match store.with(move |s| s.mark_sent(id, Utc::now())).await {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(notifier = %name, %event_id, failures,
                        "notification recorded as sent after all");
                }
                return Ok(());
            }
            Err(error) => error,
        };
        if failures.is_multiple_of(60) {
            tracing::error!(notifier = %name, %event_id, %error,
                "notification sent, but it cannot be recorded as sent; trying again (it is not \
                 sent again meanwhile)");
        }
        failures += 1;
        tokio::select! {
            _ = stop.cancelled() => return Err(error),
            _ = tokio::time::sleep(RECORD_SENT_RETRY) => {}
        }
    }
}

/// Sends one outbox row and records the outcome.
async fn deliver_row(
    notifier: &dyn Notifier,
    store: &SharedStore,
    backoff: (Duration, Duration),
    metrics: &Metrics,
    stop: &CancellationToken,
    row: OutboxRow,
) {
    let name = notifier.name();
    let mut digest_of = 0;
    let outcome = match serde_json::from_slice::<Message>(&row.payload) {
        Ok(message) => {
            digest_of = message.digest_of;
            notifier.send(&message).await
        }
        Err(error) => Err(NotifyError::Permanent {
            notifier: name.to_owned(),
            problem: format!("queued message is unreadable: {error}"),
            fix: "report this as a bug; the message stays in the outbox".to_owned(),
        }),
    };
    let id = row.id;
    let result = match outcome {
        Ok(()) => {
            metrics.notification_sent(name);
            if digest_of > 0 {
                metrics.digest_sent(name, digest_of);
            }
            tracing::info!(notifier = %name, event_id = %row.event_id, "notification sent");
            record_sent(name, &row.event_id, store, stop, id).await
        }
        Err(error) if error.is_uncertain() => {
            metrics.notification_failed(name);
            tracing::error!(notifier = %name, event_id = %row.event_id,
                "notification given up: {error}");
            let text = error.to_string();
            store.with(move |s| s.give_up(id, &text, Utc::now())).await
        }
        Err(error) => {
            metrics.notification_failed(name);
            let attempts = row.attempts + 1;
            // A permanent error (bad password, unknown topic) waits the longest: it needs
            // a human, and hammering the server helps nobody.
            let steps = if error.is_transient() {
                attempts
            } else {
                u32::MAX
            };
            // A platform that said how long to wait (429 Retry-After) is taken at its word.
            let wait = error
                .retry_after()
                .unwrap_or_else(|| backoff_with(steps, backoff.0, backoff.1));
            tracing::warn!(notifier = %name, event_id = %row.event_id, attempts,
                retry_in = ?wait, "{error}");
            let text = error.to_string();
            let next = Utc::now() + chrono::TimeDelta::from_std(wait).unwrap_or_default();
            store
                .with(move |s| s.mark_failed(id, &text, next).map(|_| ()))
                .await
        }
    };
    if let Err(error) = result {
        tracing::error!(notifier = %name, %error, "cannot update the outbox");
    }
}

/// Delay before the next attempt after `attempts` failed ones: `base`, then doubling, capped at
/// `cap` (`[delivery]` initial_backoff and max_backoff). No jitter: each notifier retries its
/// own queue, so there is no herd to spread, and a fixed schedule is testable. `attempts`
/// counts failures so far; 0 and 1 both give `base`.
pub(crate) fn backoff_with(attempts: u32, base: Duration, cap: Duration) -> Duration {
    let doublings = attempts.saturating_sub(1).min(31);
    base.saturating_mul(1u32 << doublings).min(cap)
}

/// One delivery worker per notifier (digesting its bursts as `digests` says), all stopping on
/// `stop`.
pub(crate) fn spawn_workers(
    notifiers: Vec<Arc<dyn Notifier>>,
    digests: &BTreeMap<String, DigestConfig>,
    store: &SharedStore,
    wake: &Arc<Notify>,
    delivery: &DeliveryConfig,
    metrics: &Arc<Metrics>,
    stop: &CancellationToken,
) -> tokio::task::JoinSet<()> {
    let mut workers = tokio::task::JoinSet::new();
    for notifier in notifiers {
        let digest = digests.get(notifier.name()).copied();
        workers.spawn(deliver(
            notifier,
            digest,
            store.clone(),
            wake.clone(),
            Pace {
                backoff: (delivery.initial_backoff, delivery.max_backoff),
                in_flight: delivery.in_flight,
            },
            metrics.clone(),
            stop.clone(),
        ));
    }
    workers
}

#[cfg(test)]
mod tests;
