//! Routing: which findings a notifier takes. Each notifier has optional filters (severity,
//! category, account, event name, failed attempts); a finding goes to every notifier whose
//! filters all accept it, and one that no notifier accepts is logged and counted by the
//! reporter, never dropped in silence.

use std::fmt;

use serde::Deserialize;

use super::digest::RawDigest;
use super::Message;
use crate::config::problem::Problems;
use crate::config::shapes::is_account_id;
use crate::rules::allow::glob_matches;
use crate::rules::{Category, Severity};

/// The categories a route can name: the rules' ([`Category::ALL`]), and the daemon's own
/// health messages.
fn categories() -> Vec<&'static str> {
    Category::ALL
        .iter()
        .map(|category| category.as_str())
        .chain(["pipeline"])
        .collect()
}

/// What the reporter needs of one notifier: its name, its route and how it digests bursts.
#[derive(Debug, Clone)]
pub struct Outlet {
    /// The notifier's name.
    pub name: String,
    /// Which findings it takes.
    pub route: Route,
    /// How it digests bursts.
    pub digest: super::digest::DigestConfig,
}

impl Outlet {
    /// An outlet taking everything with the default digests, for tests.
    #[cfg(test)]
    pub(crate) fn everything(name: &str) -> Outlet {
        Outlet {
            name: name.to_owned(),
            route: Route::everything(),
            digest: super::digest::DigestConfig::default(),
        }
    }
}

/// A notifier's filters, validated; the default takes everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    /// Only findings at least this severe.
    pub min_severity: Option<Severity>,
    /// Only these categories (the rules' `iam-change`, `tampering`, `root-use`, …, and
    /// `pipeline`).
    pub categories: Option<Vec<String>>,
    /// Only findings in these accounts (12-digit ids).
    pub accounts: Option<Vec<String>>,
    /// Only these event names (globs with `*` and `?`).
    pub events: Option<Vec<String>>,
    /// `false`: failed attempts (AccessDenied and the like) are not sent here.
    pub attempts: bool,
}

impl Route {
    /// Whether a notifier with this route takes `message`.
    ///
    /// Messages about the pipeline have no account or event name of a change: only the
    /// severity and category filters apply to them.
    pub fn accepts(&self, message: &Message) -> bool {
        let severity_ok = self.min_severity.is_none_or(|min| {
            // A severity we cannot read is shown rather than hidden.
            message
                .severity
                .parse::<Severity>()
                .map_or(true, |s| s >= min)
        });
        let category = if message.is_pipeline() {
            "pipeline"
        } else {
            message.category.as_str()
        };
        let category_ok = self
            .categories
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == category));
        if message.is_pipeline() {
            return severity_ok && category_ok;
        }
        let account_ok = self
            .accounts
            .as_ref()
            .is_none_or(|ids| ids.contains(&message.account));
        let event_ok = self
            .events
            .as_ref()
            .is_none_or(|globs| globs.iter().any(|g| glob_matches(g, &message.event_name)));
        let attempt_ok = self.attempts || !message.attempt;
        severity_ok && category_ok && account_ok && event_ok && attempt_ok
    }

    /// True when the route takes everything.
    pub fn is_everything(&self) -> bool {
        *self == Route::everything()
    }

    /// The route of a notifier without filters.
    pub fn everything() -> Route {
        Route {
            attempts: true,
            ..Route::default()
        }
    }
}

/// One line for `check`'s routing table: `severity >= HIGH, categories tampering, …`.
impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(min) = self.min_severity {
            parts.push(format!("severity >= {min}"));
        }
        let lists = [
            ("categories", &self.categories),
            ("accounts", &self.accounts),
            ("events", &self.events),
        ];
        for (name, list) in lists {
            if let Some(list) = list {
                parts.push(format!("{name} {}", list.join(" ")));
            }
        }
        if !self.attempts {
            parts.push("no failed attempts".to_owned());
        }
        if parts.is_empty() {
            f.write_str("everything")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// A notifier's routing keys as written (beside its `type`).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawRoute {
    /// `smtp`, `sns`, `slack`, `teams`, `pagerduty` or `webhook` (required).
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    /// Lowest severity sent here.
    min_severity: Option<String>,
    /// Categories sent here.
    categories: Option<Vec<String>>,
    /// Accounts sent here.
    accounts: Option<Vec<String>>,
    /// Event-name globs sent here.
    events: Option<Vec<String>>,
    /// Whether failed attempts are sent here (default true).
    attempts: Option<bool>,
    /// This notifier's burst digests, over `[digest]`.
    pub(crate) digest: Option<RawDigest>,
}

