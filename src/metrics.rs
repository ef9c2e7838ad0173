//! `/metrics` (Prometheus text format) and `/healthz`, on an optional local HTTP listener
//! (`[metrics] listen`).
//!
//! Why hand-written HTTP: the listener serves two GET paths to a scraper and a health probe on
//! a local address. A small HTTP/1.1 responder on tokio (one request per connection, bounded
//! head, timeouts, `Connection: close`) is a few dozen lines and carries no framework into a
//! security tool; every malformed request gets a 4xx and never a panic.
//!
//! The numbers come from where they are produced: the poller's [`Counters`], the delivery
//! workers (sent / failed per notifier), the store sink (new events per path and the detection
//! lag), and the store itself (pending / given-up notifications, alarm-path confirmations,
//! size), read at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::source::cloudtrail::poller::Counters;
use crate::store::SharedStore;
use crate::store::{SeenBy, Stats};

/// The largest request head (request line plus headers) read; larger ones get 431.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// Time a client has to send its request head, and to take the response.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Time the store may take to answer a scrape or a health probe.
const STORE_TIMEOUT: Duration = Duration::from_secs(3);

/// Connections served at once; more wait for a slot (a scraper and a probe need two).
const MAX_CONNECTIONS: usize = 16;

/// Upper bounds, in seconds, of the detection-lag histogram's buckets: from "the poller saw it
/// within seconds" to "the alarm path found it an hour later".
pub const LAG_BUCKETS_SECONDS: [f64; 11] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
];

/// A failure to start the listener.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for /metrics on {addr}: {source}; to fix: choose a free address in [metrics] listen, or remove it")]
pub struct ListenError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// A histogram with fixed buckets ([`LAG_BUCKETS_SECONDS`]); each observation counts once, in
/// the first bucket it fits (cumulated when rendered).
#[derive(Debug, Default)]
pub struct Histogram {
    /// One per bucket plus the overflow (+Inf).
    buckets: [AtomicU64; LAG_BUCKETS_SECONDS.len() + 1],
    sum_millis: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, value: Duration) {
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
}

/// Per-path counters of the store sink.
#[derive(Debug, Default)]
struct PathCounters {
    new_events: AtomicU64,
    lag: Histogram,
}

