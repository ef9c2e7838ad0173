//! Notifiers: how an [`Alert`] becomes one message that reaches a human.
//!
//! An alert is rendered exactly once into a [`Message`] ([`render`]), which is plain data
//! (serde) so the store's outbox can keep it and every notifier sends the same words, however
//! late or often it retries. Each notifier ([`smtp`], [`sns`]) implements [`Notifier`]; its
//! errors say whether a retry can help ([`NotifyError::is_transient`]) so the outbox retries a
//! server that is down but stops on a wrong password, and the message names the fix.

pub mod chat;
pub mod config;
pub mod digest;
pub mod http;
pub mod pagerduty;
pub(crate) mod registry;
pub mod render;
pub mod route;
pub mod smtp;
pub mod sns;
pub mod webhook;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::analysis::Analysis;
use crate::event::{Record, SeenBy};
use crate::rules::Classification;
pub use render::{Field, Section};

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
    /// What the change grants, for changes to policies: the grants added and removed and the
    /// verdicts (the severity in `classification` already reflects them).
    pub analysis: Option<Analysis>,
    /// The name of the record's account (`[accounts]` names, Organizations, the IAM alias),
    /// shown beside its ID; `None`: the ID alone.
    pub account_name: Option<String>,
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
    /// The subject without its `[iamwatchd]` prefix: a chat message's title.
    #[serde(default)]
    pub headline: String,
    /// The sections the bodies were written from, for notifiers that lay them out in their
    /// own format (chat cards, PagerDuty's details, webhook JSON). Empty in rows queued by an
    /// older version: those notifiers fall back to the text.
    #[serde(default)]
    pub sections: Vec<Section>,
    /// The CloudTrail console link for the event, when the record names a valid region.
    #[serde(default)]
    pub link: Option<String>,
    /// When the event happened (CloudTrail's eventTime), or when the daemon made a message
    /// about itself.
    #[serde(default)]
    pub time: Option<DateTime<Utc>>,
    /// What was acted on (`role/app`), when the record says.
    #[serde(default)]
    pub target: Option<String>,
    /// Who acted, as a policy would name them (a session as its role), when the record says.
    #[serde(default)]
    pub principal: Option<String>,
    /// For a digest: how many findings it carries.
    #[serde(default)]
    pub digest_of: usize,
    /// A file for notifiers that can attach one (mail): a digest's whole list as CSV.
    #[serde(default)]
    pub attachment: Option<Attachment>,
    /// The plain sentence a person reads first ("alice attached AdministratorAccess to user
    /// bob: bob can now do anything"). Empty in rows queued by an older version.
    #[serde(default)]
    pub summary: String,
    /// What the change grants (policy changes only), every string one bounded line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
}

/// A file attached to a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The file name (`burst-….csv`): ASCII letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// Its media type (`text/csv`).
    pub content_type: String,
    /// Its content.
    pub text: String,
}

impl Message {
    /// The headline, or the subject for rows queued before headlines were kept.
    pub fn title(&self) -> &str {
        if self.headline.is_empty() {
            self.subject.trim_start_matches("[iamwatchd] ")
        } else {
            &self.headline
        }
    }

    /// The console link, when it is one a notifier can send: at most
    /// [`render::LINK_MAX_BYTES`] (a row stored by an older version may hold a longer one).
    pub(crate) fn usable_link(&self) -> Option<&str> {
        self.link
            .as_deref()
            .filter(|link| link.len() <= render::LINK_MAX_BYTES)
    }

    /// Whether this is a message about the daemon's own pipeline (an alarm with no record,
    /// a silent alarm path) rather than about a finding of any of the rules' categories
    /// (root use and Identity Center included): routing's `pipeline` category.
    pub fn is_pipeline(&self) -> bool {
        !crate::rules::Category::ALL
            .iter()
            .any(|category| category.as_str() == self.category)
    }

    /// A plain message for tests: what routing and the outbox look at, little else.
    #[cfg(test)]
    pub(crate) fn for_test(severity: &str, category: &str, event_name: &str) -> Message {
        Message {
            subject: format!("[iamwatchd] {severity} {event_name}"),
            text: "t".into(),
            html: "h".into(),
            event_id: "e".into(),
            severity: severity.into(),
            category: category.into(),
            attempt: false,
            event_name: event_name.into(),
            account: "111122223333".into(),
            headline: String::new(),
            sections: Vec::new(),
            link: None,
            time: None,
            target: None,
            principal: None,
            digest_of: 0,
            attachment: None,
            summary: String::new(),
            analysis: None,
        }
    }

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
    /// The platform asked to slow down (HTTP 429): retried once `retry_after` has passed.
    #[error("{notifier}: rate limited by the platform (HTTP 429): will retry in {}", humantime::format_duration(*retry_after))]
    RateLimited {
        /// The notifier's configured name.
        notifier: String,
        /// How long the platform asked to wait.
        retry_after: std::time::Duration,
    },
    /// The message was sent and the answer leaves open whether the platform posted it (a 5xx,
    /// or no answer at all, from a platform whose posts are not idempotent: Slack, Teams).
    /// It is not retried, so that it cannot appear twice, and given up at once, loudly.
    #[error(
        "{notifier}: {problem}; it may have been posted, so it is not retried (a retry could \
         show it twice): if it did not arrive, `iamwatchd scan` and the daemon's log show the \
         change"
    )]
    Uncertain {
        /// The notifier's configured name.
        notifier: String,
        /// What happened.
        problem: String,
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
        matches!(
            self,
            NotifyError::Transient { .. } | NotifyError::RateLimited { .. }
        )
    }

    /// How long the platform asked to wait before the next attempt, when it said.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            NotifyError::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// Whether the message may have been delivered although the attempt failed, so that a
    /// retry could deliver it twice: such a message is given up at once instead.
    pub fn is_uncertain(&self) -> bool {
        matches!(self, NotifyError::Uncertain { .. })
    }

    pub(crate) fn uncertain(notifier: &str, problem: impl Into<String>) -> NotifyError {
        NotifyError::Uncertain {
            notifier: notifier.to_owned(),
            problem: problem.into(),
        }
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
mod props;

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
