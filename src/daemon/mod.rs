//! `iamwatchd run`: starts the parts (the poller, the alarm path, the delivery workers, the
//! periodic jobs, the metrics listener), runs until told to stop, and stops them in order.
//!
//! The daemon takes its shutdown signal as an argument (`run(config, shutdown)`), so tests stop
//! it like systemd does: polling stops, in-flight sends finish within a deadline, exit 0, and
//! everything not yet sent is delivered after the next start.

pub mod memory;
pub(crate) mod once;
pub(crate) mod ours;
mod systemd;
mod wiring;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::pipeline::delivery;
use crate::pipeline::housekeeping::SchedulerError;
use wiring::Parts;

pub(crate) use once::report_once;

/// How long in-flight sends may take after the stop signal before the daemon exits anyway.
pub(crate) const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(20);

/// How often memory the daemon freed is returned to the system ([`memory`]).
const GIVE_BACK_MEMORY: Duration = Duration::from_secs(60);

/// Why the daemon could not start (or `scan --notify` could not report).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The state database.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A notifier's configuration cannot work.
    #[error(transparent)]
    Notifier(#[from] crate::notify::NotifyError),
    /// The periodic jobs.
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    /// The metrics listener.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::ListenError),
    /// `iamwatchd analysis seed` could not read IAM or record what it read.
    #[error("seeding the policy snapshots: {0}")]
    Seed(String),
}

/// `iamwatchd analysis seed`: records the account's inline policies, trust policies,
/// permissions boundaries and managed policies' default versions as the previous versions the
/// analysis compares the next changes with. Returns what it did, in words.
pub async fn seed_analysis(config: &Config) -> Result<String, DaemonError> {
    let store =
        crate::store::SharedStore::new(crate::store::Store::open(&config.store.state_directory)?);
    let iam = wiring::iam_client(config).await;
    let report = crate::pipeline::analyst::seed(&store, &iam, &config.analysis)
        .await
        .map_err(DaemonError::Seed)?;
    Ok(format!(
        "recorded {} policy snapshots of account(s) {} in {} request(s){}",
        report.snapshots,
        if report.accounts.is_empty() {
            "none".to_owned()
        } else {
            report.accounts.join(", ")
        },
        report.requests,
        if report.complete {
            String::new()
        } else {
            format!(
                "; stopped at analysis.seed_max_requests = {}: the rest of the account is not seeded",
                config.analysis.seed_max_requests
            )
        }
    ))
}

/// Runs the daemon until `shutdown` completes.
pub async fn run(
    mut config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    config.rules.ours = ours::read(&config).await;
    let poller = wiring::poller(&config).await;
    let parts = Parts::build(&config, poller.counters()).await?;
    for notifier in &parts.notifiers {
        if let Err(error) = notifier.healthcheck().await {
            // Not fatal: changes are queued and delivered once the notifier is reachable.
            tracing::warn!(notifier = notifier.name(), "health check failed: {error}");
        }
    }
    let stop_metrics = CancellationToken::new();
    let metrics_server = match config.metrics.listen {
        Some(addr) => {
            let listener = crate::metrics::bind(addr).await?;
            let endpoint = crate::metrics::Endpoint {
                metrics: parts.metrics.clone(),
                store: parts.store.clone(),
            };
            Some(tokio::spawn(crate::metrics::serve(
                listener,
                endpoint,
                stop_metrics.clone(),
            )))
        }
        None => None,
    };

    let stop_polling = CancellationToken::new();
    let stop_delivery = CancellationToken::new();
    let jobs = wiring::housekeeping(&config).start(parts.reporter.clone())?;
    let polling = tokio::spawn(poller.run(Arc::new(parts.reporter.clone()), stop_polling.clone()));
    wiring::seed_on_first_start(&config, parts.store.clone(), parts.iam.clone());
    let estate = wiring::estate(&config, parts.roster.clone(), parts.reporter.clone())
        .await
        .map(|estate| tokio::spawn(estate.run(stop_polling.clone())));
    let alarm_path = wiring::alarm_path(&config, parts.reporter.clone())
        .await
        .map(|path| tokio::spawn(path.run(stop_polling.clone())));
    let mut delivery = delivery::spawn_workers(
        parts.notifiers,
        &config.digests(),
        &parts.store,
        &parts.wake,
        &config.delivery,
        &parts.metrics,
        &stop_delivery,
    );
    let memory = tokio::spawn(memory::give_back_every(
        GIVE_BACK_MEMORY,
        stop_metrics.clone(),
    ));
    tracing::info!(region = %config.aws.region, "iamwatchd is running");
    systemd::ready();

    tokio::select! {
        _ = shutdown => {}
        _ = systemd::watchdog(&parts.metrics, config.poller.health_max_age()) => {}
    }

    tracing::info!("stopping: polling ends, in-flight notifications get {SHUTDOWN_DEADLINE:?}");
    systemd::stopping();
    stop_polling.cancel();
    let _ = polling.await;
    if let Some(estate) = estate {
        let _ = estate.await;
    }
    if let Some(alarm_path) = alarm_path {
        let _ = alarm_path.await;
    }
    stop_delivery.cancel();
    let drained = tokio::time::timeout(SHUTDOWN_DEADLINE, async {
        while delivery.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "notifications still in flight at the deadline; they are sent after restart"
        );
    }
    jobs.shutdown().await;
    stop_metrics.cancel();
    let _ = memory.await;
    if let Some(server) = metrics_server {
        let _ = server.await;
    }
    Ok(())
}
