//! The periodic jobs, driven by tokio-cron-scheduler: expiry of undeliverable notifications
//! (every minute; each one given up is an error line, never silent), pruning of old events
//! (hourly) and, with the alarm path, its health check (every 10 seconds).
//!
//! tokio-cron-scheduler's `shutdown()` does not wait for a running job; the jobs here are
//! short store transactions, which SQLite makes atomic whatever the timing.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use super::health::{Health, HEALTH_SCHEDULE};
use super::Reporter;

/// What the jobs keep.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Housekeeping {
    /// A notification still undelivered after this long is given up (`delivery.max_age`).
    pub max_age: Duration,
    /// Events older than this are forgotten (`store.retention`).
    pub retention: Duration,
    /// With the alarm path: changes must be confirmed within this long
    /// (`alarm.confirm_within`), and whether a silent path is also sent as a message
    /// (`alarm.health_messages`).
    pub alarm_health: Option<(Duration, bool)>,
}

/// The scheduler could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("the periodic job scheduler failed: {0}")]
pub struct SchedulerError(String);

impl From<JobSchedulerError> for SchedulerError {
    fn from(error: JobSchedulerError) -> Self {
        SchedulerError(error.to_string())
    }
}

impl Housekeeping {
    /// Starts the jobs on `reporter`'s store; stop them with the scheduler's `shutdown()`.
    pub async fn start(self, reporter: Reporter) -> Result<JobScheduler, SchedulerError> {
        let scheduler = JobScheduler::new().await?;

        let max_age = self.max_age;
        let store = reporter.store().clone();
        let expire = Job::new_async("0 * * * * *", move |_, _| {
            let store = store.clone();
            Box::pin(async move {
                match store.with(move |s| s.expire(max_age, Utc::now())).await {
                    Ok(expired) => {
                        for row in expired {
                            tracing::error!(notifier = %row.notifier, event_id = %row.event_id,
                                attempts = row.attempts, last_error = ?row.last_error,
                                "gave up delivering a notification after {max_age:?}");
                        }
                    }
                    Err(error) => tracing::error!(%error, "cannot expire old notifications"),
                }
            })
        })?;
        scheduler.add(expire).await?;

        let retention = self.retention;
        let store = reporter.store().clone();
        let prune = Job::new_async("0 17 * * * *", move |_, _| {
            let store = store.clone();
            Box::pin(async move {
                match store.with(move |s| s.prune(retention, Utc::now())).await {
                    Ok(pruned) => tracing::info!(pruned, "forgot events older than the retention"),
                    Err(error) => tracing::error!(%error, "cannot prune the store"),
                }
            })
        })?;
        scheduler.add(prune).await?;

        if let Some((confirm_within, send)) = self.alarm_health {
            let health = Arc::new(tokio::sync::Mutex::new(Health::new(confirm_within, send)));
            let job = Job::new_async(HEALTH_SCHEDULE, move |_, _| {
                let health = health.clone();
                let reporter = reporter.clone();
                Box::pin(async move {
                    if let Err(error) = health.lock().await.check(&reporter, Utc::now()).await {
                        tracing::error!(%error, "cannot check the alarm path's health");
                    }
                })
            })?;
            scheduler.add(job).await?;
        }
        scheduler.start().await?;
        Ok(scheduler)
    }
}
