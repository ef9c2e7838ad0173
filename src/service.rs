//! `iamwatchd run`: wires the poller, the alarm path, the rules, the store and the notifiers
//! together.
//!
//! ```text
//!   Poller ─────records──► StoreSink ─┐
//!                                     ├► Reporter (rules, allow-list, render) ──one tx──► Store
//!   SQS alarm ─► log group ─records───┘                                              │ outbox
//!   delivery worker per notifier ◄──────────────── due rows ◄────────────────────────┘
//! ```
//!
//! Both paths record through the same [`Reporter`], keyed by `eventID`: whichever sees a
//! change first reports it; the alarm path's later sighting confirms it, the poller's later
//! sighting is a duplicate. A periodic health check watches the alarm path from the store.
//!
//! Guarantees, and where they come from:
//! - **nothing lost**: a record is marked seen and its notifications queued in the same
//!   transaction that may move the poller's cursor; a notification is marked sent only after
//!   the notifier accepted it; one that keeps failing is given up only after
//!   `delivery.max_age`, with an error line naming it;
//! - **nothing repeated** beyond the sends in flight at a crash (SMTP messages carry a
//!   Message-ID derived from the eventID so mail systems can drop even those);
//! - **one dead notifier never blocks another**: each has its own worker and backoff.
//!
//! The service takes its shutdown signal as an argument (`run(config, shutdown)`), so tests stop
//! it like systemd does: polling stops, in-flight sends finish within a deadline, exit 0.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config, FailedCalls, StartFrom};
use crate::event::Record;
use crate::metrics::Metrics;
use crate::notify::smtp::{SmtpNotifier, SmtpTls};
use crate::notify::sns::SnsNotifier;
use crate::notify::{Alert, Message, Notifier};
use crate::rules::{self, AllowRule, Severity};
use crate::source::alarm::AlarmPath;
use crate::source::lookup::{Lookup, Schedule};
use crate::source::poller::{Accepted, CursorUpdate, Pass, Poller, Sink, Stream};
use futures_util::StreamExt;

use crate::store::{self, NewEvent, Notification, Recorded, SeenBy, SharedStore, Store};

/// How long in-flight sends may take after the stop signal before the daemon exits anyway.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(20);

/// Tampering events are few and each needs its own lookup (one attribute per call), so their
/// fast passes run at most once a minute: 9 requests a minute per watched region.
const TAMPERING_POLL_INTERVAL: Duration = Duration::from_secs(60);

/// Outbox rows a worker takes per round.
const DELIVERY_BATCH: usize = 20;

/// Sends a worker keeps in flight. One SMTP session delivers a mail per round trip plus the
/// server's delayed ACK (lettre writes the closing dot separately, about 40 ms per mail on
/// Linux), so a burst of changes goes out over several pooled connections at once.
const DELIVERY_CONCURRENCY: usize = 4;

/// How often a worker looks for rows whose backoff has run out (new rows wake it at once).
const DELIVERY_TICK: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("notifier {name}: {source}")]
    Notifier {
        name: String,
        #[source]
        source: crate::notify::NotifyError,
    },
    #[error("the periodic job scheduler failed: {0}")]
    Scheduler(String),
    #[error("cannot record findings: {0}")]
    Record(String),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::ListenError),
}

/// What the rules let through, and how: the configured part of the rule catalogue. The
/// default reports everything the catalogue reports, attempts included.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub allow: Vec<AllowRule>,
    pub failed_calls: FailedCalls,
    pub min_severity: Severity,
}

impl Policy {
    pub fn from_config(rules_config: &config::RulesConfig) -> Policy {
        Policy {
            allow: rules_config
                .allow
                .iter()
                .map(|entry| AllowRule {
                    principal: entry.principal.clone(),
                    event: entry.event.clone(),
                    account: entry.account.clone(),
                })
                .collect(),
            failed_calls: rules_config.failed_calls,
            min_severity: rules_config.min_severity,
        }
    }

    /// The rules' verdict on a record, or `None` when it must not be reported.
    pub fn judge(&self, record: &Record) -> Option<rules::Classification> {
        let classification = rules::classify(record)?;
        if classification.attempt && self.failed_calls == FailedCalls::Ignore {
            return None;
        }
        if classification.severity < self.min_severity {
            return None;
        }
        if let Some(rule) = self.allow.iter().find(|rule| rule.matches(record)) {
            tracing::debug!(event_id = %record.event_id, event = %record.event_name, ?rule,
                "allowed by the allow-list; not reported");
            return None;
        }
        Some(classification)
    }
}

