//! One LookupEvents pass, a page at a time: the lookup attribute, the frozen window, the
//! pager, and what a failed call means (throttling backs off the shared budget; other
//! transient failures are retried a few times; the rest end the pass with the fix).
//!
//! A `NextToken` is only valid with identical parameters, so each pass freezes its StartTime and
//! EndTime for all of its pages.

use std::time::Duration;

use aws_sdk_cloudtrail::error::SdkError;
use aws_sdk_cloudtrail::operation::lookup_events::{LookupEventsError, LookupEventsOutput};
use aws_sdk_cloudtrail::primitives::DateTime as SmithyTime;
use aws_sdk_cloudtrail::types::{Event, LookupAttribute, LookupAttributeKey};
use aws_sdk_cloudtrail::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use chrono::{DateTime, Utc};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::budget::{Budget, Outcome};
use crate::aws::errors::{AwsError, Kind};
use crate::event::Record;
use crate::rules;

/// The AWS actions this module calls (the daemon's policy, `deploy/iamwatchd-policy.json`,
/// must allow exactly the union of every module's list; `src/aws/actions.rs` enforces it).
#[cfg(test)]
pub(crate) const ACTIONS: &[&str] = &["cloudtrail:LookupEvents"];

/// Page size: the API's maximum, to spend the fewest requests.
const PAGE_SIZE: i32 = 50;

/// Attempts [`fetch_window`] (a one-off command: `scan --since`) makes at a page that fails
/// transiently before it gives up. The daemon's streams never give up a page (see
/// [`PageError::Retry`]).
const TRANSIENT_ATTEMPTS: u32 = 5;

/// First backoff after a transient failure; doubles per attempt (0.25, 0.5, 1, 2 s, …).
const TRANSIENT_BACKOFF: Duration = Duration::from_millis(250);

/// The longest backoff after transient failures of one page.
const MAX_TRANSIENT_BACKOFF: Duration = Duration::from_secs(60);

/// Where pages are read: a CloudTrail client and, for a member account, the account's
/// credentials and their cache, applied to each request. One client per region then serves
/// every member account (a client's runtime plugins and configuration are 15 KB; a hundred
/// accounts held one each per region).
#[derive(Debug, Clone)]
pub struct Reader {
    client: Client,
    member: Option<aws_sdk_cloudtrail::config::Builder>,
}

impl Reader {
    /// Reads with `client` and its own credentials.
    pub fn own(client: Client) -> Reader {
        Reader {
            client,
            member: None,
        }
    }

    /// Reads with `client` (made without credentials, so that nothing is read without the
    /// member's) and the credentials and identity cache of the member account's `sdk`.
    /// Without its own identity cache the SDK would give every request a fresh one, and
    /// assume the role each time.
    pub fn member(client: Client, sdk: &aws_config::SdkConfig) -> Reader {
        let mut member = aws_sdk_cloudtrail::config::Builder::default();
        member.set_credentials_provider(sdk.credentials_provider());
        if let Some(cache) = sdk.identity_cache() {
            member.set_identity_cache(cache);
        }
        Reader {
            client,
            member: Some(member),
        }
    }

    /// One page of `lookup` in `window` (the first, or the one `token` names), read with
    /// the member's credentials.
    pub(crate) async fn page(
        &self,
        lookup: &Lookup,
        window: Window,
        token: Option<String>,
    ) -> Result<LookupEventsOutput, SdkError<LookupEventsError, HttpResponse>> {
        let request = self
            .client
            .lookup_events()
            .lookup_attributes(lookup.attribute())
            .start_time(to_smithy(window.start))
            .end_time(to_smithy(window.end))
            .max_results(PAGE_SIZE)
            .set_next_token(token);
        match &self.member {
            Some(member) => {
                request
                    .customize()
                    .config_override(member.clone())
                    .send()
                    .await
            }
            None => request.send().await,
        }
    }
}

/// What one stream asks LookupEvents for (exactly one lookup attribute, as the API demands).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Every event of one service, by its `eventSource` (`iam.amazonaws.com`).
    EventSource(String),
    /// Every event of one API call, by its `eventName` (`StopLogging`).
    EventName(String),
    /// Every event of one user, by LookupEvents' user name (`root` for the root user).
    Username(String),
}

