//! The notifiers of a configuration: named tables `[notifiers.NAME]` with a `type`, any number
//! of each type, each with its routing keys ([`route`](super::route)) beside its own keys;
//! plus the older `[smtp]` and `[sns]` sections, which are the notifiers named `smtp` and
//! `sns`.
//!
//! While layering, each `[notifiers.NAME]` table is split into its routing keys and its
//! type's keys (`{"route": {...}, "slack": {...}}`, see `config::layer`), so that every key is
//! checked against the right struct and an unknown key is reported with the key probably
//! meant; [`RawInstance`] is that split shape.

use std::path::Path;

use serde::Deserialize;

use super::chat::{ChatConfig, Platform, RawChat};
use super::digest::DigestConfig;
use super::pagerduty::{PagerDutyConfig, RawPagerDuty};
use super::route::{RawRoute, Route};
use super::smtp::{RawSmtp, SmtpConfig};
use super::sns::{RawSns, SnsConfig};
use super::webhook::{RawWebhook, WebhookConfig};
use crate::config::fields::fields_of;
use crate::config::problem::Problems;

/// The notifier types, as `type` names them.
pub(crate) const TYPES: &[&str] = &["smtp", "sns", "slack", "teams", "pagerduty", "webhook"];

/// The keys that hold a secret in some notifier type: refused in the file whatever the type.
pub(crate) const SECRET_KEYS: &[&str] = &[
    "password",
    super::chat::WEBHOOK_URL,
    super::pagerduty::ROUTING_KEY,
    super::webhook::SECRET,
];

/// The keys of notifier type `kind` (besides the routing keys), read from its raw struct.
pub(crate) fn type_fields(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "smtp" => fields_of::<RawSmtp>(),
        "sns" => fields_of::<RawSns>(),
        "slack" | "teams" => fields_of::<RawChat>(),
        "pagerduty" => fields_of::<RawPagerDuty>(),
        "webhook" => fields_of::<RawWebhook>(),
        _ => return None,
    })
}

/// Whether `name` can name a notifier: `[a-z0-9_]+` (it becomes part of environment variable
/// names, credential names, metric labels and Message-IDs).
pub(crate) fn is_notifier_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// One `[notifiers.NAME]` table, split by the layering into routing and type keys.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawInstance {
    pub(crate) route: RawRoute,
    smtp: Option<RawSmtp>,
    sns: Option<RawSns>,
    slack: Option<RawChat>,
    teams: Option<RawChat>,
    pagerduty: Option<RawPagerDuty>,
    webhook: Option<RawWebhook>,
}

/// A notifier's settings by type, validated.
#[derive(Debug, Clone)]
pub enum NotifierKind {
    /// Mail.
    Smtp(SmtpConfig),
    /// An SNS topic.
    Sns(SnsConfig),
    /// A Slack or Teams webhook.
    Chat(Platform, ChatConfig),
    /// A PagerDuty service.
    PagerDuty(PagerDutyConfig),
    /// A signed webhook.
    Webhook(WebhookConfig),
}

impl NotifierKind {
    /// The configuration's `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            NotifierKind::Smtp(_) => "smtp",
            NotifierKind::Sns(_) => "sns",
            NotifierKind::Chat(platform, _) => platform.as_str(),
            NotifierKind::PagerDuty(_) => "pagerduty",
            NotifierKind::Webhook(_) => "webhook",
        }
    }
}

/// One configured notifier: its name, what it takes, where it sends.
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// The name (`[notifiers.NAME]`, or `smtp` / `sns` for the older sections).
    pub name: String,
    /// Which findings it takes.
    pub route: Route,
    /// How it digests bursts.
    pub digest: DigestConfig,
    /// Its settings.
    pub kind: NotifierKind,
}

