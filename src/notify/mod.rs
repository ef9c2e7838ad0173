//! Notifiers: how an [`Alert`] becomes one message that reaches a human.
//!
//! An alert is rendered exactly once into a [`Message`] ([`render`]), which is plain data
//! (serde) so the store's outbox can keep it and every notifier sends the same words, however
//! late or often it retries. Each notifier ([`smtp`], [`sns`]) implements [`Notifier`]; its
//! errors say whether a retry can help ([`NotifyError::is_transient`]) so the outbox retries a
//! server that is down but stops on a wrong password, and the message names the fix.

pub(crate) mod registry;
pub mod render;
pub mod smtp;
pub mod sns;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{Record, SeenBy};
use crate::rules::Classification;

/// One event worth telling a human about, with the rules' verdict on it.
#[derive(Debug, Clone)]
pub struct Alert {
    /// The CloudTrail record of the event.
    pub record: Record,
    /// The rules' verdict: category, severity, attempt or change, and why.
    pub classification: Classification,
    /// When the daemon saw the event; with the record's `eventTime` it gives the delay.
    pub detected_at: DateTime<Utc>,
    /// Which watcher saw it.
    pub seen_by: SeenBy,
}

impl Alert {
    /// Renders the alert; see [`render::render`].
    pub fn render(&self) -> Message {
        render::render(self)
    }
}

/// A rendered alert: what every notifier sends, plus the metadata notifiers put into headers
/// and message attributes. Every string here is already safe for its use: the subject and the
/// metadata are one line without control characters, the HTML is escaped, everything bounded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The subject for mail (one line, may hold non-ASCII). SNS gets [`Message::sns_subject`].
    pub subject: String,
    /// The plain-text body (mail's text part, the SNS message).
    pub text: String,
    /// The HTML body (mail's HTML part).
    pub html: String,
    /// The record's `eventID`, the dedup key; also the base of the SMTP Message-ID.
    pub event_id: String,
    /// `CRITICAL`, `HIGH`, …, as the rules' `Severity` displays it.
    pub severity: String,
    /// `iam-change` or `tampering`.
    pub category: String,
    /// True for failed calls (errorCode set): an attempt, not a change.
    pub attempt: bool,
    /// The record's `eventName`.
    pub event_name: String,
    /// The account the event belongs to, `unknown` when the record does not say.
    pub account: String,
}

impl Message {
    /// The subject within SNS's rules: ASCII, no control characters, fewer than 100
    /// characters (SNS rejects the Publish otherwise). Derived from [`Message::subject`] so
    /// mail and SNS subscribers read the same words.
    pub fn sns_subject(&self) -> String {
        render::ascii_subject(&self.subject, render::SNS_SUBJECT_MAX_CHARS)
    }
}

/// A notifier failed to deliver (or to check) a message.
///
/// Transient errors are worth retrying with backoff (the server is down, slow, throttling);
/// permanent ones will fail the same way until someone changes the configuration or the
/// account, so they are logged loudly with the fix and retried only slowly.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A failure that can pass by itself (the server is down, slow or throttling).
    #[error("{notifier}: {problem} (temporary: will retry)")]
    Transient {
        /// The notifier's configured name.
        notifier: String,
        /// What went wrong.
        problem: String,
    },
    /// A failure that repeats until someone changes the configuration or the account.
    #[error("{notifier}: {problem}; to fix: {fix}")]
    Permanent {
        /// The notifier's configured name.
        notifier: String,
        /// What went wrong.
        problem: String,
        /// What to change so that delivery works.
        fix: String,
    },
    /// The notifier's configuration cannot work. (Configuration validation reports every
    /// problem of a section at once; this is what a notifier built without it finds first.)
    #[error("{notifier}: invalid configuration: {problem}")]
    Config {
        /// The notifier's configured name.
        notifier: String,
        /// What cannot work.
        problem: String,
    },
}

impl NotifyError {
    /// Whether retrying the same message later can succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, NotifyError::Transient { .. })
    }

    pub(crate) fn transient(notifier: &str, problem: impl Into<String>) -> NotifyError {
        NotifyError::Transient {
            notifier: notifier.to_owned(),
            problem: problem.into(),
        }
    }

    pub(crate) fn permanent(
        notifier: &str,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> NotifyError {
        NotifyError::Permanent {
            notifier: notifier.to_owned(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// A destination for rendered alerts. Each notifier is retried independently by the outbox,
/// so one dead notifier never blocks another.
#[async_trait::async_trait]
pub trait Notifier: Send + Sync {
    /// The configured name (unique among notifiers): outbox key, log field, Message-ID part.
    fn name(&self) -> &str;

    /// Delivers one message. `Ok` means the destination accepted it (only then is the outbox
    /// entry marked sent).
    async fn send(&self, message: &Message) -> Result<(), NotifyError>;

    /// Checks, without sending anything to a human, that delivery can work (used at start-up
    /// and by `iamwatchd check`).
    async fn healthcheck(&self) -> Result<(), NotifyError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_and_permanent_errors_say_what_to_do() {
        let down = NotifyError::transient("mail", "connection refused by smtp.example.com:587");
        assert!(down.is_transient());
        assert!(down.to_string().contains("will retry"));
        let auth = NotifyError::permanent(
            "mail",
            "the server rejected the credentials (535)",
            "check username and the password secret",
        );
        assert!(!auth.is_transient());
        assert_eq!(
            auth.to_string(),
            "mail: the server rejected the credentials (535); to fix: check username and the \
             password secret"
        );
    }
}
