//! Chat notifiers: Slack incoming webhooks ([`slack`], Block Kit) and Microsoft Teams
//! Workflows webhooks ([`teams`], an Adaptive Card). Both render the same sections as mail,
//! within their platform's limits, and share one delivery rule.
//!
//! **Delivery semantics.** A webhook post is not idempotent: the platform has no key that
//! would make a second post of the same message a no-op. So:
//! - a post that never connected is retried (the platform cannot have seen it);
//! - 429 is retried after its `Retry-After` (the platform refused it, and said so), and every
//!   later post of the notifier waits too;
//! - 2xx is delivered;
//! - a 5xx, or a post sent without an answer (a timeout, a reset), may have been posted: it
//!   is given up at once with an error line, never retried, so it cannot show twice;
//! - any other status (a revoked webhook, an archived channel, a refused payload) is permanent
//!   and names the fix.
//!
//! Each notifier keeps within its platform's rate (Slack about one message a second per
//! webhook, Teams four): a burst waits in the outbox and drains at that pace.

mod config;
pub mod slack;
pub mod teams;

use std::time::Duration;

use async_trait::async_trait;

pub use config::ChatConfig;
pub(crate) use config::{RawChat, WEBHOOK_URL};

use super::http::{self, Answer, Pace};
use super::{Message, Notifier, NotifyError};

/// Which chat platform, with what differs between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// Slack incoming webhook.
    Slack,
    /// Microsoft Teams Workflows webhook.
    Teams,
}

impl Platform {
    /// The configuration's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Slack => "slack",
            Platform::Teams => "teams",
        }
    }

    /// The platform's documented rate per webhook: Slack one message a second, Teams four.
    fn interval(self) -> Duration {
        match self {
            Platform::Slack => Duration::from_secs(1),
            Platform::Teams => Duration::from_millis(250),
        }
    }

    fn payload(self, message: &Message) -> Vec<u8> {
        let value = match self {
            Platform::Slack => slack::payload(message),
            Platform::Teams => teams::payload(message),
        };
        serde_json::to_vec(&value).expect("a JSON value serialises")
    }

    /// What to do about a refusal (a 4xx other than 429).
    fn fix(self, code: u16) -> &'static str {
        match (self, code) {
            (Platform::Slack, 403 | 404 | 410) => {
                "the webhook was revoked or its channel archived or deleted: create a new \
                 incoming webhook in Slack and put its URL in the notifier's webhook_url secret"
            }
            (Platform::Teams, 401 | 403 | 404) => {
                "the workflow was turned off, deleted or its owner left: open Power Automate, \
                 re-create the \"Post to a channel when a webhook request is received\" flow \
                 and put its URL in the notifier's webhook_url secret"
            }
            _ => {
                "the platform refused the message as sent; report this as a bug with the \
                 answer above (the message stays in the outbox until delivery.max_age)"
            }
        }
    }
}

/// Posts each alert to one chat webhook.
#[derive(Debug)]
pub struct ChatNotifier {
    name: String,
    platform: Platform,
    config: ChatConfig,
    pace: Pace,
}

impl ChatNotifier {
    /// A notifier called `name` posting to `config`'s webhook.
    pub fn new(name: &str, platform: Platform, config: &ChatConfig) -> ChatNotifier {
        ChatNotifier {
            name: name.to_owned(),
            platform,
            config: config.clone(),
            pace: Pace::new(platform.interval()),
        }
    }

    /// What a post's answer means, by the rules in the module's documentation.
    async fn outcome(&self, answer: Answer) -> Result<(), NotifyError> {
        let name = &self.name;
        match answer {
            Answer::Status { code, .. } if (200..300).contains(&code) => Ok(()),
            Answer::Status {
                code: 429,
                retry_after,
                body,
            } => {
                let wait = retry_after
                    .or_else(|| slack_retry_after(&body))
                    .unwrap_or(self.platform.interval())
                    .max(Duration::from_secs(1));
                self.pace.hold(wait).await;
                Err(NotifyError::RateLimited {
                    notifier: name.clone(),
                    retry_after: wait,
                })
            }
            Answer::NotSent(problem) => Err(NotifyError::transient(name, problem)),
            answer @ (Answer::Unanswered(_) | Answer::Status { code: 500.., .. }) => {
                Err(NotifyError::uncertain(
                    name,
                    format!(
                        "{} answered {}",
                        self.config.endpoint.host(),
                        answer.describe()
                    ),
                ))
            }
            answer @ Answer::Status { code, .. } => Err(NotifyError::permanent(
                name,
                format!(
                    "{} refused the message: {}",
                    self.config.endpoint.host(),
                    answer.describe()
                ),
                self.platform.fix(code),
            )),
        }
    }
}

/// Slack puts the wait in the body too: `{"ok":false,"error":"rate_limited","retry_after":1}`.
fn slack_retry_after(body: &str) -> Option<Duration> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    Some(Duration::from_secs(value.get("retry_after")?.as_u64()?))
}

