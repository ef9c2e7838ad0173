//! A chat notifier's settings (`type = "slack"` or `"teams"`): the incoming-webhook URL, a
//! secret (whoever has it can post to the channel), and how long to wait for an answer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::problem::Problems;
use crate::config::secret::SecretKey;
use crate::config::values;
use crate::notify::http::endpoint::{check_timeout, DEFAULT_TIMEOUT};
use crate::notify::http::Endpoint;

/// The secret key of a chat notifier.
pub const WEBHOOK_URL: &str = "webhook_url";

/// A chat notifier's settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatConfig {
    /// The incoming webhook (Slack) or Workflows trigger URL (Teams).
    pub endpoint: Endpoint,
    /// How long to wait for an answer.
    pub timeout: Duration,
}

/// `[notifiers.NAME]` with `type = "slack"` or `"teams"`, as written.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawChat {
    /// Only from the environment or a credential; refused in the file.
    webhook_url: Option<String>,
    /// A file holding the URL (mode 600).
    webhook_url_file: Option<PathBuf>,
    /// Permits plain http to a host that is not loopback.
    allow_plaintext: bool,
    /// How long to wait for an answer.
    #[serde(deserialize_with = "values::duration")]
    timeout: Duration,
}

impl Default for RawChat {
    fn default() -> Self {
        RawChat {
            webhook_url: None,
            webhook_url_file: None,
            allow_plaintext: false,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl RawChat {
    /// Validates the notifier at key path `section`; `what` names the URL the platform gives
    /// (for the message when it is missing).
    pub(crate) fn validate(
        &self,
        section: &str,
        what: &str,
        credentials: Option<&Path>,
        problems: &mut Problems,
    ) -> Option<ChatConfig> {
        let secret = SecretKey {
            section,
            key: WEBHOOK_URL,
        };
        check_timeout(&format!("{section}.timeout"), self.timeout, problems);
        let failed = self.webhook_url.is_some() || self.webhook_url_file.is_some();
        let Some(url) = secret.resolve(
            self.webhook_url.as_deref(),
            self.webhook_url_file.as_deref(),
            credentials,
            problems,
        ) else {
            if !failed {
                problems.error(
                    format!("{section}.{WEBHOOK_URL}"),
                    format!(
                        "is required ({what}); it is a secret, so it never sits in the file: {}",
                        secret.sources()
                    ),
                );
            }
            return None;
        };
        let endpoint = Endpoint::check(
            &format!("{section}.{WEBHOOK_URL}"),
            url.expose(),
            self.allow_plaintext,
            true,
            problems,
        )?;
        Some(ChatConfig {
            endpoint,
            timeout: self.timeout,
        })
    }
}
