//! Where an HTTP notifier posts: an `https://` URL, or plain `http://` only to a loopback
//! address (a local sink) or with the notifier's `allow_plaintext = true`. A Slack or Teams
//! webhook URL is itself the credential, so messages about one name its scheme and host only.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::Url;

use crate::config::problem::Problems;
use crate::config::secret::Secret;

/// Default time a notifier waits for an answer (connecting included).
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// A validated endpoint. The URL may be a secret: [`Endpoint::host`] is what messages show.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: Secret,
    host: String,
    /// Host name and port to connect to, for the health check.
    address: (String, u16),
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Endpoint({})", self.host)
    }
}

impl Endpoint {
    /// `scheme://host[:port]`: safe to log, whatever the path holds.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Host name and port.
    pub(crate) fn address(&self) -> (&str, u16) {
        (&self.address.0, self.address.1)
    }

    /// The full URL, for the one place that sends to it.
    pub(crate) fn url(&self) -> &str {
        self.url.expose()
    }

    /// Checks `text`, found at key path `key`; problems never quote a secret URL whole.
    pub(crate) fn check(
        key: &str,
        text: &str,
        allow_plaintext: bool,
        secret: bool,
        problems: &mut Problems,
    ) -> Option<Endpoint> {
        let shown = |text: &str| {
            if secret {
                "(the value is a secret, not shown)".to_owned()
            } else {
                format!("got {text:?}")
            }
        };
        let url = match Url::parse(text.trim()) {
            Ok(url) => url,
            Err(e) => {
                problems.error(key, format!("is not a URL ({e}); {}", shown(text)));
                return None;
            }
        };
        let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
            problems.error(key, format!("must name a host; {}", shown(text)));
            return None;
        };
        let origin = match url.port() {
            Some(port) => format!("{}://{host}:{port}", url.scheme()),
            None => format!("{}://{host}", url.scheme()),
        };
        match url.scheme() {
            "https" => {}
            "http" if allow_plaintext || is_loopback(host) => {}
            "http" => {
                problems.error(
                    key,
                    format!(
                        "{origin} is plain http: messages (and the URL's own credentials) \
                         would cross the network unencrypted; use https, or set \
                         allow_plaintext = true on this notifier if you really mean it (plain \
                         http is accepted without it only for a loopback address)"
                    ),
                );
                return None;
            }
            other => {
                problems.error(
                    key,
                    format!("must be an https:// URL, got the scheme {other:?}"),
                );
                return None;
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            problems.error(
                key,
                format!("{origin}: credentials in the URL are refused; use the notifier's secret"),
            );
            return None;
        }
        let port = url.port_or_known_default().unwrap_or(443);
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Some(Endpoint {
            url: Secret::new(url.as_str()),
            host: origin,
            address: (bare, port),
        })
    }
}

/// `localhost`, 127.0.0.0/8 or ::1.
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks a notifier's `timeout`.
pub(crate) fn check_timeout(key: &str, timeout: Duration, problems: &mut Problems) {
    if timeout.is_zero() || timeout > Duration::from_secs(120) {
        problems.error(
            key,
            format!(
                "must be between 1 ms and 2 minutes (how long to wait for an answer), got {}",
                humantime::format_duration(timeout)
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, allow_plaintext: bool) -> Result<Endpoint, String> {
        let mut problems = Problems::default();
        Endpoint::check("n.url", text, allow_plaintext, true, &mut problems)
            .ok_or_else(|| problems.errors[0].message.clone())
    }

    #[test]
    fn https_anywhere_http_only_on_loopback_or_by_consent() {
        let slack = check("https://hooks.slack.com/services/T0/B0/secretpart", false).unwrap();
        assert_eq!(slack.host(), "https://hooks.slack.com");
        assert!(!format!("{slack:?}").contains("secretpart"));
        assert!(check("http://127.0.0.1:8080/slack/a", false).is_ok());
        assert!(check("http://localhost/x", false).is_ok());
        assert!(check("http://[::1]:9/x", false).is_ok());
        let refused = check("http://hooks.example.com/services/secretpart", false).unwrap_err();
        assert!(refused.contains("allow_plaintext = true"), "{refused}");
        assert!(!refused.contains("secretpart"), "{refused}");
        assert!(check("http://hooks.example.com/x", true).is_ok());
        assert!(check("ftp://example.com/x", true)
            .unwrap_err()
            .contains("https://"));
        let bad = check("not a url with secretpart", false).unwrap_err();
        assert!(!bad.contains("secretpart"), "{bad}");
        assert!(check("https://user:pw@example.com/", false)
            .unwrap_err()
            .contains("credentials in the URL"));
    }
}
