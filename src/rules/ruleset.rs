//! What the configuration lets through (`[rules]`): the catalogue's verdict minus failed calls
//! when they are ignored, severities below the minimum, and the allow-list.

use serde::Deserialize;

use super::allow::{AllowRule, DigestMode};
use super::catalogue::Ours;
use super::severity::Severity;
use super::{classify, Classification};
use crate::config::problem::Problems;
use crate::config::values;
use crate::event::Record;

/// How failed calls (CloudTrail `errorCode` set, e.g. AccessDenied) are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum FailedCalls {
    /// Reported as attempted changes, at lower priority than changes.
    #[default]
    Report,
    /// Not reported at all.
    Ignore,
}

impl TryFrom<String> for FailedCalls {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        values::choose(
            &text,
            &[
                ("report", FailedCalls::Report),
                ("ignore", FailedCalls::Ignore),
            ],
        )
    }
}

/// What is reported: the catalogue's verdict ([`classify`]) minus what the configuration leaves
/// out. The default reports everything the catalogue reports, attempts included. It is also
/// `[rules]` as written: [`Ruleset::check`] reports what cannot work.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ruleset {
    /// How failed calls are treated (`"report"` or `"ignore"`).
    pub failed_calls: FailedCalls,
    /// Nothing below this is reported.
    pub min_severity: Severity,
    /// Expected changes that are not reported (`[[rules.allow]]`).
    pub allow: Vec<AllowRule>,
    /// Our own monitoring's names, on which resource-specific tampering is CRITICAL: not in
    /// the file, the daemon fills them in from the stack's outputs.
    #[serde(skip)]
    pub ours: Ours,
}

impl Ruleset {
    /// Reports every allow entry that cannot work, at `section.allow[i]`.
    pub(crate) fn check(&self, section: &str, problems: &mut Problems) {
        for (i, entry) in self.allow.iter().enumerate() {
            entry.check(&format!("{section}.allow[{i}]"), problems);
        }
    }

    /// The verdict on a record, or `None` when it must not be reported.
    pub fn judge(&self, record: &Record) -> Option<Classification> {
        self.judge_with(record, None)
    }

    /// [`Ruleset::judge`] with the analysis of what the change grants, which may raise or
    /// lower the severity before the minimum severity applies.
    pub(crate) fn judge_with(
        &self,
        record: &Record,
        analysis: Option<&crate::analysis::Analysis>,
    ) -> Option<Classification> {
        let classification = self.judge_unsilenced(record, analysis)?;
        if let Some(rule) = self.silencer(record) {
            tracing::debug!(event_id = %record.event_id, event = %record.event_name, ?rule,
                "allowed by the allow-list; not reported");
            return None;
        }
        Some(classification)
    }

    /// The verdict without the allow-list.
    fn judge_unsilenced(
        &self,
        record: &Record,
        analysis: Option<&crate::analysis::Analysis>,
    ) -> Option<Classification> {
        let classification = classify(record, &self.ours)?;
        let classification = match analysis {
            Some(analysis) => super::verdicts::with_analysis(classification, analysis),
            None => classification,
        };
        if classification.attempt && self.failed_calls == FailedCalls::Ignore {
            return None;
        }
        if classification.severity < self.min_severity {
            return None;
        }
        Some(classification)
    }

    /// The allow-list entry that silences `record`, if any (entries with a `digest` mode
    /// silence nothing).
    fn silencer(&self, record: &Record) -> Option<&AllowRule> {
        self.allow
            .iter()
            .find(|rule| rule.digest.is_none() && rule.matches(record))
    }

    /// Whether the allow-list silenced `record`, a change that would otherwise be reported.
    pub fn silenced(&self, record: &Record) -> bool {
        self.silencer(record).is_some() && self.judge_unsilenced(record, None).is_some()
    }

    /// How `record`'s findings are digested, by the first allow-list entry with a `digest`
    /// mode that matches it.
    pub fn digest_mode(&self, record: &Record) -> Option<DigestMode> {
        self.allow
            .iter()
            .find(|rule| rule.digest.is_some() && rule.matches(record))
            .and_then(|rule| rule.digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ci_record(name: &str, extra: serde_json::Value) -> Record {
        let mut value = serde_json::json!({
            "eventID": "e1", "eventName": name, "eventSource": "iam.amazonaws.com",
            "eventTime": "2026-11-25T12:00:00Z", "readOnly": false,
            "recipientAccountId": "111122223333",
            "userIdentity": {"type": "AssumedRole",
                "arn": "arn:aws:sts::111122223333:assumed-role/ci/build-7",
                "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::111122223333:role/ci"}}},
            "requestParameters": {"roleName": "app"}
        });
        value
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        Record::from_json(value).unwrap()
    }

    fn ruleset() -> Ruleset {
        Ruleset {
            allow: vec![AllowRule {
                principal: Some("arn:aws:iam::111122223333:role/ci".into()),
                event: Some("Tag*".into()),
                account: None,
                comment: Some("CI tags what it deploys".into()),
                digest: None,
            }],
            failed_calls: FailedCalls::Report,
            min_severity: Severity::Info,
            ours: Ours::default(),
        }
    }

    #[test]
    fn an_allow_rule_for_a_role_covers_every_session_of_it() {
        let ruleset = ruleset();
        assert!(ruleset
            .judge(&ci_record("TagRole", serde_json::json!({})))
            .is_none());
        assert!(
            ruleset
                .judge(&ci_record("CreateRole", serde_json::json!({})))
                .is_some(),
            "only the allowed event names"
        );
    }

    #[test]
    fn failed_calls_are_reported_as_attempts_or_ignored_per_config() {
        let denied = ci_record(
            "CreateRole",
            serde_json::json!({"errorCode": "AccessDenied"}),
        );
        let verdict = ruleset().judge(&denied).expect("reported");
        assert!(verdict.attempt);
        let ignoring = Ruleset {
            failed_calls: FailedCalls::Ignore,
            ..ruleset()
        };
        assert!(ignoring.judge(&denied).is_none());
    }

    #[test]
    fn min_severity_drops_what_is_below_it_and_reads_are_never_reported() {
        let strict = Ruleset {
            min_severity: Severity::Critical,
            ..ruleset()
        };
        assert!(strict
            .judge(&ci_record("UpdateRoleDescription", serde_json::json!({})))
            .is_none());
        assert!(strict
            .judge(&ci_record("UpdateAssumeRolePolicy", serde_json::json!({})))
            .is_some());
        assert!(ruleset()
            .judge(&ci_record("GetRole", serde_json::json!({"readOnly": true})))
            .is_none());
    }
}