/// Turns records into stored events with their queued messages, for every path: judges each
/// record, renders it once, and records it with one outbox row per notifier in one
/// transaction. The poller's sink and the alarm path both go through it, so a change reads
/// the same whichever path saw it first.
#[derive(Clone)]
pub struct Reporter {
    store: SharedStore,
    policy: Arc<Policy>,
    notifiers: Arc<[String]>,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
}

impl Reporter {
    pub fn new(
        store: SharedStore,
        policy: Policy,
        notifiers: Vec<String>,
        wake: Arc<Notify>,
        metrics: Arc<Metrics>,
    ) -> Reporter {
        Reporter {
            store,
            policy: Arc::new(policy),
            notifiers: notifiers.into(),
            wake,
            metrics,
        }
    }

    /// The reporter for `config`'s rules, queuing for each of `notifiers`.
    pub fn configured(
        config: &Config,
        store: SharedStore,
        notifiers: &[Arc<dyn Notifier>],
        wake: Arc<Notify>,
        metrics: Arc<Metrics>,
    ) -> Reporter {
        Reporter::new(
            store,
            Policy::from_config(&config.rules),
            notifiers.iter().map(|n| n.name().to_owned()).collect(),
            wake,
            metrics,
        )
    }

    /// The stored event and its queued messages for `record`, or `None` when the rules say it
    /// must not be reported.
    pub fn alert_item(
        &self,
        record: Record,
        path: SeenBy,
        now: DateTime<Utc>,
    ) -> Option<(NewEvent, Vec<Notification>)> {
        let classification = self.policy.judge(&record)?;
        let alert = Alert {
            classification,
            detected_at: now,
            seen_by: path,
            record,
        };
        let message = alert.render();
        let event = NewEvent {
            event_id: alert.record.event_id.clone(),
            event_time: alert.record.event_time.unwrap_or(now),
            event_name: alert.record.event_name.clone(),
            severity: alert.classification.severity.to_string(),
            seen_by: path,
            seen_at: now,
        };
        Some(self.message_item(&message, event))
    }

    /// `event` with `message` queued for every notifier: also used for messages about the
    /// pipeline itself, under a synthetic event ID.
    pub fn message_item(
        &self,
        message: &Message,
        event: NewEvent,
    ) -> (NewEvent, Vec<Notification>) {
        let payload = serde_json::to_vec(message).expect("a message serialises");
        let notifications = self
            .notifiers
            .iter()
            .map(|name| Notification {
                notifier: name.clone(),
                payload: payload.clone(),
            })
            .collect();
        (event, notifications)
    }

    /// Records `items` (and moves a cursor) in one transaction, then wakes the delivery
    /// workers when something new was queued.
    pub async fn record(
        &self,
        items: Vec<(NewEvent, Vec<Notification>)>,
        cursor: Option<CursorUpdate>,
    ) -> Result<Vec<Recorded>, store::StoreError> {
        let now = Utc::now();
        let results = self
            .store
            .with(move |store| {
                let value = cursor.as_ref().map(|c| c.value.to_rfc3339());
                let update =
                    cursor
                        .as_ref()
                        .zip(value.as_deref())
                        .map(|(c, value)| store::SetCursor {
                            name: &c.key,
                            value,
                            now,
                        });
                store
                    .record_batch(&items, update)
                    .map(|results| (items, results))
            })
            .await?;
        let (items, results) = results;
        for ((event, _), result) in items.iter().zip(&results) {
            if *result == Recorded::New {
                let lag = (now - event.event_time).to_std().unwrap_or_default();
                self.metrics.new_event(event.seen_by, lag);
            }
        }
        if results.contains(&Recorded::New) {
            self.wake.notify_waiters();
        }
        Ok(results)
    }
}

/// The poller's sink: every record goes through the [`Reporter`] as seen by the poller, in
/// the transaction that also moves the cursor.
pub struct StoreSink {
    reporter: Reporter,
}

