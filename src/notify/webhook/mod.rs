//! The webhook notifier: a JSON post signed as the Standard Webhooks specification (v1)
//! describes, for receivers of the user's own (a SOAR, a ticketing bridge, a Lambda URL).
//!
//! Headers: `webhook-id` (the finding's eventID, the same on every retry, so the receiver
//! can drop a repeat), `webhook-timestamp` (Unix seconds of this attempt) and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed with the
//! base64-decoded part of the `whsec_` secret.
//!
//! **Delivery semantics.** The stable `webhook-id` makes retries safe. 2xx is delivered; 410
//! Gone turns the notifier off until the daemon restarts (an error line says so; its messages
//! stay queued); 429 and 5xx, and posts without an answer, are retried with backoff (429
//! after its `Retry-After`); a redirect or any other 4xx is permanent.
//!
//! The body: `{"type": "iamwatchd.finding" | "iamwatchd.pipeline", "timestamp": …, "data": {…}}`
//! with the same sections as mail.

mod config;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{json, Value};

pub(crate) use config::RawWebhook;
pub use config::{WebhookConfig, SECRET};

use super::http::{self, Answer};
use super::{Message, Notifier, NotifyError};

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let mut context = aws_lc_rs::hmac::Context::with_key(&key);
    context.update(id.as_bytes());
    context.update(b".");
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    let tag = context.sign();
    format!("v1,{}", aws_smithy_types::base64::encode(tag.as_ref()))
}

/// The `webhook-id`: the event ID when it is a plain token, else a digest of it (a header
/// value must be printable ASCII; the ID is the same on every retry either way).
fn message_id(event_id: &str) -> String {
    let plain = !event_id.is_empty()
        && event_id.len() <= 200
        && event_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if plain {
        return event_id.to_owned();
    }
    format!("iamwatchd-{}", http::sha256_hex(event_id))
}

/// The body for `message`.
pub fn payload(message: &Message) -> Value {
    let kind = if message.is_pipeline() {
        "iamwatchd.pipeline"
    } else {
        "iamwatchd.finding"
    };
    json!({
        "type": kind,
        "timestamp": message.time.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        "data": {
            "event_id": message.event_id,
            "event_name": message.event_name,
            "severity": message.severity,
            "category": message.category,
            "attempt": message.attempt,
            "account": message.account,
            "subject": message.subject,
            "headline": message.title(),
            "summary": message.summary,
            "analysis": message.analysis,
            "console_link": message.link,
            "sections": message.sections,
            "text": message.text,
        },
    })
}

/// Posts each finding, signed, to one receiver.
#[derive(Debug)]
pub struct WebhookNotifier {
    name: String,
    config: WebhookConfig,
    /// Set by a 410 Gone: nothing is posted until the daemon restarts.
    gone: AtomicBool,
}

impl WebhookNotifier {
    /// A notifier called `name` for `config`'s receiver.
    pub fn new(name: &str, config: &WebhookConfig) -> WebhookNotifier {
        WebhookNotifier {
            name: name.to_owned(),
            config: config.clone(),
            gone: AtomicBool::new(false),
        }
    }

    fn gone_error(&self) -> NotifyError {
        NotifyError::permanent(
            &self.name,
            format!(
                "{} answered 410 Gone, so this notifier is off until iamwatchd restarts; its \
                 messages stay queued",
                self.config.endpoint.host()
            ),
            "fix or replace the receiver, then restart iamwatchd",
        )
    }

    fn outcome(&self, answer: Answer) -> Result<(), NotifyError> {
        let name = &self.name;
        let host = self.config.endpoint.host();
        match answer {
            Answer::Status { code, .. } if (200..300).contains(&code) => Ok(()),
            Answer::Status { code: 410, .. } => {
                if !self.gone.swap(true, Ordering::SeqCst) {
                    tracing::error!(notifier = %name, "{}", self.gone_error());
                }
                Err(self.gone_error())
            }
            Answer::Status {
                code: 429,
                retry_after,
                ..
            } => Err(NotifyError::RateLimited {
                notifier: name.clone(),
                retry_after: retry_after.unwrap_or(Duration::from_secs(5)),
            }),
            answer @ Answer::Status { code: 500.., .. } => Err(NotifyError::transient(
                name,
                format!("{host} answered {}", answer.describe()),
            )),
            answer @ Answer::Status {
                code: 300..=399, ..
            } => Err(NotifyError::permanent(
                name,
                format!("{host} answered {}", answer.describe()),
                "redirects are not followed (they would re-post the message elsewhere): set \
                 url to where the receiver really is",
            )),
            answer @ Answer::Status { .. } => Err(NotifyError::permanent(
                name,
                format!("{host} refused the message: {}", answer.describe()),
                "check the receiver: its URL, the headers it expects and the signing secret it \
                 verifies with",
            )),
            // The stable webhook-id makes a repeat harmless: retry whatever happened.
            Answer::NotSent(problem) | Answer::Unanswered(problem) => {
                Err(NotifyError::transient(name, problem))
            }
        }
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, message: &Message) -> Result<(), NotifyError> {
        if self.gone.load(Ordering::SeqCst) {
            return Err(self.gone_error());
        }
        let body = serde_json::to_vec(&payload(message)).expect("a JSON value serialises");
        let id = message_id(&message.event_id);
        let timestamp = chrono::Utc::now().timestamp();
        let signature = signature(&self.config.key, &id, timestamp, &body);
        let mut headers = self.config.headers.clone();
        for (name, value) in [
            ("webhook-id", id),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ] {
            let value = HeaderValue::from_str(&value).expect("ASCII header value");
            headers.push((HeaderName::from_static(name), value));
        }
        let answer =
            http::post_json(&self.config.endpoint, &headers, body, self.config.timeout).await;
        self.outcome(answer)
    }

    /// A receiver has no call that delivers nothing: the check is that the host accepts a
    /// connection.
    async fn healthcheck(&self) -> Result<(), NotifyError> {
        http::reachable(&self.name, &self.config.endpoint, self.config.timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::config::decode_secret;
    use super::*;

    /// The Standard Webhooks specification's published test vector.
    #[test]
    fn the_signature_matches_the_specifications_test_vector() {
        let key = decode_secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        assert_eq!(
            signature(&key, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, body),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn secrets_and_ids_are_checked() {
        assert!(decode_secret("C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
            .unwrap_err()
            .contains("whsec_"));
        assert!(decode_secret("whsec_!!!").unwrap_err().contains("base64"));
        assert!(decode_secret("whsec_AAAA").unwrap_err().contains("24-64"));
        assert_eq!(message_id("0f2b4c1e-1111"), "0f2b4c1e-1111");
        let odd = message_id("alarm:x y\r\n");
        assert!(odd.starts_with("iamwatchd-") && odd.len() == 74, "{odd}");
        assert_eq!(odd, message_id("alarm:x y\r\n"));
    }
}
