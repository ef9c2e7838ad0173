//! What the HTTP notifiers (Slack, Teams, PagerDuty, webhooks) share: one HTTPS client, the
//! endpoint rules ([`endpoint`]), a post that says how far it got, `Retry-After`, and a pace
//! that keeps a notifier within its platform's rate limit.
//!
//! How far a post got decides whether a retry is safe. A post that failed to connect never
//! reached the server: always safe to retry. A post that was sent but got no answer (a
//! timeout, a connection reset) may have been acted on: only an idempotent platform
//! (PagerDuty's `dedup_key`, a webhook receiver keyed by `webhook-id`) may retry it; Slack and
//! Teams would show it twice. Each notifier states its own rule from [`Answer`].

pub(crate) mod endpoint;

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use tokio::sync::Mutex;
use tokio::time::Instant;

pub use endpoint::Endpoint;

use super::render::one_line;
use super::NotifyError;

/// The longest `Retry-After` honoured; a longer one (or a hostile one) waits this long.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(3600);

/// Bytes of an error answer kept for the log line.
const ANSWER_SNIPPET_BYTES: usize = 300;

/// The one client every HTTP notifier shares (one connection pool, one TLS configuration),
/// made on first use so that a daemon without HTTP notifiers never builds it.
fn client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                // A redirect would re-post a message somewhere the configuration never named.
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("iamwatchd/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(10))
                .pool_idle_timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(2)
                .build()
                .map_err(|e| format!("cannot build the HTTPS client: {}", chain(&e)))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// What came of a post.
#[derive(Debug)]
pub(crate) enum Answer {
    /// The server answered.
    Status {
        /// The HTTP status.
        code: u16,
        /// Its `Retry-After`, in seconds or as an HTTP date, capped.
        retry_after: Option<Duration>,
        /// The start of the body, one line, for the log.
        body: String,
    },
    /// No connection was made: the server cannot have seen the message.
    NotSent(String),
    /// Sent, but no (complete) answer: the server may have acted on it.
    Unanswered(String),
}

impl Answer {
    /// A one-line description for an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Answer::Status { code, body, .. } if body.is_empty() => format!("HTTP {code}"),
            Answer::Status { code, body, .. } => format!("HTTP {code}: {body}"),
            Answer::NotSent(e) => format!("could not connect: {e}"),
            Answer::Unanswered(e) => format!("no answer: {e}"),
        }
    }
}

/// Posts `body` (JSON) to `endpoint` with `headers`, waiting at most `timeout`.
pub(crate) async fn post_json(
    endpoint: &Endpoint,
    headers: &[(HeaderName, HeaderValue)],
    body: Vec<u8>,
    timeout: Duration,
) -> Answer {
    let client = match client() {
        Ok(client) => client,
        Err(e) => return Answer::NotSent(e),
    };
    let mut map = HeaderMap::new();
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in headers {
        map.insert(name.clone(), value.clone());
    }
    let sent = client
        .post(endpoint.url())
        .headers(map)
        .body(body)
        .timeout(timeout)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(e) if e.is_connect() => return Answer::NotSent(chain(&e.without_url())),
        Err(e) => return Answer::Unanswered(chain(&e.without_url())),
    };
    let code = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = match response.bytes().await {
        Ok(bytes) => one_line(&snippet(&bytes)),
        Err(e) if (200..300).contains(&code) => {
            // The status said accepted; a body cut short changes nothing.
            tracing::debug!(error = %chain(&e.without_url()), "answer body unreadable");
            String::new()
        }
        Err(e) => return Answer::Unanswered(chain(&e.without_url())),
    };
    Answer::Status {
        code,
        retry_after,
        body,
    }
}

fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(ANSWER_SNIPPET_BYTES)]);
    let mut text = text.trim().to_owned();
    if bytes.len() > ANSWER_SNIPPET_BYTES {
        text.push('…');
    }
    text
}

/// Whether a TCP connection to the endpoint's host opens within `timeout`: what the health
/// check of notifier `name` can learn without posting anything (chat webhooks, PagerDuty and
/// webhook receivers have no call that delivers nothing).
pub(crate) async fn reachable(
    name: &str,
    endpoint: &Endpoint,
    timeout: Duration,
) -> Result<(), NotifyError> {
    let (host, port) = endpoint.address();
    let problem =
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => format!("cannot connect to {}: {e}", endpoint.host()),
            Err(_) => format!(
                "no connection to {} within {}",
                endpoint.host(),
                humantime::format_duration(timeout)
            ),
        };
    Err(NotifyError::transient(name, problem))
}

/// The SHA-256 of `text` in hex: a stable stand-in for an ID too long or too odd for a
/// platform's key (PagerDuty's dedup_key, a webhook-id).
pub(crate) fn sha256_hex(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// An error with its causes, `a: b: c` (reqwest's own message is often just "error sending
/// request"; the cause says "connection refused").
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `Retry-After` as delta-seconds or an HTTP date (RFC 9110 §10.2.3), capped at an hour.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
        (date.with_timezone(&chrono::Utc) - chrono::Utc::now())
            .to_std()
            .unwrap_or_default()
    };
    Some(wait.min(RETRY_AFTER_CAP))
}

/// Spaces a notifier's posts at least `interval` apart (its platform's rate limit), and holds
/// every post back after a 429 until the `Retry-After` has passed. Posts queue in the outbox
/// meanwhile: nothing is dropped.
#[derive(Debug)]
pub(crate) struct Pace {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pace {
    /// At most one post per `interval`.
    pub(crate) fn new(interval: Duration) -> Pace {
        Pace {
            interval,
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for this post's turn.
    pub(crate) async fn turn(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// Holds every later post until `wait` from now.
    pub(crate) async fn hold(&self, wait: Duration) {
        let mut next = self.next.lock().await;
        *next = (*next).max(Instant::now() + wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_a_date_and_is_capped() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("999999"), Some(RETRY_AFTER_CAP));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        let later = (chrono::Utc::now() + chrono::TimeDelta::seconds(120)).to_rfc2822();
        let wait = parse_retry_after(&later).unwrap();
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_pace_spaces_posts_and_a_hold_delays_them_all() {
        let pace = Pace::new(Duration::from_secs(1));
        let start = Instant::now();
        pace.turn().await;
        pace.turn().await;
        pace.turn().await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        pace.hold(Duration::from_secs(30)).await;
        pace.turn().await;
        assert_eq!(start.elapsed(), Duration::from_secs(32));
    }
}
