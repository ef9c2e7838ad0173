//! `type = "pagerduty"`: the integration's routing key (a secret) and the Events API URL.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::problem::Problems;
use crate::config::secret::{Secret, SecretKey};
use crate::config::values;
use crate::notify::http::endpoint::{check_timeout, DEFAULT_TIMEOUT};
use crate::notify::http::Endpoint;

/// The secret key of a PagerDuty notifier.
pub const ROUTING_KEY: &str = "routing_key";

/// PagerDuty's Events API v2.
pub(crate) const DEFAULT_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// A PagerDuty notifier's settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagerDutyConfig {
    /// The service integration's routing (integration) key.
    pub routing_key: Secret,
    /// Where events are posted.
    pub endpoint: Endpoint,
    /// How long to wait for an answer.
    pub timeout: Duration,
}

/// `[notifiers.NAME]` with `type = "pagerduty"`, as written.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawPagerDuty {
    /// Only from the environment or a credential; refused in the file.
    routing_key: Option<String>,
    /// A file holding the key (mode 600).
    routing_key_file: Option<PathBuf>,
    /// The Events API v2 enqueue URL.
    events_url: String,
    /// Permits plain http to a host that is not loopback.
    allow_plaintext: bool,
    /// How long to wait for an answer.
    #[serde(deserialize_with = "values::duration")]
    timeout: Duration,
}

impl Default for RawPagerDuty {
    fn default() -> Self {
        RawPagerDuty {
            routing_key: None,
            routing_key_file: None,
            events_url: DEFAULT_EVENTS_URL.to_owned(),
            allow_plaintext: false,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl RawPagerDuty {
    /// Validates the notifier at key path `section`.
    pub(crate) fn validate(
        &self,
        section: &str,
        credentials: Option<&Path>,
        problems: &mut Problems,
    ) -> Option<PagerDutyConfig> {
        let secret = SecretKey {
            section,
            key: ROUTING_KEY,
        };
        check_timeout(&format!("{section}.timeout"), self.timeout, problems);
        let endpoint = Endpoint::check(
            &format!("{section}.events_url"),
            &self.events_url,
            self.allow_plaintext,
            false,
            problems,
        );
        let failed = self.routing_key.is_some() || self.routing_key_file.is_some();
        let key = secret.resolve(
            self.routing_key.as_deref(),
            self.routing_key_file.as_deref(),
            credentials,
            problems,
        );
        let key = match key {
            Some(key) if is_routing_key(key.expose()) => key,
            Some(_) => {
                problems.error(
                    format!("{section}.{ROUTING_KEY}"),
                    "must be the 32-character integration key of an Events API v2 \
                     integration (the service's Integrations tab), letters and digits only",
                );
                return None;
            }
            None => {
                if !failed {
                    problems.error(
                        format!("{section}.{ROUTING_KEY}"),
                        format!(
                            "is required (the service's Events API v2 integration key); it is \
                             a secret, so it never sits in the file: {}",
                            secret.sources()
                        ),
                    );
                }
                return None;
            }
        };
        Some(PagerDutyConfig {
            routing_key: key,
            endpoint: endpoint?,
            timeout: self.timeout,
        })
    }
}

fn is_routing_key(key: &str) -> bool {
    key.len() == 32 && key.bytes().all(|b| b.is_ascii_alphanumeric())
}
