//! `scan --notify`: records found outside the daemon are recorded and delivered once.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::wiring::Parts;
use super::DaemonError;
use crate::config::Config;
use crate::event::{Record, SeenBy};
use crate::pipeline::delivery::{self, DELIVERY_TICK};
use crate::source::cloudtrail::stream::Counters;

/// Reports records found outside the daemon (`scan --notify`): they are recorded as seen by the
/// scan, so an event the daemon already reported is not repeated (and the daemon will not repeat
/// it later), then delivered; returns how many were new once the outbox is empty or `deadline`
/// has passed (what is left is delivered by the daemon or the next scan).
pub(crate) async fn report_once(
    config: &Config,
    records: Vec<Record>,
    deadline: Duration,
) -> Result<usize, DaemonError> {
    // Counted like the daemon's, though nobody scrapes a one-off scan.
    let parts = Parts::build(config, Arc::new(Counters::default())).await?;
    let new = parts.reporter.report(records, SeenBy::Scan).await?;
    let stop = CancellationToken::new();
    let mut workers = delivery::spawn_workers(
        parts.notifiers,
        &config.digests(),
        &parts.store,
        &parts.wake,
        &config.delivery,
        &parts.metrics,
        &stop,
    );
    let store = parts.store;
    let drained = tokio::time::timeout(deadline, async {
        loop {
            let pending = store.with(|s| s.pending_counts()).await?;
            if pending.values().all(|n| *n == 0) {
                return Ok::<_, DaemonError>(());
            }
            tokio::time::sleep(DELIVERY_TICK).await;
        }
    })
    .await;
    stop.cancel();
    while workers.join_next().await.is_some() {}
    match drained {
        Ok(result) => result?,
        Err(_) => {
            tracing::warn!("notifications still pending after {deadline:?}; they stay queued")
        }
    }
    Ok(new)
}
