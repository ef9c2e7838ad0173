//! The allow-list: expected changes (a CI role tagging resources) that are not reported. An
//! entry matches by principal (assumed-role sessions count as their role), event-name glob and
//! account; every condition given must match.

use serde::Deserialize;

use crate::aws::arn;
use crate::config::problem::Problems;
use crate::config::shapes::{check_principal, is_account_id};
use crate::event::Record;

/// One allow-list entry (`[[rules.allow]]`): records it matches are not reported. Every
/// condition given must match; an entry with no condition matches nothing (it would silence
/// everything, which is never what an operator means — [`AllowRule::check`] says so).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AllowRule {
    /// The acting principal's ARN (glob). An assumed-role session ARN is normalised to its role,
    /// so `arn:aws:sts::123:assumed-role/ci/*` and `arn:aws:iam::123:role/ci` both mean the
    /// role `ci` whatever the session.
    pub principal: Option<String>,
    /// The event name (glob with `*` and `?`), e.g. `Tag*`.
    pub event: Option<String>,
    /// The 12-digit account the event belongs to (a glob for the matcher; the configuration
    /// takes a whole account ID).
    pub account: Option<String>,
    /// Why the entry exists (for humans; logged when it suppresses an event).
    pub comment: Option<String>,
    /// With `"always"` or `"never"`, the entry silences nothing: it says how the principal's
    /// findings are digested (a known CI role: everything into digests, CRITICAL still at
    /// once; or never digested).
    pub digest: Option<DigestMode>,
}

/// How an allow-list entry's findings are digested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum DigestMode {
    /// Every finding waits for a digest (CRITICAL and tampering still go at once).
    Always,
    /// Never digested: one message per finding.
    Never,
}

impl TryFrom<String> for DigestMode {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        crate::config::values::choose(
            &text,
            &[("always", DigestMode::Always), ("never", DigestMode::Never)],
        )
    }
}

