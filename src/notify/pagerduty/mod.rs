//! The PagerDuty notifier: an Events API v2 `trigger` per finding.
//!
//! **Delivery semantics.** Every event carries `dedup_key` = the finding's eventID, so a
//! retry of an event PagerDuty already took joins the same alert instead of paging twice:
//! retries are safe. 202 (any 2xx) is accepted; 400 means PagerDuty will never take this
//! event (the reason it gives is logged); 401/403/404 a wrong key or URL; 429 and 5xx, and
//! posts without an answer, are retried with backoff (429 after its `Retry-After`).
//!
//! Limits kept: `summary` at most 1,024 characters, `dedup_key` at most 255, the whole event
//! under 512 KB (the details are dropped, with a note, before that could happen).

mod config;

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

pub(crate) use config::RawPagerDuty;
pub use config::{PagerDutyConfig, ROUTING_KEY};

use super::http::{self, Answer};
use super::{Message, Notifier, NotifyError};

const SUMMARY_MAX_CHARS: usize = 1_024;
const DEDUP_KEY_MAX: usize = 255;
/// Below the Events API's 512 KB.
const MAX_BYTES: usize = 500 * 1024;

/// PagerDuty's severity for ours.
fn severity(ours: &str) -> &'static str {
    match ours {
        "CRITICAL" => "critical",
        "HIGH" => "error",
        "MEDIUM" => "warning",
        _ => "info",
    }
}

/// The event ID, or a digest of it when it is longer than PagerDuty keeps.
fn dedup_key(event_id: &str) -> String {
    if event_id.len() <= DEDUP_KEY_MAX {
        return event_id.to_owned();
    }
    format!("iamwatchd-sha256-{}", http::sha256_hex(event_id))
}

/// The sections as `custom_details`: `{"Who": {"Principal": "…"}, …}`. A label that repeats
/// (`e.g.` lines) gets a number.
fn details(message: &Message) -> Value {
    let mut details = Map::new();
    for section in &message.sections {
        let mut fields = Map::new();
        for field in &section.fields {
            let mut label = field.label.clone();
            let mut n = 2;
            while fields.contains_key(&label) {
                label = format!("{} ({n})", field.label);
                n += 1;
            }
            fields.insert(label, Value::String(field.value.clone()));
        }
        details.insert(section.title.clone(), Value::Object(fields));
    }
    if message.sections.is_empty() {
        details.insert("text".to_owned(), Value::String(message.text.clone()));
    }
    details.insert(
        "event_id".to_owned(),
        Value::String(message.event_id.clone()),
    );
    details.insert("account".to_owned(), Value::String(message.account.clone()));
    Value::Object(details)
}

/// The Events API v2 body for `message`.
pub fn payload(routing_key: &str, message: &Message) -> Value {
    let summary = super::chat::cut(message.title(), SUMMARY_MAX_CHARS);
    let source = if message.account == "unknown" {
        "iamwatchd".to_owned()
    } else {
        format!("aws account {}", message.account)
    };
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key(&message.event_id),
        "client": "iamwatchd",
        "payload": {
            "summary": summary,
            "source": source,
            "severity": severity(&message.severity),
            "component": message.event_name,
            "group": message.account,
            "class": message.category,
            "custom_details": details(message),
        },
    });
    if let Some(time) = message.time {
        event["payload"]["timestamp"] =
            json!(time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    }
    if let Some(link) = message.usable_link() {
        event["links"] = json!([{"href": link, "text": "CloudTrail console"}]);
        event["client_url"] = json!(link);
    }
    if serde_json::to_vec(&event).map_or(0, |b| b.len()) > MAX_BYTES {
        event["payload"]["custom_details"] = json!({
            "note": "the details did not fit in a PagerDuty event: the mail and the CloudTrail \
                     console have everything",
            "event_id": message.event_id,
        });
    }
    event
}

/// Triggers a PagerDuty alert per finding.
#[derive(Debug)]
pub struct PagerDutyNotifier {
    name: String,
    config: PagerDutyConfig,
}

impl PagerDutyNotifier {
    /// A notifier called `name` for `config`'s integration.
    pub fn new(name: &str, config: &PagerDutyConfig) -> PagerDutyNotifier {
        PagerDutyNotifier {
            name: name.to_owned(),
            config: config.clone(),
        }
    }