impl RawInstance {
    /// Validates `[notifiers.NAME]`; `None` when it cannot be built (the problems say why).
    pub(crate) fn validate(
        &self,
        name: &str,
        digest: &DigestConfig,
        credentials: Option<&Path>,
        problems: &mut Problems,
    ) -> Option<NotifierConfig> {
        let section = format!("notifiers.{name}");
        let route = self.route.validate(&section, problems);
        let digest = match &self.route.digest {
            Some(raw) => raw.validate(&format!("{section}.digest"), digest, problems),
            None => *digest,
        };
        let kind = match self.route.kind.as_deref() {
            Some("smtp") => NotifierKind::Smtp(self.smtp.as_ref()?.validate(
                &section,
                credentials,
                problems,
            )),
            Some("sns") => NotifierKind::Sns(self.sns.as_ref()?.validate(&section, problems)),
            Some("slack") => NotifierKind::Chat(
                Platform::Slack,
                self.slack.as_ref()?.validate(
                    &section,
                    "the Slack app's incoming webhook URL, https://hooks.slack.com/services/…",
                    credentials,
                    problems,
                )?,
            ),
            Some("teams") => NotifierKind::Chat(
                Platform::Teams,
                self.teams.as_ref()?.validate(
                    &section,
                    "the URL of the Teams workflow \"Post to a channel when a webhook request \
                     is received\"",
                    credentials,
                    problems,
                )?,
            ),
            Some("pagerduty") => NotifierKind::PagerDuty(self.pagerduty.as_ref()?.validate(
                &section,
                credentials,
                problems,
            )?),
            Some("webhook") => NotifierKind::Webhook(self.webhook.as_ref()?.validate(
                &section,
                credentials,
                problems,
            )?),
            // The layering reported a missing or unknown type already.
            _ => return None,
        };
        Some(NotifierConfig {
            name: name.to_owned(),
            route,
            digest,
            kind,
        })
    }
}