impl AllowRule {
    /// Whether the entry can work as written, each problem reported at `path` (the entry's key
    /// path, `rules.allow[2]`) or below it.
    pub(crate) fn check(&self, path: &str, problems: &mut Problems) {
        if self.is_empty() {
            problems.error(
                path,
                "an allow entry must set at least one of principal, event and account (an \
                 empty entry would silence everything)",
            );
        }
        if let Some(principal) = &self.principal {
            if let Err(e) = check_principal(principal) {
                problems.error(format!("{path}.principal"), e);
            }
        }
        if let Some(event) = &self.event {
            let valid = !event.is_empty()
                && event
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?');
            if !valid {
                problems.error(
                    format!("{path}.event"),
                    format!(
                        "must be an event name or a glob of one (letters and digits, `*` and \
                         `?`), e.g. \"Tag*\", got {event:?}"
                    ),
                );
            }
        }
        if let Some(account) = &self.account {
            if !is_account_id(account) {
                problems.error(
                    format!("{path}.account"),
                    format!(
                        "must be a 12-digit AWS account ID written as a quoted string (so \
                         leading zeros survive), got {account:?}"
                    ),
                );
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.principal.is_none() && self.event.is_none() && self.account.is_none()
    }

    /// Whether this rule allows the record (every given condition matches).
    pub fn matches(&self, record: &Record) -> bool {
        if self.is_empty() {
            return false;
        }
        let principal_ok = self.principal.as_deref().is_none_or(|wanted| {
            record
                .identity
                .principal()
                .is_some_and(|actual| principal_matches(wanted, &actual))
        });
        let event_ok = self
            .event
            .as_deref()
            .is_none_or(|glob| glob_matches(glob, &record.event_name));
        let account_ok = self.account.as_deref().is_none_or(|glob| {
            record
                .account()
                .is_some_and(|account| glob_matches(glob, account))
        });
        principal_ok && event_ok && account_ok
    }
}

/// Compares a configured principal with the record's ([`crate::event::Identity::principal`]).
/// Both sides are normalised: a session ARN becomes its role ARN, and a role ARN is also tried
/// without its path, because a session ARN never carries the path (`role/ops/ci` is `role/ci`).
fn principal_matches(wanted: &str, actual: &str) -> bool {
    let wanted = arn::role_of_session(wanted).unwrap_or_else(|| wanted.to_owned());
    glob_matches(&wanted, actual) || glob_matches(&wanted, &arn::without_role_path(actual))
}

/// A glob over the whole text: `*` is any run of characters (also empty), `?` is one
/// character, everything else is literal and case-sensitive (event names and ARNs are).
pub(crate) fn glob_matches(glob: &str, text: &str) -> bool {
    let pattern: Vec<char> = glob.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it currently absorbs up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn glob_star_and_question_mark() {
        assert!(glob_matches("Tag*", "TagUser"));
        assert!(glob_matches("Tag*", "Tag"));
        assert!(!glob_matches("Tag*", "UntagUser"));
        assert!(glob_matches("*Policy", "AttachUserPolicy"));
        assert!(glob_matches("Attach*Policy", "AttachRolePolicy"));
        assert!(!glob_matches("Attach*Policy", "AttachRolePolicyX"));
        assert!(glob_matches("Create?ser", "CreateUser"));
        assert!(!glob_matches("Create?ser", "CreateUUser"));
        assert!(glob_matches("*a*b*", "xxaYYbzz"));
        assert!(glob_matches("*", ""));
        assert!(!glob_matches("?", ""));
        assert!(!glob_matches("tag*", "TagUser"), "globs are case-sensitive");
    }

    #[test]
    fn allow_rules_normalise_sessions_to_their_role_and_glob() {
        let rule =
            |principal: Option<&str>, event: Option<&str>, account: Option<&str>| AllowRule {
                principal: principal.map(str::to_owned),
                event: event.map(str::to_owned),
                account: account.map(str::to_owned),
                comment: None,
                digest: None,
            };
        let build_42 = session("", "build-42", "111122223333");
        let build_43_with_path = session("deploy/", "build-43", "111122223333");
        let other_account = session("", "build-44", "444455556666");

        let by_role = rule(Some("arn:aws:iam::111122223333:role/ci"), None, None);
        assert!(by_role.matches(&build_42));
        assert!(
            by_role.matches(&build_43_with_path),
            "the role's path does not matter"
        );
        assert!(!by_role.matches(&other_account));

        let by_session_arn = rule(
            Some("arn:aws:sts::111122223333:assumed-role/ci/build-1"),
            None,
            None,
        );
        assert!(
            by_session_arn.matches(&build_42),
            "a session in the config means its role"
        );

        let by_glob = rule(Some("arn:aws:iam::*:role/c?"), Some("Tag*"), None);
        assert!(by_glob.matches(&other_account));
        let wrong_event = rule(Some("arn:aws:iam::*:role/ci"), Some("Untag*"), None);
        assert!(!wrong_event.matches(&build_42));

        let by_account = rule(None, Some("Tag*"), Some("4444*"));
        assert!(by_account.matches(&other_account));
        assert!(!by_account.matches(&build_42));

        let user = iam("TagUser", json!({}));
        assert!(rule(Some("arn:aws:iam::111122223333:user/alice"), None, None).matches(&user));
        assert!(!rule(Some("arn:aws:iam::111122223333:user/bob"), None, None).matches(&user));

        let empty = AllowRule::default();
        let mut problems = Problems::default();
        empty.check("rules.allow[0]", &mut problems);
        assert_eq!(problems.errors.len(), 1);
        assert_eq!(problems.errors[0].path, "rules.allow[0]");
        assert!(problems.errors[0].message.contains("silence everything"));
        assert!(
            !empty.matches(&user),
            "an empty rule must not silence everything"
        );
    }

    #[test]
    fn allow_rules_come_from_configuration_and_reject_unknown_keys() {
        let rule: AllowRule = serde_json::from_value(json!({"event": "Tag*"})).unwrap();
        assert_eq!(rule.event.as_deref(), Some("Tag*"));
        assert!(serde_json::from_value::<AllowRule>(json!({"events": "Tag*"})).is_err());
    }

    #[test]
    fn allow_entries_need_a_field() {
        use crate::config::testing::*;
        let text = format!(
            "{MINIMAL}[[rules.allow]]\ncomment = \"nothing else\"\n[[rules.allow]]\nevent = \"Tag*\"\n[[rules.allow]]\nprincipal = \"arn:aws:sts::123456789012:assumed-role/ci/session-1\"\naccount = \"12345\"\nevnt = \"x\"\n"
        );
        let found = problems(&text);
        assert!(problem_at(&found, "rules.allow[0]")
            .message
            .contains("at least one"));
        assert!(
            !found.iter().any(|p| p.path.starts_with("rules.allow[1]")),
            "{found:#?}"
        );
        assert!(problem_at(&found, "rules.allow[2].principal")
            .message
            .contains("arn:aws:iam::123456789012:role/ci"));
        problem_at(&found, "rules.allow[2].account");
        assert!(problem_at(&found, "rules.allow[2].evnt")
            .message
            .contains("`rules.allow[2].event`"));
    }
}