    fn outcome(&self, answer: Answer) -> Result<(), NotifyError> {
        let name = &self.name;
        let host = self.config.endpoint.host();
        match answer {
            Answer::Status { code, .. } if (200..300).contains(&code) => Ok(()),
            Answer::Status {
                code: 429,
                retry_after,
                ..
            } => Err(NotifyError::RateLimited {
                notifier: name.clone(),
                // PagerDuty asks for "a backoff of a few minutes" when it gives no figure.
                retry_after: retry_after.unwrap_or(Duration::from_secs(60)),
            }),
            answer @ Answer::Status { code: 400, .. } => Err(NotifyError::permanent(
                name,
                format!(
                    "PagerDuty ({host}) refused the event: {}",
                    answer.describe()
                ),
                "PagerDuty will never accept this event as sent; report this as a bug with \
                 the reason above",
            )),
            answer @ Answer::Status {
                code: 401 | 403 | 404,
                ..
            } => Err(NotifyError::permanent(
                name,
                format!("{host} answered {}", answer.describe()),
                "check the routing_key (an Events API v2 integration key of the service) and \
                 events_url",
            )),
            answer @ Answer::Status { code: 500.., .. } => Err(NotifyError::transient(
                name,
                format!("{host} answered {}", answer.describe()),
            )),
            answer @ Answer::Status { .. } => Err(NotifyError::permanent(
                name,
                format!("{host} answered {}", answer.describe()),
                "check events_url: it must be PagerDuty's Events API v2 enqueue URL",
            )),
            // The dedup key makes a repeat harmless: retry whatever happened.
            Answer::NotSent(problem) | Answer::Unanswered(problem) => {
                Err(NotifyError::transient(name, problem))
            }
        }
    }
}

#[async_trait]
impl Notifier for PagerDutyNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, message: &Message) -> Result<(), NotifyError> {
        let body = serde_json::to_vec(&payload(self.config.routing_key.expose(), message))
            .expect("a JSON value serialises");
        let answer = http::post_json(&self.config.endpoint, &[], body, self.config.timeout).await;
        self.outcome(answer)
    }

    /// The Events API has no call that pages nobody: the check is that the host accepts a
    /// connection.
    async fn healthcheck(&self) -> Result<(), NotifyError> {
        http::reachable(&self.name, &self.config.endpoint, self.config.timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::chat::testing::hostile_message;

    #[test]
    fn an_event_keeps_the_documented_fields_and_limits() {
        let event = payload("abcdefghijklmnopqrstuvwxyz012345", &hostile_message(400));
        assert_eq!(event["event_action"], "trigger");
        assert_eq!(event["dedup_key"], "0f2b4c1e-1111-2222-3333-444455556666");
        assert_eq!(event["payload"]["severity"], "critical");
        let summary = event["payload"]["summary"].as_str().unwrap();
        assert!(summary.chars().count() <= SUMMARY_MAX_CHARS);
        assert!(serde_json::to_vec(&event).unwrap().len() <= MAX_BYTES);
        let note = event["payload"]["custom_details"]["note"].as_str().unwrap();
        assert!(note.contains("did not fit"), "{note}");
        let small = payload("abcdefghijklmnopqrstuvwxyz012345", &hostile_message(1));
        assert!(small["payload"]["custom_details"]["What"]["Parameter 0"]
            .as_str()
            .unwrap()
            .contains("<!channel>"));
    }

    #[test]
    fn a_huge_console_link_is_left_out_so_the_event_stays_under_the_size_limit() {
        let message = Message {
            link: Some(format!("https://x/{}", "x".repeat(600_000))),
            ..Message::for_test("HIGH", "iam-change", "CreateUser")
        };
        let event = payload("abcdefghijklmnopqrstuvwxyz012345", &message);
        assert!(serde_json::to_vec(&event).unwrap().len() <= MAX_BYTES);
        assert!(event.get("links").is_none() && event.get("client_url").is_none());
    }

    #[test]
    fn a_long_event_id_becomes_a_digest_within_255() {
        let long = "alarm:".repeat(100);
        let key = dedup_key(&long);
        assert!(key.len() <= DEDUP_KEY_MAX);
        assert_eq!(key, dedup_key(&long), "stable across retries");
        assert_eq!(severity("HIGH"), "error");
        assert_eq!(severity("LOW"), "info");
    }
}
