//! The periodic jobs: expiry of undeliverable notifications (every minute; each one given up
//! is an error line, never silent), pruning of old events (hourly) and, with the alarm path,
//! its health check (every 10 seconds).
//!
//! Each job is a task that sleeps until its schedule's next time (cron syntax with seconds,
//! read by `croner`) and runs there, so an idle daemon wakes only when a job is due. This
//! replaced tokio-cron-scheduler (0.15, also its upstream head): its ticker is a fixed
//! `sleep(500 ms)` loop, started by `JobScheduler::start()` and not configurable, which woke the
//! idle daemon twice a second to find nothing due. [`Jobs::shutdown`] lets a job that is
//! running finish (short store transactions) before it returns.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

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

/// A job's schedule could not be read (a bug: the schedules are constants).
#[derive(Debug, thiserror::Error)]
#[error("the periodic job schedule {schedule:?} is invalid: {reason}")]
pub struct SchedulerError {
    schedule: &'static str,
    reason: String,
}

/// Expiry: at second 0 of every minute.
const EXPIRE_SCHEDULE: &str = "0 * * * * *";

/// Pruning: hourly, at minute 17 (away from the top of the hour other jobs crowd).
const PRUNE_SCHEDULE: &str = "0 17 * * * *";

/// The running jobs; stop them with [`Jobs::shutdown`].
#[derive(Debug)]
pub(crate) struct Jobs {
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

impl Jobs {
    /// Stops every job; one that is running finishes first.
    pub(crate) async fn shutdown(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }

    /// Runs `job` at every time of `schedule` until stopped.
    fn add<F, Fut>(&mut self, schedule: &'static str, mut job: F) -> Result<(), SchedulerError>
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let cron = parse(schedule)?;
        let stop = self.stop.clone();
        self.tasks.spawn(async move {
            let mut last = None;
            loop {
                let now = Utc::now();
                let Some(next) = next_run(&cron, now, last) else {
                    tracing::error!(schedule, "the schedule has no next time; the job stops");
                    return;
                };
                let wait = (next - now).to_std().unwrap_or_default();
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                last = Some(next);
                job().await;
            }
        });
        Ok(())
    }
}

fn parse(schedule: &'static str) -> Result<Cron, SchedulerError> {
    CronParser::builder()
        .seconds(Seconds::Required)
        .build()
        .parse(schedule)
        .map_err(|error| SchedulerError {
            schedule,
            reason: error.to_string(),
        })
}

/// The first time of `cron` after `now` and after the `last` run (a timer that fires on
/// time by the monotonic clock may find the wall clock a hair before the time it waited for:
/// that time is done, not due again).
fn next_run(cron: &Cron, now: DateTime<Utc>, last: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    // Whole seconds: the schedules' times are, and croner keeps a start's fraction.
    let after = last.map_or(now, |last| last.max(now)).with_nanosecond(0)?;
    cron.find_next_occurrence(&after, false).ok()
}

impl Housekeeping {
    /// Starts the jobs on `reporter`'s store.
    pub fn start(self, reporter: Reporter) -> Result<Jobs, SchedulerError> {
        let mut jobs = Jobs {
            stop: CancellationToken::new(),
            tasks: JoinSet::new(),
        };

        let max_age = self.max_age;
        let store = reporter.store().clone();
        jobs.add(EXPIRE_SCHEDULE, move || {
            let store = store.clone();
            async move {
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
            }
        })?;

        let retention = self.retention;
        let store = reporter.store().clone();
        jobs.add(PRUNE_SCHEDULE, move || {
            let store = store.clone();
            async move {
                match store.with(move |s| s.prune(retention, Utc::now())).await {
                    Ok(pruned) => tracing::info!(pruned, "forgot events older than the retention"),
                    Err(error) => tracing::error!(%error, "cannot prune the store"),
                }
            }
        })?;

        if let Some((confirm_within, send)) = self.alarm_health {
            let health = Arc::new(tokio::sync::Mutex::new(Health::new(confirm_within, send)));
            jobs.add(HEALTH_SCHEDULE, move || {
                let health = health.clone();
                let reporter = reporter.clone();
                async move {
                    if let Err(error) = health.lock().await.check(&reporter, Utc::now()).await {
                        tracing::error!(%error, "cannot check the alarm path's health");
                    }
                }
            })?;
        }
        Ok(jobs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32, ms: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, h, m, s).unwrap()
            + chrono::TimeDelta::milliseconds(ms.into())
    }

    #[test]
    fn every_schedule_parses() {
        for schedule in [EXPIRE_SCHEDULE, PRUNE_SCHEDULE, HEALTH_SCHEDULE] {
            parse(schedule).unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(parse("every minute").is_err());
    }

    #[test]
    fn the_next_run_is_the_schedules_next_time_and_never_the_last_one_again() {
        let prune = parse(PRUNE_SCHEDULE).unwrap();
        assert_eq!(
            next_run(&prune, at(10, 16, 59, 0), None),
            Some(at(10, 17, 0, 0))
        );
        assert_eq!(
            next_run(&prune, at(10, 17, 0, 0), None),
            Some(at(11, 17, 0, 0))
        );
        // Woken on time, with the wall clock a millisecond behind: not the same run twice.
        let last = Some(at(10, 17, 0, 0));
        assert_eq!(
            next_run(&prune, at(10, 16, 59, 999), last),
            Some(at(11, 17, 0, 0))
        );
        let health = parse(HEALTH_SCHEDULE).unwrap();
        assert_eq!(
            next_run(&health, at(10, 0, 3, 500), None),
            Some(at(10, 0, 10, 0))
        );
    }

    /// The job runs at its times: within a minute the expiry job runs (once, or twice when
    /// the test starts just before a minute's turn), and after shutdown never again.
    #[tokio::test(start_paused = true)]
    async fn a_job_runs_at_its_times_and_stops_on_shutdown() {
        let runs = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let mut jobs = Jobs {
            stop: CancellationToken::new(),
            tasks: JoinSet::new(),
        };
        let counted = runs.clone();
        jobs.add(EXPIRE_SCHEDULE, move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        })
        .unwrap();
        tokio::time::sleep(Duration::from_secs(61)).await;
        let first = runs.load(std::sync::atomic::Ordering::SeqCst);
        assert!((1..=2).contains(&first), "{first}");
        jobs.shutdown().await;
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(
            runs.load(std::sync::atomic::Ordering::SeqCst),
            first,
            "stopped"
        );
    }
}