impl Lookup {
    /// The lookups that find every call of the catalogue's `group`.
    pub fn of_group(group: &rules::Group) -> Vec<Lookup> {
        group
            .lookups()
            .into_iter()
            .map(|(attribute, value)| match attribute {
                rules::Attribute::EventSource => Lookup::EventSource(value.to_owned()),
                rules::Attribute::EventName => Lookup::EventName(value.to_owned()),
                rules::Attribute::Username => Lookup::Username(value.to_owned()),
            })
            .collect()
    }

    fn attribute(&self) -> LookupAttribute {
        let (key, value) = match self {
            Lookup::EventSource(v) => (LookupAttributeKey::EventSource, v),
            Lookup::EventName(v) => (LookupAttributeKey::EventName, v),
            Lookup::Username(v) => (LookupAttributeKey::Username, v),
        };
        LookupAttribute::builder()
            .attribute_key(key)
            .attribute_value(value)
            .build()
            .expect("key and value are set")
    }

    /// A stable name for cursors, logs and metrics: `EventSource=iam.amazonaws.com`.
    pub fn label(&self) -> String {
        match self {
            Lookup::EventSource(v) => format!("EventSource={v}"),
            Lookup::EventName(v) => format!("EventName={v}"),
            Lookup::Username(v) => format!("Username={v}"),
        }
    }
}

/// A time range with both ends frozen for the whole pagination run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The earliest event time read, sent as LookupEvents' `StartTime`.
    pub start: DateTime<Utc>,
    /// The latest event time read, sent as LookupEvents' `EndTime`.
    pub end: DateTime<Utc>,
}

/// What a pass cost and found; logged per pass and summed into metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassStats {
    /// Pages read: LookupEvents calls that were answered.
    pub pages: u32,
    /// Entries the pages held, the dropped reads and malformed entries included.
    pub events: u32,
    /// Read-only entries dropped (the entry's `ReadOnly`, else the record's `readOnly`).
    pub reads_dropped: u32,
    /// LookupEvents calls answered with throttling (each one retried after a back-off).
    pub throttled: u32,
    /// Entries whose `CloudTrailEvent` could not be parsed; they are kept from the entry's own
    /// fields when those suffice.
    pub malformed: u32,
}

impl PassStats {
    /// Adds `other`'s counts to these.
    pub(crate) fn add(&mut self, other: PassStats) {
        self.pages += other.pages;
        self.events += other.events;
        self.reads_dropped += other.reads_dropped;
        self.throttled += other.throttled;
        self.malformed += other.malformed;
    }
}

/// The records of a window that are not reads, oldest first, and what the pass cost.
#[derive(Debug, Default)]
pub struct Fetched {
    /// The window's records that are not reads, oldest first.
    pub records: Vec<Record>,
    /// What the whole pass cost and found.
    pub stats: PassStats,
}

/// Why a LookupEvents pass stopped before reading its whole window.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The credentials are valid but may not call LookupEvents.
    #[error(
        "CloudTrail refused LookupEvents in {region} ({code}: {message}); grant the daemon's \
         role cloudtrail:LookupEvents (see deploy/iamwatchd-policy.json)"
    )]
    AccessDenied {
        /// The region whose CloudTrail was called.
        region: String,
        /// The AWS error code (`AccessDeniedException`, …); empty when the answer had none.
        code: String,
        /// The AWS error message.
        message: String,
    },
    /// The credentials are missing, invalid or expired.
    #[error(
        "no usable AWS credentials for LookupEvents in {region}: {message}; provide valid ones the \
         standard way (environment, profile, instance or task role)"
    )]
    Credentials {
        /// The region whose CloudTrail was called.
        region: String,
        /// The SDK's error, with the AWS error code when there is one.
        message: String,
    },
    /// Every attempt at a page failed transiently (a 5xx, a timeout, no answer).
    #[error(
        "CloudTrail LookupEvents in {region} kept failing after {attempts} attempts: {message}"
    )]
    Unavailable {
        /// The region whose CloudTrail was called.
        region: String,
        /// How many attempts were made at the page, all failed.
        attempts: u32,
        /// The last attempt's error.
        message: String,
    },
    /// CloudTrail refused the request as it is (invalid parameters, something not found):
    /// the same call would fail the same way.
    #[error("CloudTrail rejected the LookupEvents request in {region} ({code}): {message}")]
    Rejected {
        /// The region whose CloudTrail was called.
        region: String,
        /// The AWS error code; empty when the answer had none.
        code: String,
        /// The AWS error message.
        message: String,
    },
    /// The cancellation token fired before the pass was done.
    #[error("stopped while reading LookupEvents")]
    Cancelled,
}