/// Every number the daemon exposes, shared by the tasks that produce them.
#[derive(Debug)]
pub struct Metrics {
    poller: Arc<Counters>,
    notifiers: BTreeMap<String, NotifierCounters>,
    paths: BTreeMap<SeenBy, PathCounters>,
    /// `/healthz` fails when no poll pass completed for this long.
    health_max_age: Duration,
    started: DateTime<Utc>,
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
            health_max_age,
            started: Utc::now(),
        }
    }

    /// A notifier accepted a notification.
    pub fn notification_sent(&self, notifier: &str) {
        if let Some(counters) = self.notifiers.get(notifier) {
            counters.sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A notifier failed to deliver a notification (it stays queued or is retried).
    pub fn notification_failed(&self, notifier: &str) {
        if let Some(counters) = self.notifiers.get(notifier) {
            counters.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An event was seen for the first time by `path`, `lag` after CloudTrail's eventTime.
    pub fn new_event(&self, path: SeenBy, lag: Duration) {
        if let Some(counters) = self.paths.get(&path) {
            counters.new_events.fetch_add(1, Ordering::Relaxed);
            counters.lag.observe(lag);
        }
    }

    /// `Ok` when the poller completed a pass within the allowed age, else why not.
    pub fn poller_health(&self, now: DateTime<Utc>) -> Result<(), String> {
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

    /// The Prometheus text exposition (format 0.0.4) of every metric; the store's numbers
    /// when it could be read.
    pub fn render(&self, stats: Option<&Stats>) -> String {
        let mut out = String::new();
        let c = &self.poller;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let counters: [(&str, &str, u64); 8] = [
            (
                "iamwatchd_poll_passes_total",
                "LookupEvents passes completed (fast passes and sweeps).",
                load(&c.passes),
            ),
            (
                "iamwatchd_poll_pages_total",
                "LookupEvents pages read.",
                load(&c.pages),
            ),
            (
                "iamwatchd_poll_throttled_total",
                "LookupEvents calls answered with ThrottlingException.",
                load(&c.throttled),
            ),
            (
                "iamwatchd_poll_failed_passes_total",
                "Passes that failed (read or store); the next sweep covers their window.",
                load(&c.failed_passes),
            ),
            (
                "iamwatchd_poll_refetched_events_total",
                "Events read again that were already seen (the cost of overlapping windows).",
                load(&c.events_refetched),
            ),
            (
                "iamwatchd_poll_reads_dropped_total",
                "Read-only events LookupEvents returned and the poller dropped.",
                load(&c.reads_dropped),
            ),
            (
                "iamwatchd_poll_malformed_total",
                "Events whose CloudTrail record could not be read.",
                load(&c.malformed),
            ),
            (
                "iamwatchd_poll_new_events_total",
                "Events the poller read for the first time.",
                load(&c.events_new),
            ),
        ];
        for (name, help, value) in counters {
            header(&mut out, name, help, "counter");
            let _ = writeln!(out, "{name} {value}");
        }

        let name = "iamwatchd_events_reported_total";
        header(
            &mut out,
            name,
            "Reportable events seen for the first time, by the path that saw them first.",
            "counter",
        );
        for (path, counters) in &self.paths {
            let _ = writeln!(
                out,
                "{name}{{path=\"{path}\"}} {}",
                load(&counters.new_events)
            );
        }

        let name = "iamwatchd_detection_lag_seconds";
        header(
            &mut out,
            name,
            "Time from CloudTrail's eventTime to the daemon recording a reportable event.",
            "histogram",
        );
        for (path, counters) in &self.paths {
            let lag = &counters.lag;
            let mut cumulative = 0;
            for (i, bucket) in lag.buckets.iter().enumerate() {
                cumulative += load(bucket);
                let le = LAG_BUCKETS_SECONDS
                    .get(i)
                    .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
                let _ = writeln!(
                    out,
                    "{name}_bucket{{path=\"{path}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let sum = load(&lag.sum_millis) as f64 / 1000.0;
            let _ = writeln!(out, "{name}_sum{{path=\"{path}\"}} {sum}");
            let _ = writeln!(out, "{name}_count{{path=\"{path}\"}} {}", load(&lag.count));
        }

        type Pick = fn(&NotifierCounters) -> &AtomicU64;
        let per_notifier: [(&str, &str, Pick); 2] = [
            (
                "iamwatchd_notifications_sent_total",
                "Notifications a notifier accepted.",
                |c| &c.sent,
            ),
            (
                "iamwatchd_notifications_failed_total",
                "Delivery attempts that failed (retried with backoff).",
                |c| &c.failed,
            ),
        ];
        for (name, help, pick) in per_notifier {
            header(&mut out, name, help, "counter");
            for (notifier, counters) in &self.notifiers {
                let value = load(pick(counters));
                let _ = writeln!(out, "{name}{{notifier=\"{}\"}} {value}", label(notifier));
            }
        }

        let Some(stats) = stats else {
            header(
                &mut out,
                "iamwatchd_store_up",
                "1 when the store could be read for this scrape.",
                "gauge",
            );
            out.push_str("iamwatchd_store_up 0\n");
            return out;
        };
        header(
            &mut out,
            "iamwatchd_store_up",
            "1 when the store could be read for this scrape.",
            "gauge",
        );
        out.push_str("iamwatchd_store_up 1\n");
        for (name, help, kind, counts) in [
            (
                "iamwatchd_notifications_pending",
                "Notifications queued and not yet sent.",
                "gauge",
                &stats.pending,
            ),
            (
                "iamwatchd_notifications_given_up_total",
                "Notifications given up after [delivery] max_age (each also logged as an error).",
                "counter",
                &stats.given_up,
            ),
        ] {
            header(&mut out, name, help, kind);
            for notifier in self
                .notifiers
                .keys()
                .chain(counts.keys())
                .collect::<std::collections::BTreeSet<_>>()
            {
                let value = counts.get(notifier).copied().unwrap_or(0);
                let _ = writeln!(out, "{name}{{notifier=\"{}\"}} {value}", label(notifier));
            }
        }
        let name = "iamwatchd_store_events";
        header(
            &mut out,
            name,
            "Events in the store, by the path that saw them first.",
            "gauge",
        );
        for (path, n) in &stats.seen_by_path {
            let _ = writeln!(out, "{name}{{path=\"{path}\"}} {n}");
        }
        for (name, help, kind, value) in [
            (
                "iamwatchd_alarm_confirmations",
                "Stored events the alarm path confirmed after another path reported them.",
                "gauge",
                stats.confirmed_by_alarm,
            ),
            (
                "iamwatchd_store_size_bytes",
                "Size of the SQLite database and its write-ahead log.",
                "gauge",
                stats.db_size_bytes,
            ),
        ] {
            header(&mut out, name, help, kind);
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value escaped as the exposition format requires.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// What the listener understood of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// HEAD gets the headers of the GET response without its body.
    pub head_only: bool,
    /// The path without the query string.
    pub path: String,
}

/// A complete response; always `Connection: close`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub head_only: bool,
}

const TEXT: &str = "text/plain; charset=utf-8";
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Response {
    fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: TEXT,
            body: body.into(),
            head_only: false,
        }
    }

    fn reason(&self) -> &'static str {
        match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            431 => "Request Header Fields Too Large",
            503 => "Service Unavailable",
            505 => "HTTP Version Not Supported",
            _ => "Internal Server Error",
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            self.reason(),
            self.content_type,
            self.body.len()
        );
        if self.status == 405 {
            out.push_str("Allow: GET, HEAD\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if !self.head_only {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }
}

/// Parses a request head (everything up to the blank line). Only the request line matters:
/// headers are ignored, and a body is never read (GET and HEAD have none).
pub fn parse_request(head: &[u8]) -> Result<Request, Response> {
    let line_end = head.iter().position(|b| *b == b'\n').unwrap_or(head.len());
    let line = std::str::from_utf8(&head[..line_end])
        .map_err(|_| Response::text(400, "bad request: the request line is not UTF-8\n"))?
        .trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Response::text(
            400,
            "bad request: expected METHOD PATH HTTP/1.1\n",
        ));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(Response::text(505, "only HTTP/1.x is spoken here\n"));
    }
    if !target.starts_with('/') {
        return Err(Response::text(
            400,
            "bad request: the path must start with /\n",
        ));
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Err(Response::text(405, "only GET and HEAD are allowed\n")),
    };
    let path = target.split(['?', '#']).next().unwrap_or(target).to_owned();
    Ok(Request { head_only, path })
}

/// Why a request head could not be read.
#[derive(Debug, PartialEq, Eq)]
enum ReadError {
    /// The connection closed before a complete head; nothing to answer.
    Closed,
    TooLarge,
    Incomplete,
}

/// Reads until the blank line that ends the head, at most [`MAX_REQUEST_HEAD`] bytes.
async fn read_head<R: AsyncReadExt + Unpin>(reader: &mut R) -> Result<Vec<u8>, ReadError> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = reader
            .read(&mut chunk)
            .await
            .map_err(|_| ReadError::Closed)?;
        if n == 0 {
            return Err(if buffer.is_empty() {
                ReadError::Closed
            } else {
                ReadError::Incomplete
            });
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = head_end(&buffer) {
            buffer.truncate(end);
            return Ok(buffer);
        }
        if buffer.len() > MAX_REQUEST_HEAD {
            return Err(ReadError::TooLarge);
        }
    }
}

fn head_end(buffer: &[u8]) -> Option<usize> {
    let crlf = buffer.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buffer.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
    .filter(|end| *end <= MAX_REQUEST_HEAD)
}

/// What the listener serves from.
#[derive(Clone)]
pub struct Endpoint {
    pub metrics: Arc<Metrics>,
    pub store: SharedStore,
}

impl Endpoint {
    async fn stats(&self) -> Result<Stats, String> {
        match tokio::time::timeout(STORE_TIMEOUT, self.store.with(|s| s.stats())).await {
            Ok(Ok(stats)) => Ok(stats),
            Ok(Err(error)) => Err(format!("the store cannot be read: {error}")),
            Err(_) => Err(format!("the store did not answer within {STORE_TIMEOUT:?}")),
        }
    }

    /// The response to a well-formed request.
    pub async fn respond(&self, request: &Request) -> Response {
        let mut response = match request.path.as_str() {
            "/metrics" => {
                let stats = match self.stats().await {
                    Ok(stats) => Some(stats),
                    Err(error) => {
                        tracing::warn!("/metrics: {error}");
                        None
                    }
                };
                Response {
                    status: 200,
                    content_type: PROMETHEUS,
                    body: self.metrics.render(stats.as_ref()),
                    head_only: false,
                }
            }
            "/healthz" => {
                let health = self
                    .metrics
                    .poller_health(Utc::now())
                    .and(self.stats().await.map(|_| ()));
                match health {
                    Ok(()) => Response::text(200, "ok\n"),
                    Err(reason) => Response::text(503, format!("unhealthy: {reason}\n")),
                }
            }
            _ => Response::text(404, "not found: try /metrics or /healthz\n"),
        };
        response.head_only = request.head_only;
        response
    }

    async fn connection(&self, mut stream: TcpStream) {
        let response = match tokio::time::timeout(IO_TIMEOUT, read_head(&mut stream)).await {
            Err(_) => Response::text(408, "request timeout\n"),
            Ok(Err(ReadError::Closed)) => return,
            Ok(Err(ReadError::TooLarge)) => Response::text(431, "request head too large\n"),
            Ok(Err(ReadError::Incomplete)) => Response::text(400, "incomplete request\n"),
            Ok(Ok(head)) => match parse_request(&head) {
                Ok(request) => self.respond(&request).await,
                Err(response) => response,
            },
        };
        let bytes = response.to_bytes();
        let _ = tokio::time::timeout(IO_TIMEOUT, async {
            stream.write_all(&bytes).await?;
            stream.shutdown().await
        })
        .await;
    }
}

/// Binds the listener (so a busy address fails `run` at start-up, not silently later).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ListenError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ListenError { addr, source })
}

/// Serves `/metrics` and `/healthz` until `stop` fires.
pub async fn serve(listener: TcpListener, endpoint: Endpoint, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /metrics and /healthz");
    }
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => return,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                let endpoint = endpoint.clone();
                tokio::spawn(async move {
                    endpoint.connection(stream).await;
                    drop(permit);
                });
            }
            Err(error) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(%error, "cannot accept a /metrics connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> Metrics {
        Metrics::new(
            Arc::new(Counters::default()),
            &["smtp".to_owned(), "ops\"mail".to_owned()],
            Duration::from_secs(60),
        )
    }

    /// Every sample line's metric name has HELP and TYPE lines before it, and counters end in
    /// `_total`.
    fn assert_well_formed(text: &str) {
        let mut typed: BTreeMap<String, String> = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                if kind == "counter" {
                    assert!(name.ends_with("_total"), "{name}");
                }
                typed.insert(name.to_owned(), kind.to_owned());
            } else if !line.starts_with("# HELP ") {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| {
                        name.strip_suffix(s)
                            .filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
                    })
                    .unwrap_or(name);
                assert!(typed.contains_key(family), "no TYPE before {line}");
                let value = line.rsplit(' ').next().unwrap();
                assert!(value.parse::<f64>().is_ok(), "{line}");
            }
        }
    }

    #[test]
    fn renders_every_metric_with_help_type_and_labels() {
        let m = metrics();
        m.poller.passes.fetch_add(3, Ordering::Relaxed);
        m.poller.throttled.fetch_add(2, Ordering::Relaxed);
        m.notification_sent("smtp");
        m.notification_sent("smtp");
        m.notification_failed("ops\"mail");
        m.notification_sent("not-configured");
        m.new_event(SeenBy::Poller, Duration::from_secs(12));
        m.new_event(SeenBy::Poller, Duration::from_millis(500));
        m.new_event(SeenBy::Alarm, Duration::from_secs(7200));
        let stats = Stats {
            seen: 3,
            seen_by_path: [(SeenBy::Poller, 2), (SeenBy::Alarm, 1)].into(),
            confirmed_by_alarm: 1,
            pending: [("smtp".to_owned(), 4)].into(),
            given_up: [("gone".to_owned(), 1)].into(),
            db_size_bytes: 4096,
        };
        let text = m.render(Some(&stats));
        assert_well_formed(&text);
        for line in [
            "iamwatchd_poll_passes_total 3",
            "iamwatchd_poll_throttled_total 2",
            "iamwatchd_notifications_sent_total{notifier=\"smtp\"} 2",
            "iamwatchd_notifications_failed_total{notifier=\"ops\\\"mail\"} 1",
            "iamwatchd_events_reported_total{path=\"poller\"} 2",
            "iamwatchd_detection_lag_seconds_bucket{path=\"poller\",le=\"1\"} 1",
            "iamwatchd_detection_lag_seconds_bucket{path=\"poller\",le=\"15\"} 2",
            "iamwatchd_detection_lag_seconds_bucket{path=\"poller\",le=\"+Inf\"} 2",
            "iamwatchd_detection_lag_seconds_sum{path=\"poller\"} 12.5",
            "iamwatchd_detection_lag_seconds_bucket{path=\"alarm\",le=\"3600\"} 0",
            "iamwatchd_detection_lag_seconds_bucket{path=\"alarm\",le=\"+Inf\"} 1",
            "iamwatchd_notifications_pending{notifier=\"smtp\"} 4",
            "iamwatchd_notifications_pending{notifier=\"ops\\\"mail\"} 0",
            "iamwatchd_notifications_given_up_total{notifier=\"gone\"} 1",
            "iamwatchd_alarm_confirmations 1",
            "iamwatchd_store_events{path=\"alarm\"} 1",
            "iamwatchd_store_size_bytes 4096",
            "iamwatchd_store_up 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(!text.contains("not-configured"));
    }

    #[test]
    fn without_the_store_only_its_up_gauge_says_so() {
        let text = metrics().render(None);
        assert_well_formed(&text);
        assert!(text.lines().any(|l| l == "iamwatchd_store_up 0"));
        assert!(!text.contains("iamwatchd_notifications_pending"));
    }

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

    #[test]
    fn request_lines_parse_and_garbage_gets_a_4xx() {
        assert_eq!(
            parse_request(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n"),
            Ok(Request {
                head_only: false,
                path: "/metrics".into()
            })
        );
        assert!(parse_request(b"HEAD /healthz HTTP/1.0").unwrap().head_only);
        let status = |head: &[u8]| parse_request(head).unwrap_err().status;
        assert_eq!(status(b""), 400);
        assert_eq!(status(b"\xff\xfe\x00garbage"), 400);
        assert_eq!(status(b"GET /metrics"), 400);
        assert_eq!(status(b"GET  /metrics HTTP/1.1"), 400);
        assert_eq!(status(b"GET metrics HTTP/1.1"), 400);
        assert_eq!(status(b"GET /metrics SPDY/3"), 505);
        assert_eq!(status(b"POST /metrics HTTP/1.1"), 405);
        assert!(String::from_utf8(Response::text(405, "").to_bytes())
            .unwrap()
            .contains("Allow: GET, HEAD"));
    }

    #[tokio::test]
    async fn heads_are_bounded_and_must_end() {
        let mut ok = &b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody"[..];
        assert_eq!(
            read_head(&mut ok).await.unwrap(),
            b"GET / HTTP/1.1\r\nHost: x".to_vec()
        );
        let huge = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_REQUEST_HEAD));
        assert_eq!(
            read_head(&mut huge.as_bytes()).await,
            Err(ReadError::TooLarge)
        );
        let endless = vec![b'x'; MAX_REQUEST_HEAD * 4];
        assert_eq!(
            read_head(&mut endless.as_slice()).await,
            Err(ReadError::TooLarge)
        );
        assert_eq!(
            read_head(&mut &b"GET / HTTP/1.1\r\n"[..]).await,
            Err(ReadError::Incomplete)
        );
        assert_eq!(read_head(&mut &b""[..]).await, Err(ReadError::Closed));
    }

    /// The listener over a real socket: routes, a 404, garbage, and a HEAD without a body.
    #[tokio::test]
    async fn serves_metrics_health_and_errors_over_tcp() {
        let dir = tempfile::tempdir().unwrap();
        let store = SharedStore::new(crate::store::Store::open(dir.path()).unwrap());
        let m = Arc::new(metrics());
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(
            listener,
            Endpoint {
                metrics: m.clone(),
                store,
            },
            stop.clone(),
        ));
        let ask = |raw: Vec<u8>| async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(&raw).await.unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.unwrap();
            answer
        };
        let starting = ask(b"GET /healthz HTTP/1.1\r\n\r\n".to_vec()).await;
        assert!(
            starting.starts_with("HTTP/1.1 503 Service Unavailable\r\n")
                && starting.contains("no poll pass has completed yet"),
            "{starting}"
        );
        m.poller
            .last_pass_unix_ms
            .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
        let metrics = ask(b"GET /metrics HTTP/1.1\r\n\r\n".to_vec()).await;
        assert!(metrics.starts_with("HTTP/1.1 200 OK\r\n"), "{metrics}");
        assert!(metrics.contains("iamwatchd_store_up 1"));
        let health = ask(b"GET /healthz HTTP/1.1\r\n\r\n".to_vec()).await;
        assert!(
            health.starts_with("HTTP/1.1 200 ") && health.ends_with("\r\n\r\nok\n"),
            "{health}"
        );
        assert!(ask(b"GET /admin HTTP/1.1\r\n\r\n".to_vec())
            .await
            .starts_with("HTTP/1.1 404 "));
        assert!(ask(b"\x16\x03\x01garbage\r\n\r\n".to_vec())
            .await
            .starts_with("HTTP/1.1 400 "));
        // Just over the limit, so the server has read all of it and closes without a reset.
        assert!(ask(vec![b'A'; MAX_REQUEST_HEAD + 100])
            .await
            .starts_with("HTTP/1.1 431 "));
        let head = ask(b"HEAD /metrics HTTP/1.1\r\n\r\n".to_vec()).await;
        assert!(
            head.starts_with("HTTP/1.1 200 ") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        stop.cancel();
        server.await.unwrap();
    }
}