#[async_trait]
impl Notifier for ChatNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, message: &Message) -> Result<(), NotifyError> {
        let body = self.platform.payload(message);
        self.pace.turn().await;
        let answer = http::post_json(&self.config.endpoint, &[], body, self.config.timeout).await;
        self.outcome(answer).await
    }

    /// Webhooks have no call that posts nothing: the check is that the host accepts a
    /// connection.
    async fn healthcheck(&self) -> Result<(), NotifyError> {
        http::reachable(&self.name, &self.config.endpoint, self.config.timeout).await
    }
}

/// Cuts `value` to at most `max` characters with a visible marker: a chat message is cut
/// rather than refused.
pub(crate) fn cut(value: &str, max: usize) -> String {
    if value.chars().count() <= max {
        return value.to_owned();
    }
    let marker = format!(" … (cut, {} chars)", value.chars().count());
    let keep = max.saturating_sub(marker.chars().count());
    let mut text: String = value.chars().take(keep).collect();
    text.push_str(&marker);
    text
}

/// Renders with the largest value size (of `sizes`, largest first) whose payload fits in
/// `limit` bytes of JSON; the last size must always fit (the renderer drops what does not).
pub(crate) fn fit(
    limit: usize,
    sizes: &[usize],
    render: impl Fn(usize) -> serde_json::Value,
) -> serde_json::Value {
    for &size in sizes {
        let value = render(size);
        if serde_json::to_vec(&value).map_or(0, |v| v.len()) <= limit {
            return value;
        }
    }
    render(*sizes.last().expect("at least one size"))
}

/// Messages the renderers' tests share.
#[cfg(test)]
pub(crate) mod testing {
    use serde_json::Value;

    use crate::notify::{Field, Message, Section};

    /// Everything an attacker may put in a role name, tag or policy, at once.
    pub(crate) const HOSTILE: &str = "<!channel> <https://evil.example|click> @here \
        [click](https://evil.example) *bold* _it_ `code` &amp; <b>html</b> # heading > quote";

    /// A message whose every value is hostile, with `fields` fields in one section and a
    /// policy-sized block.
    pub(crate) fn hostile_message(fields: usize) -> Message {
        let mut section = Section {
            title: "What".to_owned(),
            fields: (0..fields)
                .map(|i| Field {
                    label: format!("Parameter {i}"),
                    value: format!("{HOSTILE} {}", "x".repeat(i * 10)),
                    multiline: false,
                })
                .collect(),
        };
        section.fields.push(Field {
            label: "Policy document".to_owned(),
            value: format!("{{\n  \"Statement\": \"{HOSTILE}\"\n}}\n").repeat(200),
            multiline: true,
        });
        Message {
            subject: format!("[iamwatchd] CRITICAL PutRolePolicy {HOSTILE}"),
            text: HOSTILE.to_owned(),
            html: String::new(),
            event_id: "0f2b4c1e-1111-2222-3333-444455556666".to_owned(),
            severity: "CRITICAL".to_owned(),
            category: "iam-change".to_owned(),
            attempt: false,
            event_name: "PutRolePolicy".to_owned(),
            account: "111122223333".to_owned(),
            headline: format!("CRITICAL PutRolePolicy {HOSTILE} {}", "y".repeat(300)),
            sections: vec![section],
            link: Some("https://us-east-1.console.aws.amazon.com/cloudtrailv2/home".to_owned()),
            summary: HOSTILE.to_owned(),
            ..Message::for_test("CRITICAL", "iam-change", "PutRolePolicy")
        }
    }

    /// Every text object (`{"type": …, "text": …}`) inside a Block Kit block.
    pub(crate) fn texts(block: &Value) -> Vec<&Value> {
        let mut found = Vec::new();
        fn walk<'a>(value: &'a Value, found: &mut Vec<&'a Value>) {
            match value {
                Value::Object(map) => {
                    if map.get("text").is_some_and(Value::is_string) && map.contains_key("type") {
                        found.push(value);
                    }
                    map.values().for_each(|v| walk(v, found));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
                _ => {}
            }
        }
        walk(block, &mut found);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutting_keeps_a_visible_marker_within_the_limit() {
        assert_eq!(cut("short", 10), "short");
        let long = "x".repeat(500);
        let cut_value = cut(&long, 150);
        assert_eq!(cut_value.chars().count(), 150);
        assert!(cut_value.ends_with("(cut, 500 chars)"), "{cut_value}");
    }

    #[test]
    fn slack_says_how_long_to_wait_in_the_body() {
        assert_eq!(
            slack_retry_after(r#"{"retry_after":3,"ok":false,"error":"rate_limited"}"#),
            Some(Duration::from_secs(3))
        );
        assert_eq!(slack_retry_after("rate_limited"), None);
    }
}