/// Why [`Pager::next_page`] read no page.
#[derive(Debug)]
pub(crate) enum PageError {
    /// Throttled (`ThrottlingException`, `RequestLimitExceeded`, …) or a transient failure (a
    /// 5xx with or without an error code, `RequestTimeout`, no answer): the same page can
    /// succeed later. The pager keeps its place (the page's token; the cursor moves only
    /// after the last page), and the caller retries this stream after `after`, going on
    /// with the others meanwhile.
    Retry {
        /// How long to wait before the next attempt at this page.
        after: Duration,
        /// Whether it was throttling (else a transient failure).
        throttled: bool,
        /// Consecutive failed attempts at this page.
        attempts: u32,
        /// The failure, for the log.
        message: String,
    },
    /// The pass cannot go on (credentials, permissions, a rejected request, cancellation).
    Failed(LookupError),
}

fn to_smithy(time: DateTime<Utc>) -> SmithyTime {
    SmithyTime::from_millis(time.timestamp_millis())
}

/// A record from one LookupEvents entry. An entry whose `CloudTrailEvent` cannot be read is
/// kept with what the envelope says (nothing is lost), and counted as malformed.
fn record_of(event: &Event, stats: &mut PassStats) -> Option<Record> {
    if let Some(parsed) = event
        .cloud_trail_event()
        .and_then(|t| Record::parse(t).ok())
    {
        return Some(parsed);
    }
    stats.malformed += 1;
    let time = event
        .event_time()
        .and_then(|t| DateTime::<Utc>::from_timestamp_millis(t.to_millis().ok()?))
        .map(|t| t.to_rfc3339());
    let envelope = json!({
        "eventID": event.event_id(),
        "eventName": event.event_name(),
        "eventSource": event.event_source(),
        "eventTime": time,
        "readOnly": event.read_only(),
        "userIdentity": {"userName": event.username(), "accessKeyId": event.access_key_id()},
    });
    tracing::warn!(
        event_id = event.event_id().unwrap_or("-"),
        "LookupEvents returned an unreadable CloudTrailEvent; keeping the envelope's fields"
    );
    Record::from_json(envelope).ok()
}

fn is_read(event: &Event, record: &Record) -> bool {
    match event.read_only() {
        Some(flag) => flag.eq_ignore_ascii_case("true"),
        None => record.read_only == Some(true),
    }
}

enum Failure {
    Throttled,
    Transient(String),
    Fatal(LookupError),
}

/// What a failed LookupEvents call means for the pass.
fn failure(error: &AwsError, region: &str) -> Failure {
    let fatal = |make: fn(String, String, String) -> LookupError| {
        Failure::Fatal(make(
            region.to_owned(),
            error.code.clone().unwrap_or_default(),
            error.message.clone(),
        ))
    };
    match error.kind {
        Kind::Throttled => Failure::Throttled,
        Kind::Transient | Kind::Unreachable => Failure::Transient(error.to_string()),
        Kind::Credentials => Failure::Fatal(LookupError::Credentials {
            region: region.to_owned(),
            message: error.to_string(),
        }),
        Kind::Denied => fatal(|region, code, message| LookupError::AccessDenied {
            region,
            code,
            message,
        }),
        Kind::NotFound | Kind::Rejected => fatal(|region, code, message| LookupError::Rejected {
            region,
            code,
            message,
        }),
    }
}