impl Sink for StoreSink {
    async fn cursor(&self, key: &str) -> Result<Option<DateTime<Utc>>, String> {
        let key = key.to_owned();
        let cursor = self
            .reporter
            .store
            .with(move |store| store.cursor(&key))
            .await
            .map_err(|e| e.to_string())?;
        match cursor {
            None => Ok(None),
            Some(cursor) => DateTime::parse_from_rfc3339(&cursor.value)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|e| format!("stored cursor {:?} is unreadable: {e}", cursor.value)),
        }
    }

    async fn accept(
        &self,
        records: Vec<Record>,
        _pass: Pass,
        cursor: Option<CursorUpdate>,
    ) -> Result<Accepted, String> {
        let now = Utc::now();
        let items: Vec<_> = records
            .into_iter()
            .filter_map(|record| self.reporter.alert_item(record, SeenBy::Poller, now))
            .collect();
        if items.is_empty() && cursor.is_none() {
            return Ok(Accepted::default());
        }
        let results = self
            .reporter
            .record(items, cursor)
            .await
            .map_err(|e| e.to_string())?;
        let mut accepted = Accepted::default();
        for result in results {
            match result {
                Recorded::New => accepted.new += 1,
                Recorded::Confirmed { .. } | Recorded::Duplicate { .. } => accepted.duplicate += 1,
            }
        }
        Ok(accepted)
    }
}