/// Every notifier of the configuration: `[smtp]` and `[sns]` (named `smtp` and `sns`, taking
/// everything) and each `[notifiers.NAME]`, in that order; a name used twice is an error.
pub(crate) fn validate_all<'a>(
    digest: &DigestConfig,
    smtp: Option<&RawSmtp>,
    sns: Option<&RawSns>,
    instances: impl IntoIterator<Item = (&'a String, &'a RawInstance)>,
    credentials: Option<&Path>,
    problems: &mut Problems,
) -> Vec<NotifierConfig> {
    let mut notifiers = Vec::new();
    if let Some(smtp) = smtp {
        notifiers.push(NotifierConfig {
            name: "smtp".to_owned(),
            route: Route::everything(),
            digest: *digest,
            kind: NotifierKind::Smtp(smtp.validate("smtp", credentials, problems)),
        });
    }
    if let Some(sns) = sns {
        notifiers.push(NotifierConfig {
            name: "sns".to_owned(),
            route: Route::everything(),
            digest: *digest,
            kind: NotifierKind::Sns(sns.validate("sns", problems)),
        });
    }
    for (name, raw) in instances {
        if notifiers.iter().any(|n| n.name == *name) {
            problems.error(
                format!("notifiers.{name}"),
                format!(
                    "the name {name} is taken by the [{name}] section; rename this notifier or \
                     move the [{name}] section into it"
                ),
            );
            continue;
        }
        if let Some(notifier) = raw.validate(name, digest, credentials, problems) {
            notifiers.push(notifier);
        }
    }
    notifiers
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::config::testing::{load_str, problem_at, problems};
    use crate::rules::Severity;

    const SLACK_URL: &str = "https://hooks.slack.com/services/T0/B0/secretpart";

    #[test]
    fn several_notifiers_of_one_type_each_with_its_route_and_secret() {
        let text = r#"
[notifiers.ops]
type = "slack"
[notifiers.security]
type = "slack"
min_severity = "high"
categories = ["tampering", "iam-change"]
[notifiers.pager]
type = "pagerduty"
min_severity = "CRITICAL"
attempts = false
[notifiers.soar]
type = "webhook"
url = "https://soar.example.com/hooks/iamwatchd"
headers = { "X-Team" = "sec" }
events = ["Attach*Policy", "CreateUser"]
"#;
        let config = load_str(
            text,
            &[
                ("IAMWATCHD__NOTIFIERS__OPS__WEBHOOK_URL", SLACK_URL),
                ("IAMWATCHD__NOTIFIERS__SECURITY__WEBHOOK_URL", SLACK_URL),
                (
                    "IAMWATCHD__NOTIFIERS__PAGER__ROUTING_KEY",
                    "abcdefghijklmnopqrstuvwxyz012345",
                ),
                (
                    "IAMWATCHD__NOTIFIERS__SOAR__SECRET",
                    "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
                ),
                (
                    "IAMWATCHD__NOTIFIERS__SOAR__ACCOUNTS",
                    "111122223333,444455556666",
                ),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<(&str, &str)> = config
            .notifiers
            .iter()
            .map(|n| (n.name.as_str(), n.kind.type_name()))
            .collect();
        assert_eq!(
            names,
            [
                ("ops", "slack"),
                ("pager", "pagerduty"),
                ("security", "slack"),
                ("soar", "webhook")
            ]
        );
        assert!(config.notifier("ops").unwrap().route.is_everything());
        let security = &config.notifier("security").unwrap().route;
        assert_eq!(security.min_severity, Some(Severity::High));
        assert!(!config.notifier("pager").unwrap().route.attempts);
        let soar = &config.notifier("soar").unwrap().route;
        assert_eq!(
            soar.accounts.as_deref(),
            Some(&["111122223333".to_owned(), "444455556666".to_owned()][..])
        );
        let shown = format!("{:?}", config.notifiers);
        assert!(
            !shown.contains("secretpart") && !shown.contains("C2FVsBQ"),
            "{shown}"
        );
    }

    #[test]
    fn secrets_in_the_file_and_mistakes_are_reported_with_paths() {
        let found = problems(
            r#"
[notifiers.ops]
type = "slack"
webhook_url = "https://hooks.slack.com/services/T0/B0/secretpart"
min_severty = "HIGH"
[notifiers.Pager]
type = "pagerduty"
[notifiers.what]
type = "carrier-pigeon"
[notifiers.untyped]
url = "https://x.example.com"
[notifiers.plain]
type = "webhook"
url = "http://hooks.example.com/in"
"#,
        );
        let refused = &problem_at(&found, "notifiers.ops.webhook_url").message;
        assert!(
            refused.contains("IAMWATCHD__NOTIFIERS__OPS__WEBHOOK_URL"),
            "{refused}"
        );
        assert!(!refused.contains("secretpart"), "{refused}");
        assert!(problem_at(&found, "notifiers.ops.min_severty")
            .message
            .contains("notifiers.ops.min_severity"));
        problem_at(&found, "notifiers.Pager");
        assert!(problem_at(&found, "notifiers.what.type")
            .message
            .contains("slack, teams, pagerduty"));
        assert!(problem_at(&found, "notifiers.untyped.type")
            .message
            .contains("is required"));
        assert!(problem_at(&found, "notifiers.plain.url")
            .message
            .contains("allow_plaintext"));
        assert!(problem_at(&found, "notifiers.plain.secret")
            .message
            .contains("IAMWATCHD__NOTIFIERS__PLAIN__SECRET"));
    }

    #[test]
    fn a_systemd_credential_supplies_the_secret_and_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let credential = dir.path().join("ops.webhook_url");
        std::fs::write(&credential, format!("{SLACK_URL}\n")).unwrap();
        std::fs::set_permissions(&credential, std::fs::Permissions::from_mode(0o400)).unwrap();
        let directory = dir.path().to_str().unwrap();
        let text = "[notifiers.ops]\ntype = \"teams\"\n";
        let config = load_str(text, &[("CREDENTIALS_DIRECTORY", directory)])
            .unwrap_or_else(|e| panic!("{e}"));
        match &config.notifier("ops").unwrap().kind {
            NotifierKind::Chat(Platform::Teams, chat) => {
                assert_eq!(chat.endpoint.host(), "https://hooks.slack.com")
            }
            other => panic!("{other:?}"),
        }
        std::fs::set_permissions(&credential, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = load_str(text, &[("CREDENTIALS_DIRECTORY", directory)])
            .unwrap_err()
            .to_string();
        assert!(error.contains("chmod 600"), "{error}");
    }

    #[test]
    fn the_older_sections_keep_their_names_and_cannot_be_named_twice() {
        let text = r#"
[sns]
topic_arn = "arn:aws:sns:us-east-1:123456789012:t"
[notifiers.sns]
type = "sns"
topic_arn = "arn:aws:sns:us-east-1:123456789012:u"
"#;
        assert!(problem_at(&problems(text), "notifiers.sns")
            .message
            .contains("taken by the [sns] section"));
        let config = load_str(
            "[sns]\ntopic_arn = \"arn:aws:sns:us-east-1:123456789012:t\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(config.notifiers[0].name, "sns");
        assert!(config.notifiers[0].route.is_everything());
    }

    #[test]
    fn the_example_documents_every_notifier_type_and_key() {
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/iamwatchd.toml");
        let text = std::fs::read_to_string(example).unwrap();
        let documented = |key: &str| {
            text.lines().any(|l| {
                let l = l.trim_start_matches(['#', ' ']);
                l.starts_with(&format!("{key} =")) || l.starts_with(&format!("{key} = "))
            })
        };
        for kind in ["slack", "teams", "pagerduty", "webhook"] {
            assert!(text.contains(&format!("type = \"{kind}\"")), "{kind}");
        }
        let route = fields_of::<RawRoute>();
        for kind in TYPES {
            for key in type_fields(kind).unwrap().iter().chain(route) {
                if SECRET_KEYS.contains(key) {
                    assert!(text.contains(&format!("Secret: {key}")) || *kind == "smtp");
                } else if *key != "type" {
                    assert!(documented(key), "{kind}: {key} is not in the example");
                }
            }
        }
    }
}