/// One pass over a window, a page at a time, so the caller can store each page as it comes
/// and interleave other streams' pages between them.
#[derive(Debug)]
pub(crate) struct Pager {
    lookup: Lookup,
    window: Window,
    token: Option<String>,
    done: bool,
    /// Consecutive transient failures at the current page (its backoff).
    failures: u32,
    /// Throttled attempts at the current page.
    throttles: u32,
    /// What the pass has cost and found so far.
    pub stats: PassStats,
}

impl Pager {
    /// A pass of `lookup` over `window`, from its first (newest) page; reads nothing yet.
    pub fn new(lookup: Lookup, window: Window) -> Pager {
        Pager {
            lookup,
            window,
            token: None,
            done: false,
            failures: 0,
            throttles: 0,
            stats: PassStats::default(),
        }
    }

    /// The window this pass reads (frozen for all of its pages).
    pub fn window(&self) -> Window {
        self.window
    }

    /// Whether the last page has been read.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Makes one attempt at the next page within the budget: its records that are not reads,
    /// oldest first, and what the page cost. Throttling and transient failures return
    /// [`PageError::Retry`] with the backoff (throttling also slows the shared budget down);
    /// the next call tries the same page again.
    pub(crate) async fn next_page(
        &mut self,
        reader: &Reader,
        region: &str,
        budget: &Budget,
        cancel: &CancellationToken,
    ) -> Result<(Vec<Record>, PassStats), PageError> {
        let cancelled = || PageError::Failed(LookupError::Cancelled);
        let mut stats = PassStats::default();
        let permit = tokio::select! {
            _ = cancel.cancelled() => return Err(cancelled()),
            permit = budget.acquire() => permit,
        };
        let sent = tokio::select! {
            _ = cancel.cancelled() => return Err(cancelled()),
            sent = reader.page(&self.lookup, self.window, self.token.clone()) => sent,
        };
        let page = match sent {
            Ok(page) => {
                permit.finish(Outcome::Answered);
                self.failures = 0;
                // Throttles are counted with the page they delayed.
                stats.throttled = std::mem::take(&mut self.throttles);
                page
            }
            Err(error) => {
                return Err(match failure(&AwsError::read(&error), region) {
                    Failure::Throttled => {
                        permit.finish(Outcome::Throttled);
                        self.throttles += 1;
                        // The budget's window has just doubled: the retry waits for it anyway.
                        PageError::Retry {
                            after: budget.spacing(),
                            throttled: true,
                            attempts: self.failures,
                            message: AwsError::read(&error).to_string(),
                        }
                    }
                    Failure::Transient(message) => {
                        // Not a rate problem: back off this stream only, not the budget.
                        permit.finish(Outcome::Failed);
                        self.failures += 1;
                        let after = transient_backoff(self.failures);
                        PageError::Retry {
                            after,
                            throttled: false,
                            attempts: self.failures,
                            message,
                        }
                    }
                    Failure::Fatal(error) => PageError::Failed(error),
                });
            }
        };
        stats.pages = 1;
        let mut records = Vec::new();
        for event in page.events() {
            stats.events += 1;
            let Some(record) = record_of(event, &mut stats) else {
                continue;
            };
            if is_read(event, &record) {
                stats.reads_dropped += 1;
            } else {
                records.push(record);
            }
        }
        self.token = page.next_token().map(str::to_owned);
        self.done = self.token.is_none();
        self.stats.add(stats);
        // Newest first from the API; oldest first is the order a human reads a story in.
        records.reverse();
        Ok((records, stats))
    }
}