impl RawRoute {
    /// Validates the routing keys of the notifier at key path `section`.
    pub(crate) fn validate(&self, section: &str, problems: &mut Problems) -> Route {
        let key = |name: &str| format!("{section}.{name}");
        let min_severity =
            self.min_severity
                .as_deref()
                .and_then(|text| match text.parse::<Severity>() {
                    Ok(severity) => Some(severity),
                    Err(e) => {
                        problems.error(key("min_severity"), e.to_string());
                        None
                    }
                });
        let categories = self.categories.as_ref().map(|names| {
            let names: Vec<String> = names.iter().map(|n| n.trim().to_lowercase()).collect();
            for (i, name) in names.iter().enumerate() {
                if !categories().contains(&name.as_str()) {
                    problems.error(
                        format!("{section}.categories[{i}]"),
                        format!(
                            "unknown category {name:?}: use {} (pipeline = the daemon's own \
                             health messages)",
                            categories().join(", ")
                        ),
                    );
                }
            }
            names
        });
        let accounts = self.accounts.clone();
        for (i, id) in accounts.iter().flatten().enumerate() {
            if !is_account_id(id) {
                problems.error(
                    format!("{section}.accounts[{i}]"),
                    format!("must be a 12-digit account id, got {id:?}"),
                );
            }
        }
        let events = self.events.clone();
        for (i, glob) in events.iter().flatten().enumerate() {
            let valid = !glob.is_empty()
                && glob
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?');
            if !valid {
                problems.error(
                    format!("{section}.events[{i}]"),
                    format!(
                        "must be an event name or a glob of one (letters and digits, `*` and \
                         `?`), e.g. \"Attach*Policy\"; got {glob:?}"
                    ),
                );
            }
        }
        for (name, list) in [
            ("categories", &categories),
            ("accounts", &accounts),
            ("events", &events),
        ] {
            if list.as_ref().is_some_and(Vec::is_empty) {
                problems.error(
                    key(name),
                    "is empty, so this notifier would receive nothing; remove the key to \
                     receive every finding",
                );
            }
        }
        Route {
            min_severity,
            categories,
            accounts,
            events,
            attempts: self.attempts.unwrap_or(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(severity: &str, category: &str, event: &str, attempt: bool) -> Message {
        Message {
            attempt,
            ..Message::for_test(severity, category, event)
        }
    }

    fn route(min: Option<Severity>, categories: Option<&[&str]>) -> Route {
        Route {
            min_severity: min,
            categories: categories.map(|c| c.iter().map(|s| s.to_string()).collect()),
            ..Route::everything()
        }
    }

    #[test]
    fn every_filter_must_accept() {
        let high = message("HIGH", "iam-change", "AttachRolePolicy", false);
        assert!(Route::everything().accepts(&high));
        assert!(route(Some(Severity::High), None).accepts(&high));
        assert!(!route(Some(Severity::Critical), None).accepts(&high));
        assert!(!route(None, Some(&["tampering"])).accepts(&high));
        let events = Route {
            events: Some(vec!["Attach*Policy".into()]),
            ..Route::everything()
        };
        assert!(events.accepts(&high));
        assert!(!events.accepts(&message("HIGH", "iam-change", "CreateUser", false)));
        let accounts = Route {
            accounts: Some(vec!["999999999999".into()]),
            ..Route::everything()
        };
        assert!(!accounts.accepts(&high));
        let no_attempts = Route {
            attempts: false,
            ..Route::everything()
        };
        assert!(no_attempts.accepts(&high));
        assert!(!no_attempts.accepts(&message("HIGH", "iam-change", "CreateUser", true)));
    }

    #[test]
    fn pipeline_messages_are_their_own_category_and_ignore_change_filters() {
        let silent = message("HIGH", "pipeline-health", "AlarmPathSilent", false);
        assert!(route(None, Some(&["pipeline"])).accepts(&silent));
        assert!(!route(None, Some(&["iam-change", "tampering"])).accepts(&silent));
        let events = Route {
            events: Some(vec!["Attach*".into()]),
            accounts: Some(vec!["999999999999".into()]),
            ..Route::everything()
        };
        assert!(
            events.accepts(&silent),
            "a change filter does not hide health"
        );
    }

    #[test]
    fn findings_of_every_rule_category_obey_the_change_filters() {
        // Root use, Identity Center, Organizations and sign-ins are findings like IAM changes:
        // a route's event, account and attempt filters apply to them, and they are not the
        // daemon's health messages (found by the soak: a root CreateAccessKey reached a Slack
        // route that named other events only).
        let events = Route {
            events: Some(vec!["PutRolePolicy".into()]),
            ..Route::everything()
        };
        for category in Category::ALL {
            let finding = message("HIGH", category.as_str(), "CreateAccessKey", false);
            assert!(!finding.is_pipeline(), "{category:?}");
            assert!(!events.accepts(&finding), "{category:?}");
            assert!(
                !route(None, Some(&["pipeline"])).accepts(&finding),
                "{category:?}"
            );
            assert!(route(None, Some(&[category.as_str()])).accepts(&finding));
            let raw = RawRoute {
                categories: Some(vec![category.as_str().to_owned()]),
                ..RawRoute::default()
            };
            let mut problems = Problems::default();
            raw.validate("notifiers.ops", &mut problems);
            assert!(
                problems.errors.is_empty(),
                "{category:?} is a category a route can name"
            );
        }
    }

    #[test]
    fn bad_filters_are_reported_with_their_paths() {
        let raw = RawRoute {
            kind: Some("slack".into()),
            min_severity: Some("urgent".into()),
            categories: Some(vec!["iam".into()]),
            accounts: Some(vec!["12".into()]),
            events: Some(vec!["Attach Role".into()]),
            attempts: None,
            digest: None,
        };
        let mut problems = Problems::default();
        raw.validate("notifiers.ops", &mut problems);
        let paths: Vec<&str> = problems.errors.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "notifiers.ops.min_severity",
                "notifiers.ops.categories[0]",
                "notifiers.ops.accounts[0]",
                "notifiers.ops.events[0]"
            ]
        );
        let shown = route(Some(Severity::High), Some(&["tampering"])).to_string();
        assert_eq!(shown, "severity >= HIGH, categories tampering");
        assert_eq!(Route::everything().to_string(), "everything");
    }
}
