//! `type = "webhook"`: the receiver's URL, the signing secret (`whsec_…`, a secret) and any
//! extra headers the receiver wants.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;

use crate::config::problem::{quote_key, Problems};
use crate::config::secret::SecretKey;
use crate::config::values;
use crate::notify::http::endpoint::{check_timeout, DEFAULT_TIMEOUT};
use crate::notify::http::Endpoint;

/// The secret key of a webhook notifier.
pub const SECRET: &str = "secret";

/// Headers the notifier sets itself, which `headers` may not replace.
const OWN_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// A webhook notifier's settings, validated.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Where messages are posted.
    pub endpoint: Endpoint,
    /// The HMAC key (the `whsec_` secret, base64-decoded). Never logged.
    pub(crate) key: Vec<u8>,
    /// Extra headers, sent with every post.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// How long to wait for an answer.
    pub timeout: Duration,
}

/// `[notifiers.NAME]` with `type = "webhook"`, as written.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawWebhook {
    /// The receiver's URL (required).
    url: Option<String>,
    /// Only from the environment or a credential; refused in the file.
    secret: Option<String>,
    /// A file holding the secret (mode 600).
    secret_file: Option<PathBuf>,
    /// Extra headers.
    headers: BTreeMap<String, String>,
    /// Permits plain http to a host that is not loopback.
    allow_plaintext: bool,
    /// How long to wait for an answer.
    #[serde(deserialize_with = "values::duration")]
    timeout: Duration,
}

impl Default for RawWebhook {
    fn default() -> Self {
        RawWebhook {
            url: None,
            secret: None,
            secret_file: None,
            headers: BTreeMap::new(),
            allow_plaintext: false,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl RawWebhook {
    /// Validates the notifier at key path `section`.
    pub(crate) fn validate(
        &self,
        section: &str,
        credentials: Option<&Path>,
        problems: &mut Problems,
    ) -> Option<WebhookConfig> {
        check_timeout(&format!("{section}.timeout"), self.timeout, problems);
        let endpoint = match &self.url {
            Some(url) => Endpoint::check(
                &format!("{section}.url"),
                url,
                self.allow_plaintext,
                false,
                problems,
            ),
            None => {
                problems.error(
                    format!("{section}.url"),
                    "is required: the receiver's https:// URL",
                );
                None
            }
        };
        let mut headers = Vec::new();
        for (name, value) in &self.headers {
            let key = format!("{section}.headers.{}", quote_key(name));
            if OWN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                problems.error(key, "is set by iamwatchd itself and cannot be replaced");
                continue;
            }
            match (
                HeaderName::try_from(name.as_str()),
                HeaderValue::from_str(value),
            ) {
                (Ok(name), Ok(mut value)) => {
                    value.set_sensitive(true);
                    headers.push((name, value));
                }
                (Err(_), _) => problems.error(key, "is not a valid HTTP header name"),
                (_, Err(_)) => problems.error(
                    key,
                    "is not a valid HTTP header value (no control characters, CR or LF)",
                ),
            }
        }
        let secret = SecretKey {
            section,
            key: SECRET,
        };
        let failed = self.secret.is_some() || self.secret_file.is_some();
        let key = match secret.resolve(
            self.secret.as_deref(),
            self.secret_file.as_deref(),
            credentials,
            problems,
        ) {
            Some(value) => match decode_secret(value.expose()) {
                Ok(key) => Some(key),
                Err(e) => {
                    problems.error(format!("{section}.{SECRET}"), e);
                    None
                }
            },
            None => {
                if !failed {
                    problems.error(
                        format!("{section}.{SECRET}"),
                        format!(
                            "is required: the Standard Webhooks signing secret (whsec_ and the \
                             base64 of 24-64 random bytes, e.g. from `echo whsec_$(openssl rand \
                             -base64 32)`) that the receiver verifies; it never sits in the \
                             file: {}",
                            secret.sources()
                        ),
                    );
                }
                None
            }
        };
        Some(WebhookConfig {
            endpoint: endpoint?,
            key: key?,
            headers,
            timeout: self.timeout,
        })
    }
}

/// The HMAC key of a `whsec_…` secret: the base64 after the prefix, 24-64 bytes as the
/// Standard Webhooks specification asks.
pub(crate) fn decode_secret(secret: &str) -> Result<Vec<u8>, String> {
    let Some(encoded) = secret.trim().strip_prefix("whsec_") else {
        return Err("must start with whsec_ (a Standard Webhooks symmetric secret)".to_owned());
    };
    let key = aws_smithy_types::base64::decode(encoded)
        .map_err(|_| "the part after whsec_ is not base64".to_owned())?;
    if !(24..=64).contains(&key.len()) {
        return Err(format!(
            "decodes to {} bytes; the Standard Webhooks specification asks for 24-64 random \
             bytes",
            key.len()
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{problem_at, problems, MINIMAL};

    #[test]
    fn a_header_name_with_a_control_character_is_named_escaped_not_raw() {
        let found = problems(&format!(
            "{MINIMAL}[notifiers.hook]\ntype = \"webhook\"\nurl = \"https://hooks.example/x\"\n\
             headers = {{ \"\\r\" = \"x\", \"X-Ok\" = \"\\u0000\" }}\n"
        ));
        let name = problem_at(&found, "notifiers.hook.headers.\"\\u000D\"");
        assert!(name.message.contains("header name"), "{name}");
        let value = problem_at(&found, "notifiers.hook.headers.X-Ok");
        assert!(value.message.contains("header value"), "{value}");
    }
}