/// Delivers one notifier's outbox: oldest first, up to [`DELIVERY_CONCURRENCY`] sends in flight,
/// each row marked sent only after the notifier accepted it, failures retried with backoff.
/// Returns when `stop` fires and the rows in hand are done.
async fn deliver(
    notifier: Arc<dyn Notifier>,
    store: SharedStore,
    wake: Arc<Notify>,
    backoff: (Duration, Duration),
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let name = notifier.name().to_owned();
    loop {
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
            .for_each_concurrent(DELIVERY_CONCURRENCY, |row| {
                let (notifier, store, metrics, stop) = (&notifier, &store, &metrics, &stop);
                async move {
                    if !stop.is_cancelled() {
                        deliver_row(&**notifier, store, backoff, metrics, row).await;
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

/// Sends one outbox row and records the outcome.
async fn deliver_row(
    notifier: &dyn Notifier,
    store: &SharedStore,
    backoff: (Duration, Duration),
    metrics: &Metrics,
    row: store::OutboxRow,
) {
    let name = notifier.name();
    let outcome = match serde_json::from_slice::<Message>(&row.payload) {
        Ok(message) => notifier.send(&message).await,
        Err(error) => Err(crate::notify::NotifyError::Permanent {
            notifier: name.to_owned(),
            problem: format!("queued message is unreadable: {error}"),
            fix: "report this as a bug; the message stays in the outbox".to_owned(),
        }),
    };
    let id = row.id;
    let result = match outcome {
        Ok(()) => {
            metrics.notification_sent(name);
            tracing::info!(notifier = %name, event_id = %row.event_id, "notification sent");
            store.with(move |s| s.mark_sent(id, Utc::now())).await
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
            let wait = backoff_with(steps, backoff.0, backoff.1);
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
pub fn backoff_with(attempts: u32, base: Duration, cap: Duration) -> Duration {
    let doublings = attempts.saturating_sub(1).min(31);
    base.saturating_mul(1u32 << doublings).min(cap)
}

/// One delivery worker per notifier, all stopping on `stop`.
fn spawn_delivery(
    notifiers: Vec<Arc<dyn Notifier>>,
    store: &SharedStore,
    wake: &Arc<Notify>,
    delivery: &config::DeliveryConfig,
    metrics: &Arc<Metrics>,
    stop: &CancellationToken,
) -> tokio::task::JoinSet<()> {
    let mut workers = tokio::task::JoinSet::new();
    for notifier in notifiers {
        workers.spawn(deliver(
            notifier,
            store.clone(),
            wake.clone(),
            (delivery.initial_backoff, delivery.max_backoff),
            metrics.clone(),
            stop.clone(),
        ));
    }
    workers
}

/// The notifiers the configuration names, built and ready to send.
pub async fn build_notifiers(config: &Config) -> Result<Vec<Arc<dyn Notifier>>, ServiceError> {
    let mut notifiers: Vec<Arc<dyn Notifier>> = Vec::new();
    if let Some(smtp) = &config.smtp {
        let settings = crate::notify::smtp::SmtpConfig {
            host: smtp.host.clone(),
            port: smtp.port,
            tls: match smtp.tls {
                config::SmtpTls::Starttls => SmtpTls::StartTlsRequired,
                config::SmtpTls::Implicit => SmtpTls::Implicit,
                config::SmtpTls::None => SmtpTls::None,
            },
            allow_plaintext: smtp.tls == config::SmtpTls::None,
            ca_file: smtp.ca_file.clone(),
            username: smtp.auth.as_ref().map(|a| a.username.clone()),
            password: smtp.auth.as_ref().map(|a| a.password.expose().to_owned()),
            from: smtp.from.clone(),
            to: smtp.to.clone(),
            timeout: smtp.timeout,
        };
        let notifier =
            SmtpNotifier::new("smtp", &settings).map_err(|source| ServiceError::Notifier {
                name: "smtp".into(),
                source,
            })?;
        notifiers.push(Arc::new(notifier));
    }
    if let Some(sns) = &config.sns {
        let sdk = crate::aws::loader(&sns.region, config.aws.max_attempts)
            .load()
            .await;
        let notifier = SnsNotifier::new("sns", &sns.topic_arn, &sdk).map_err(|source| {
            ServiceError::Notifier {
                name: "sns".into(),
                source,
            }
        })?;
        notifiers.push(Arc::new(notifier));
    }
    Ok(notifiers)
}

/// The poller's streams: IAM in the configured region (us-east-1), and each tampering event
/// in each watched region.
pub fn streams(config: &Config) -> Vec<Stream> {
    let mut streams = vec![Stream {
        region: config.aws.region.clone(),
        lookup: Lookup::EventSource(rules::IAM_EVENT_SOURCE.to_owned()),
        poll_interval: config.poller.poll_interval,
    }];
    for region in &config.aws.tampering_regions {
        for (_, name) in rules::TAMPERING_EVENTS {
            streams.push(Stream {
                region: region.clone(),
                lookup: Lookup::EventName((*name).to_owned()),
                poll_interval: config.poller.poll_interval.max(TAMPERING_POLL_INTERVAL),
            });
        }
    }
    streams
}

pub fn schedule(poller: &config::PollerConfig) -> Schedule {
    Schedule {
        poll_interval: poller.poll_interval,
        fast_window: poller.short_window,
        sweep_interval: poller.sweep_interval,
        sweep_horizon: poller.sweep_horizon,
        start_from: match poller.start_from {
            StartFrom::Now => Duration::ZERO,
            StartFrom::Ago(ago) => ago,
        },
    }
}

/// The alarm path's SQS consumer, when `alarm.queue_url` is set. The queue's region is read
/// from its URL (`https://sqs.<region>.amazonaws.com/...`), the log group is read in
/// `aws.region`.
async fn alarm_path(config: &Config, reporter: Reporter) -> Option<AlarmPath> {
    let queue_url = config.alarm.queue_url.clone()?;
    let log_group = config.alarm.log_group.clone()?;
    let queue_region = crate::aws::arn::queue_url_region(&queue_url).unwrap_or(&config.aws.region);
    let sqs_sdk = crate::aws::loader(queue_region, config.aws.max_attempts)
        .load()
        .await;
    let logs_sdk = crate::aws::loader(&config.aws.region, config.aws.max_attempts)
        .load()
        .await;
    Some(AlarmPath {
        sqs: aws_sdk_sqs::Client::new(&sqs_sdk),
        logs: aws_sdk_cloudwatchlogs::Client::new(&logs_sdk),
        queue_url,
        log_group,
        region: config.aws.region.clone(),
        margin: config.alarm.lookback_margin,
        reporter,
    })
}

/// Runs the daemon until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServiceError> {
    let store = SharedStore::new(Store::open(&config.store.state_directory)?);
    let notifiers = build_notifiers(&config).await?;
    for notifier in &notifiers {
        if let Err(error) = notifier.healthcheck().await {
            // Not fatal: changes are queued and delivered once the notifier is reachable.
            tracing::warn!(notifier = notifier.name(), "health check failed: {error}");
        }
    }
    let streams = streams(&config);
    let mut clients = HashMap::new();
    for stream in &streams {
        if !clients.contains_key(&stream.region) {
            // One attempt per call: the poller retries within its budget itself.
            let sdk = crate::aws::loader(&stream.region, 1).load().await;
            clients.insert(stream.region.clone(), aws_sdk_cloudtrail::Client::new(&sdk));
        }
    }
    let poller = Poller::new(
        streams,
        clients,
        config.poller.requests_per_second,
        schedule(&config.poller),
    );
    let notifier_names: Vec<String> = notifiers.iter().map(|n| n.name().to_owned()).collect();
    let metrics = Arc::new(Metrics::new(
        poller.counters(),
        &notifier_names,
        health_max_age(&config.poller),
    ));
    let wake = Arc::new(Notify::new());
    let reporter = Reporter::configured(
        &config,
        store.clone(),
        &notifiers,
        wake.clone(),
        metrics.clone(),
    );
    let sink = Arc::new(StoreSink {
        reporter: reporter.clone(),
    });
    let stop_metrics = CancellationToken::new();
    let metrics_server = match config.metrics.listen {
        Some(addr) => {
            let listener = crate::metrics::bind(addr).await?;
            let endpoint = crate::metrics::Endpoint {
                metrics: metrics.clone(),
                store: store.clone(),
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
    let mut scheduler = periodic_jobs(&config, store.clone(), reporter.clone()).await?;
    let polling = tokio::spawn(poller.run(sink, stop_polling.clone()));
    let alarm_path = alarm_path(&config, reporter)
        .await
        .map(|path| tokio::spawn(path.run(stop_polling.clone())));
    let mut delivery = spawn_delivery(
        notifiers,
        &store,
        &wake,
        &config.delivery,
        &metrics,
        &stop_delivery,
    );
    tracing::info!(region = %config.aws.region, "iamwatchd is running");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);

    // The watchdog is fed only while the poller makes progress (or is still within its first
    // health window), so systemd restarts a daemon whose polling is stuck, not just dead.
    let started = Utc::now();
    let grace = chrono::TimeDelta::from_std(health_max_age(&config.poller)).unwrap_or_default();
    let watchdog = async {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        let mut complained = false;
        loop {
            tick.tick().await;
            let now = Utc::now();
            match metrics.poller_health(now) {
                Err(reason) if now - started > grace => {
                    if !complained {
                        tracing::error!(%reason, "not feeding the systemd watchdog");
                        complained = true;
                    }
                }
                _ => {
                    complained = false;
                    let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
                }
            }
        }
    };
    tokio::select! {
        _ = shutdown => {}
        _ = watchdog => {}
    }

    tracing::info!("stopping: polling ends, in-flight notifications get {SHUTDOWN_DEADLINE:?}");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    stop_polling.cancel();
    let _ = polling.await;
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
    if let Err(error) = scheduler.shutdown().await {
        tracing::warn!(%error, "periodic jobs did not stop cleanly");
    }
    stop_metrics.cancel();
    if let Some(server) = metrics_server {
        let _ = server.await;
    }
    Ok(())
}

/// Reports records found outside the daemon (`scan --notify`): they are recorded as seen by the
/// scan, so an event the daemon already reported is not repeated (and the daemon will not repeat
/// it later), then delivered; returns how many were new once the outbox is empty or `deadline`
/// has passed (what is left is delivered by the daemon or the next scan).
pub async fn report_once(
    config: &Config,
    records: Vec<Record>,
    deadline: Duration,
) -> Result<usize, ServiceError> {
    let store = SharedStore::new(Store::open(&config.store.state_directory)?);
    let notifiers = build_notifiers(config).await?;
    let names: Vec<String> = notifiers.iter().map(|n| n.name().to_owned()).collect();
    // Counted like the daemon's, though nobody scrapes a one-off scan.
    let metrics = Arc::new(Metrics::new(
        Arc::new(crate::source::poller::Counters::default()),
        &names,
        health_max_age(&config.poller),
    ));
    let wake = Arc::new(Notify::new());
    let reporter = Reporter::configured(
        config,
        store.clone(),
        &notifiers,
        wake.clone(),
        metrics.clone(),
    );
    let now = Utc::now();
    let items = records
        .into_iter()
        .filter_map(|record| reporter.alert_item(record, SeenBy::Scan, now))
        .collect();
    let new = reporter
        .record(items, None)
        .await?
        .into_iter()
        .filter(|r| *r == Recorded::New)
        .count();
    let stop = CancellationToken::new();
    let mut workers = spawn_delivery(notifiers, &store, &wake, &config.delivery, &metrics, &stop);
    let drained = tokio::time::timeout(deadline, async {
        loop {
            let pending = store.with(|s| s.pending_counts()).await?;
            if pending.values().all(|n| *n == 0) {
                return Ok::<_, ServiceError>(());
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

/// How old the last completed poll pass may be before `/healthz` fails: three sweep (or
/// poll) intervals, so one slow or failed pass is not an outage but a stuck poller is.
pub fn health_max_age(poller: &config::PollerConfig) -> Duration {
    poller.sweep_interval.max(poller.poll_interval) * 3
}

/// Expiry of undeliverable notifications (every minute), pruning of the seen-event store
/// (hourly) and, with the alarm path, its health check, driven by tokio-cron-scheduler.
async fn periodic_jobs(
    config: &Config,
    store: SharedStore,
    reporter: Reporter,
) -> Result<tokio_cron_scheduler::JobScheduler, ServiceError> {
    use tokio_cron_scheduler::{Job, JobScheduler};
    let failed =
        |e: tokio_cron_scheduler::JobSchedulerError| ServiceError::Scheduler(e.to_string());
    let scheduler = JobScheduler::new().await.map_err(failed)?;

    let max_age = config.delivery.max_age;
    let expiring = store.clone();
    let expire = Job::new_async("0 * * * * *", move |_, _| {
        let store = expiring.clone();
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
    })
    .map_err(failed)?;
    scheduler.add(expire).await.map_err(failed)?;

    let retention = config.store.retention;
    let prune = Job::new_async("0 17 * * * *", move |_, _| {
        let store = store.clone();
        Box::pin(async move {
            match store.with(move |s| s.prune(retention, Utc::now())).await {
                Ok(pruned) => tracing::info!(pruned, "forgot events older than the retention"),
                Err(error) => tracing::error!(%error, "cannot prune the store"),
            }
        })
    })
    .map_err(failed)?;
    scheduler.add(prune).await.map_err(failed)?;

    if config.alarm.queue_url.is_some() {
        let health = Arc::new(tokio::sync::Mutex::new(Health::new(
            config.alarm.confirm_within,
            config.alarm.health_messages,
        )));
        let job = Job::new_async(HEALTH_SCHEDULE, move |_, _| {
            let health = health.clone();
            let reporter = reporter.clone();
            Box::pin(async move {
                if let Err(error) = health.lock().await.check(&reporter, Utc::now()).await {
                    tracing::error!(%error, "cannot check the alarm path's health");
                }
            })
        })
        .map_err(failed)?;
        scheduler.add(job).await.map_err(failed)?;
    }
    scheduler.start().await.map_err(failed)?;
    Ok(scheduler)
}

/// The health check runs every 10 seconds: one indexed query, and a broken alarm path is
/// noticed soon after `alarm.confirm_within`.
const HEALTH_SCHEDULE: &str = "*/10 * * * * *";

/// Changes listed by name in a health message.
const HEALTH_EXAMPLES: usize = 5;

/// Unconfirmed changes looked at per check.
const HEALTH_LIMIT: usize = 1000;

/// The pipeline-health check of the alarm path, both directions.
///
/// - Changes the poller reported that the alarm path has not confirmed within
///   `confirm_within`: the trail, the log group, the filter, the alarm, the topic or the queue
///   may be broken or tampered with. Only changes first seen within `confirm_within` (at
///   least a minute) before that count, so an incident ends once the alarm path confirms again. An
///   incident is logged and (configurable) sent once, when it starts, under the synthetic
///   event ID `health:alarm-silent:<first eventID>` so a restart does not repeat it either.
///   An alarm that stays in ALARM across periods sends no new notification: changes in a
///   long burst can look unconfirmed; the message says so.
/// - Alarm firings the poller never explained (changes first seen by the alarm path) are
///   counted from the store and logged whenever the count grows.
struct Health {
    confirm_within: Duration,
    send: bool,
    incident: Option<String>,
    alarm_first: Option<u64>,
}

impl Health {
    fn new(confirm_within: Duration, send: bool) -> Health {
        Health {
            confirm_within,
            send,
            incident: None,
            alarm_first: None,
        }
    }

    async fn check(
        &mut self,
        reporter: &Reporter,
        now: DateTime<Utc>,
    ) -> Result<(), store::StoreError> {
        let within = chrono::TimeDelta::from_std(self.confirm_within).unwrap_or_default();
        // Recent changes only (see the type's doc), but never a window shorter than a few
        // checks, or a change could slip between two of them.
        let lookback = within.max(chrono::TimeDelta::minutes(1));
        let (after, before) = (now - within - lookback, now - within);
        let (silent, stats) = reporter
            .store
            .with(move |s| {
                Ok((
                    s.unconfirmed_between(after, before, HEALTH_LIMIT)?,
                    s.stats()?,
                ))
            })
            .await?;

        let alarm_first = stats.seen_by_path.get(&SeenBy::Alarm).copied().unwrap_or(0);
        if self.alarm_first.is_some_and(|before| alarm_first > before) {
            tracing::warn!(
                alarm_first,
                "alarm firings the poller did not explain: changes (or \
                empty alarm windows) first reported by the alarm path since start-up grew"
            );
        }
        self.alarm_first = Some(alarm_first);

        let Some(first) = silent.first() else {
            if let Some(incident) = self.incident.take() {
                tracing::info!(%incident, "the alarm path confirms changes again");
            }
            return Ok(());
        };
        if self.incident.is_some() {
            return Ok(());
        }
        let event_id = format!("health:alarm-silent:{}", first.event_id);
        let examples: Vec<_> = silent
            .iter()
            .take(HEALTH_EXAMPLES)
            .map(|e| (e.event_name.clone(), e.event_id.clone(), e.first_seen_at))
            .collect();
        tracing::warn!(count = silent.len(), confirm_within = ?self.confirm_within,
            examples = ?examples.iter().map(|e| &e.0).collect::<Vec<_>>(),
            "alarm path silent: changes the poller reported were not confirmed by the alarm");
        self.incident = Some(event_id.clone());
        if self.send {
            let message =
                crate::notify::render::silent_alarm_path(&crate::notify::render::SilentAlarmPath {
                    event_id: &event_id,
                    count: silent.len(),
                    examples: &examples,
                    confirm_within: self.confirm_within,
                });
            let event = NewEvent {
                event_id,
                event_time: now,
                event_name: message.event_name.clone(),
                severity: message.severity.clone(),
                // Recorded as the alarm path's own finding: a poller or scan entry would count
                // as a change awaiting confirmation itself.
                seen_by: SeenBy::Alarm,
                seen_at: now,
            };
            let recorded = reporter
                .record(vec![reporter.message_item(&message, event)], None)
                .await?;
            if recorded.contains(&Recorded::New) {
                // Not an alarm firing: keep it out of the count above.
                self.alarm_first = Some(alarm_first + 1);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reporter() -> (tempfile::TempDir, Reporter) {
        let dir = tempfile::tempdir().unwrap();
        let store = SharedStore::new(Store::open(dir.path()).unwrap());
        let policy = Policy {
            allow: Vec::new(),
            failed_calls: FailedCalls::Report,
            min_severity: Severity::Info,
        };
        let names = vec!["smtp".to_owned()];
        let metrics = Arc::new(Metrics::new(
            Arc::new(crate::source::poller::Counters::default()),
            &names,
            Duration::from_secs(60),
        ));
        let reporter = Reporter::new(store, policy, names, Arc::new(Notify::new()), metrics);
        (dir, reporter)
    }

    fn seen(id: &str, by: SeenBy, at: DateTime<Utc>) -> NewEvent {
        NewEvent {
            event_id: id.to_owned(),
            event_time: at,
            event_name: "CreateUser".to_owned(),
            severity: "MEDIUM".to_owned(),
            seen_by: by,
            seen_at: at,
        }
    }

    async fn queued(reporter: &Reporter) -> Vec<String> {
        reporter
            .store
            .with(|s| s.due("smtp", Utc::now() + chrono::TimeDelta::days(1), 100))
            .await
            .unwrap()
            .into_iter()
            .map(|row| row.event_id)
            .collect()
    }

    #[tokio::test]
    async fn a_silent_alarm_path_is_one_message_per_incident() {
        let (_dir, reporter) = reporter();
        let now = Utc::now();
        let minute = chrono::TimeDelta::minutes(1);
        let mut health = Health::new(Duration::from_secs(600), true);
        // Reported 11 minutes ago, never confirmed: an incident.
        let message = Message {
            subject: "s".into(),
            text: "t".into(),
            html: "h".into(),
            event_id: "e-1".into(),
            severity: "MEDIUM".into(),
            category: "iam-change".into(),
            attempt: false,
            event_name: "CreateUser".into(),
            account: "1".into(),
        };
        let old = reporter.message_item(&message, seen("e-1", SeenBy::Poller, now - minute * 11));
        let fresh = reporter.message_item(&message, seen("e-2", SeenBy::Poller, now - minute));
        reporter.record(vec![old, fresh], None).await.unwrap();
        health.check(&reporter, now).await.unwrap();
        health
            .check(&reporter, now + chrono::TimeDelta::seconds(10))
            .await
            .unwrap();
        let ids = queued(&reporter).await;
        assert_eq!(
            ids.iter()
                .filter(|id| id.starts_with("health:"))
                .collect::<Vec<_>>(),
            ["health:alarm-silent:e-1"],
            "once, not every check"
        );
        // A fresh daemon (restart) re-detects the same incident: the event ID dedups it.
        let mut restarted = Health::new(Duration::from_secs(600), true);
        restarted.check(&reporter, now).await.unwrap();
        assert_eq!(queued(&reporter).await.len(), ids.len());

        // The alarm confirms both: the incident ends.
        let confirm = vec![
            reporter.message_item(&message, seen("e-1", SeenBy::Alarm, now)),
            reporter.message_item(&message, seen("e-2", SeenBy::Alarm, now)),
        ];
        let results = reporter.record(confirm, None).await.unwrap();
        assert!(results
            .iter()
            .all(|r| matches!(r, Recorded::Confirmed { .. })));
        health.check(&reporter, now + minute * 20).await.unwrap();
        assert_eq!(health.incident, None);
    }

    fn record(name: &str, extra: serde_json::Value) -> Record {
        let mut value = serde_json::json!({
            "eventID": "e1", "eventName": name, "eventSource": "iam.amazonaws.com",
            "eventTime": "2026-11-25T12:00:00Z", "readOnly": false,
            "recipientAccountId": "111122223333",
            "userIdentity": {"type": "AssumedRole",
                "arn": "arn:aws:sts::111122223333:assumed-role/ci/build-7",
                "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::111122223333:role/ci"}}},
            "requestParameters": {"roleName": "app"}
        });
        value
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        Record::from_json(value).unwrap()
    }

    fn policy() -> Policy {
        Policy {
            allow: vec![AllowRule {
                principal: Some("arn:aws:iam::111122223333:role/ci".into()),
                event: Some("Tag*".into()),
                account: None,
            }],
            failed_calls: FailedCalls::Report,
            min_severity: Severity::Info,
        }
    }

    #[test]
    fn backoff_doubles_from_the_initial_delay_to_the_cap() {
        let defaults = (
            crate::config::defaults::INITIAL_BACKOFF,
            crate::config::defaults::MAX_BACKOFF,
        );
        let secs: Vec<u64> = (0..12)
            .map(|n| backoff_with(n, defaults.0, defaults.1).as_secs())
            .collect();
        assert_eq!(secs, [5, 5, 10, 20, 40, 80, 160, 300, 300, 300, 300, 300]);
        assert_eq!(
            backoff_with(u32::MAX, defaults.0, defaults.1),
            Duration::from_secs(300)
        );
        assert_eq!(
            backoff_with(3, Duration::from_millis(100), Duration::from_secs(1)),
            Duration::from_millis(400)
        );
    }

    #[test]
    fn an_allow_rule_for_a_role_covers_every_session_of_it() {
        let policy = policy();
        assert!(policy
            .judge(&record("TagRole", serde_json::json!({})))
            .is_none());
        assert!(
            policy
                .judge(&record("CreateRole", serde_json::json!({})))
                .is_some(),
            "only the allowed event names"
        );
    }

    #[test]
    fn failed_calls_are_reported_as_attempts_or_ignored_per_config() {
        let denied = record(
            "CreateRole",
            serde_json::json!({"errorCode": "AccessDenied"}),
        );
        let verdict = policy().judge(&denied).expect("reported");
        assert!(verdict.attempt);
        let ignoring = Policy {
            failed_calls: FailedCalls::Ignore,
            ..policy()
        };
        assert!(ignoring.judge(&denied).is_none());
    }

    #[test]
    fn min_severity_drops_what_is_below_it_and_reads_are_never_reported() {
        let strict = Policy {
            min_severity: Severity::Critical,
            ..policy()
        };
        assert!(strict
            .judge(&record("UpdateRoleDescription", serde_json::json!({})))
            .is_none());
        assert!(strict
            .judge(&record("UpdateAssumeRolePolicy", serde_json::json!({})))
            .is_some());
        assert!(policy()
            .judge(&record("GetRole", serde_json::json!({"readOnly": true})))
            .is_none());
    }
}