/// Reads every page of one window, within the budget: the window's records, oldest first.
/// Throttling is waited out for as long as it lasts; a page that fails transiently
/// [`TRANSIENT_ATTEMPTS`] times in a row ends the read with [`LookupError::Unavailable`].
pub async fn fetch_window(
    reader: &Reader,
    region: &str,
    budget: &Budget,
    lookup: &Lookup,
    window: Window,
    cancel: &CancellationToken,
) -> Result<Fetched, LookupError> {
    let mut pager = Pager::new(lookup.clone(), window);
    let mut pages = Vec::new();
    while !pager.is_done() {
        match pager.next_page(reader, region, budget, cancel).await {
            Ok((records, _)) => pages.push(records),
            Err(PageError::Failed(error)) => return Err(error),
            Err(PageError::Retry {
                attempts, message, ..
            }) if attempts >= TRANSIENT_ATTEMPTS => {
                return Err(LookupError::Unavailable {
                    region: region.to_owned(),
                    attempts,
                    message,
                })
            }
            Err(PageError::Retry {
                after,
                throttled,
                message,
                ..
            }) => {
                log_retry(&lookup.label(), throttled, &message, after);
                tokio::select! {
                    _ = cancel.cancelled() => return Err(LookupError::Cancelled),
                    _ = tokio::time::sleep(after) => {}
                }
            }
        }
    }
    Ok(Fetched {
        // Later pages hold older events.
        records: pages.into_iter().rev().flatten().collect(),
        stats: pager.stats,
    })
}

/// The wait after the `failures`-th transient failure in a row at one page: 0.25 s,
/// doubling, at most [`MAX_TRANSIENT_BACKOFF`].
fn transient_backoff(failures: u32) -> Duration {
    TRANSIENT_BACKOFF
        .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)))
        .min(MAX_TRANSIENT_BACKOFF)
}

/// The log line for a page that is tried again after `after`.
pub(crate) fn log_retry(stream: &str, throttled: bool, message: &str, after: Duration) {
    if throttled {
        tracing::info!(%stream, retry_in = ?after, "LookupEvents throttled; backing off");
    } else {
        tracing::warn!(%stream, retry_in = ?after, %message, "LookupEvents failed; retrying");
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_cloudtrail_event_keeps_the_envelope() {
        let event = Event::builder()
            .event_id("abc")
            .event_name("CreateUser")
            .event_source("iam.amazonaws.com")
            .read_only("false")
            .cloud_trail_event("{not json")
            .build();
        let mut stats = PassStats::default();
        let record = record_of(&event, &mut stats).expect("kept");
        assert_eq!(record.event_id, "abc");
        assert_eq!(record.event_name, "CreateUser");
        assert_eq!(stats.malformed, 1);
        assert!(!is_read(&event, &record));
    }

    #[test]
    fn transient_backoff_doubles_up_to_a_minute() {
        let waits: Vec<_> = (1..=10).map(transient_backoff).collect();
        assert_eq!(waits[0], Duration::from_millis(250));
        assert_eq!(waits[3], Duration::from_secs(2));
        assert_eq!(waits[8], MAX_TRANSIENT_BACKOFF);
        assert_eq!(transient_backoff(u32::MAX), MAX_TRANSIENT_BACKOFF);
    }

    /// The answers the issue named, read as the SDK's own classifiers read them: throttling
    /// and transient failures are retried (never the end of a pass); the rest end it.
    #[test]
    fn throttling_timeouts_and_bare_5xx_are_retried() {
        for (code, status) in [
            (Some("RequestLimitExceeded"), Some(400)),
            (Some("ThrottlingException"), Some(400)),
            (Some("RequestTimeout"), Some(408)),
            (Some("RequestTimeoutException"), Some(400)),
            (None, Some(502)),
            (None, Some(503)),
            (None, None),
        ] {
            let failure = failure(&AwsError::answered(code, "", status), "us-east-1");
            assert!(
                matches!(failure, Failure::Throttled | Failure::Transient(_)),
                "{code:?} {status:?}"
            );
        }
        let denied = failure(
            &AwsError::answered(Some("AccessDeniedException"), "no", Some(400)),
            "us-east-1",
        );
        assert!(matches!(
            denied,
            Failure::Fatal(LookupError::AccessDenied { .. })
        ));
    }

    #[test]
    fn lookup_labels_name_the_attribute() {
        assert_eq!(
            Lookup::EventSource("iam.amazonaws.com".into()).label(),
            "EventSource=iam.amazonaws.com"
        );
        assert_eq!(
            Lookup::EventName("StopLogging".into()).label(),
            "EventName=StopLogging"
        );
    }
}
