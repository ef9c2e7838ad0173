//! The optional second opinion of IAM Access Analyzer, shown beside our own verdicts and never
//! in their place: `CheckNoNewAccess` (does the new version allow anything the previous one did
//! not?) when the previous version is known, else `CheckAccessNotGranted` (does the new version
//! grant any action of the privilege-escalation table?). AWS bills every call, so it runs only
//! with `analysis.access_analyzer = true`; a failed, denied or slow call is said in the message
//! and changes nothing else: the severity and the verdicts are ours alone.

use aws_sdk_accessanalyzer::types::{Access, AccessCheckPolicyType, ReasonSummary};
use aws_sdk_accessanalyzer::Client;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::escalation::PATHS;
use super::Kind;
use crate::aws::errors::AwsError;

/// The AWS actions this module calls (the daemon's policy, `deploy/iamwatchd-policy.json`,
/// must allow exactly the union of every module's list; `src/aws/actions.rs` enforces it).
#[cfg(test)]
pub(crate) const ACTIONS: &[&str] = &[
    "access-analyzer:CheckAccessNotGranted",
    "access-analyzer:CheckNoNewAccess",
];

/// Access Analyzer takes at most this many actions in one `CheckAccessNotGranted`.
const MAX_ACTIONS: usize = 100;

/// Reasons quoted at most.
const MAX_REASONS: usize = 3;

/// What Access Analyzer said of one change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrossCheck {
    /// The check asked: `CheckNoNewAccess` or `CheckAccessNotGranted`.
    pub check: String,
    /// `PASS`, `FAIL`, or `unavailable` when no answer came.
    pub result: String,
    /// Its message and first reasons, or why there is no answer.
    pub message: String,
}

impl CrossCheck {
    fn unavailable(check: &str, why: impl Into<String>) -> CrossCheck {
        CrossCheck {
            check: check.to_owned(),
            result: "unavailable".to_owned(),
            message: why.into(),
        }
    }

    /// No answer within the analysis's time budget.
    pub(crate) fn timed_out(check: &str, why: &str) -> CrossCheck {
        CrossCheck::unavailable(check, why)
    }
}

/// What to ask Access Analyzer about one change, decided before any call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Question {
    /// `CheckNoNewAccess(existing, new)`.
    NoNewAccess {
        existing: String,
        new: String,
        policy_type: PolicyType,
    },
    /// `CheckAccessNotGranted(document, the escalation actions)`.
    AccessNotGranted {
        document: String,
        actions: Vec<String>,
    },
}

/// The policy type Access Analyzer is told (a trust policy is a resource policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PolicyType {
    Identity,
    Resource,
}

impl Question {
    /// The check's name.
    pub(crate) fn check(&self) -> &'static str {
        match self {
            Question::NoNewAccess { .. } => "CheckNoNewAccess",
            Question::AccessNotGranted { .. } => "CheckAccessNotGranted",
        }
    }

    /// The question for a change of `kind` from `before` (`None`: unknown; `Some(None)`: no
    /// policy) to `after`; `None` when there is nothing to ask (a boundary, a deletion, an
    /// unreadable document, a trust policy whose previous version is unknown).
    pub(crate) fn for_change(
        kind: Kind,
        before: Option<Option<&Value>>,
        after: Option<&Value>,
    ) -> Option<Question> {
        let policy_type = match kind {
            Kind::Identity => PolicyType::Identity,
            Kind::Trust => PolicyType::Resource,
            Kind::Boundary => return None,
        };
        let new = super::policy::parse(after?)?.to_string();
        match before {
            Some(previous) => {
                let existing = match previous {
                    Some(value) => super::policy::parse(value)?.to_string(),
                    None => r#"{"Version":"2012-10-17","Statement":[]}"#.to_owned(),
                };
                Some(Question::NoNewAccess {
                    existing,
                    new,
                    policy_type,
                })
            }
            None if policy_type == PolicyType::Identity => Some(Question::AccessNotGranted {
                document: new,
                actions: escalation_actions(),
            }),
            None => None,
        }
    }
}

/// Every action of the escalation table, once, in order, at most [`MAX_ACTIONS`].
pub(crate) fn escalation_actions() -> Vec<String> {
    let mut actions: Vec<String> = Vec::new();
    for action in PATHS.iter().flat_map(|p| p.actions.iter()) {
        if !actions.iter().any(|a| a.eq_ignore_ascii_case(action)) {
            actions.push((*action).to_owned());
        }
    }
    actions.truncate(MAX_ACTIONS);
    actions
}

/// Access Analyzer, through one client.
pub(crate) struct AccessAnalyzer {
    client: Client,
}

impl AccessAnalyzer {
    /// Asks through `client`.
    pub(crate) fn new(client: Client) -> AccessAnalyzer {
        AccessAnalyzer { client }
    }

    /// Asks `question`; every failure becomes an `unavailable` answer naming the cause.
    pub(crate) async fn ask(&self, question: &Question) -> CrossCheck {
        let check = question.check();
        let answered = match question {
            Question::NoNewAccess {
                existing,
                new,
                policy_type,
            } => self
                .client
                .check_no_new_access()
                .existing_policy_document(existing)
                .new_policy_document(new)
                .policy_type(policy_type.sdk())
                .send()
                .await
                .map(|out| {
                    answer(
                        out.result().map(|r| r.as_str()),
                        out.message(),
                        out.reasons(),
                    )
                })
                .map_err(|e| AwsError::read(&e)),
            Question::AccessNotGranted { document, actions } => self
                .client
                .check_access_not_granted()
                .policy_document(document)
                .access(Access::builder().set_actions(Some(actions.clone())).build())
                .policy_type(AccessCheckPolicyType::IdentityPolicy)
                .send()
                .await
                .map(|out| {
                    answer(
                        out.result().map(|r| r.as_str()),
                        out.message(),
                        out.reasons(),
                    )
                })
                .map_err(|e| AwsError::read(&e)),
        };
        match answered {
            Ok((result, message)) => CrossCheck {
                check: check.to_owned(),
                result,
                message,
            },
            Err(error) => CrossCheck::unavailable(check, unavailable_reason(check, &error)),
        }
    }
}

impl PolicyType {
    fn sdk(self) -> AccessCheckPolicyType {
        match self {
            PolicyType::Identity => AccessCheckPolicyType::IdentityPolicy,
            PolicyType::Resource => AccessCheckPolicyType::ResourcePolicy,
        }
    }
}

/// The result and the message with the first reasons.
fn answer(
    result: Option<&str>,
    message: Option<&str>,
    reasons: &[ReasonSummary],
) -> (String, String) {
    let mut text = message.unwrap_or("").trim().to_owned();
    for reason in reasons.iter().take(MAX_REASONS) {
        if let Some(description) = reason.description() {
            if !text.is_empty() {
                text.push_str("; ");
            }
            text.push_str(description.trim());
        }
    }
    if reasons.len() > MAX_REASONS {
        text.push_str(&format!("; and {} more", reasons.len() - MAX_REASONS));
    }
    (result.unwrap_or("unknown").to_owned(), text)
}

fn unavailable_reason(check: &str, error: &AwsError) -> String {
    if error.kind == crate::aws::errors::Kind::Denied {
        format!(
            "{check} was refused ({error}): the daemon's role needs access-analyzer:{check} \
             (deploy/iamwatchd-policy.json grants it), or set analysis.access_analyzer = false"
        )
    } else {
        format!("{check} failed: {error}")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_known_previous_version_asks_whether_anything_new_is_allowed() {
        let before = json!({"Version": "2012-10-17", "Statement": []});
        let after = Value::String(
            "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D".to_owned(),
        );
        let question = Question::for_change(Kind::Identity, Some(Some(&before)), Some(&after));
        let Some(Question::NoNewAccess {
            existing,
            new,
            policy_type,
        }) = question
        else {
            panic!("expected CheckNoNewAccess, got {question:?}");
        };
        assert_eq!(policy_type, PolicyType::Identity);
        // Both documents are sent as plain JSON, whatever shape they arrived in.
        assert_eq!(existing, new);
        assert!(new.starts_with('{'), "{new}");
    }

    #[test]
    fn a_new_policy_is_compared_with_an_empty_one() {
        let after = json!({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]});
        match Question::for_change(Kind::Identity, Some(None), Some(&after)) {
            Some(Question::NoNewAccess { existing, .. }) => {
                assert_eq!(existing, r#"{"Version":"2012-10-17","Statement":[]}"#)
            }
            other => panic!("expected CheckNoNewAccess, got {other:?}"),
        }
    }

    #[test]
    fn an_unknown_previous_version_asks_about_the_escalation_actions() {
        let after = json!({"Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]});
        match Question::for_change(Kind::Identity, None, Some(&after)) {
            Some(Question::AccessNotGranted { actions, .. }) => {
                assert!(actions.iter().any(|a| a == "iam:PassRole"), "{actions:?}");
                assert!(actions.len() <= MAX_ACTIONS);
                let mut unique = actions.clone();
                unique.sort_by_key(|a| a.to_lowercase());
                unique.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
                assert_eq!(unique.len(), actions.len(), "each action once");
            }
            other => panic!("expected CheckAccessNotGranted, got {other:?}"),
        }
    }

    #[test]
    fn nothing_is_asked_where_no_answer_could_help() {
        let doc = json!({"Statement": []});
        // A boundary grants nothing; a deletion adds nothing; a trust policy has no escalation
        // action list; an unreadable document cannot be sent.
        assert_eq!(
            Question::for_change(Kind::Boundary, Some(None), Some(&doc)),
            None
        );
        assert_eq!(
            Question::for_change(Kind::Identity, Some(Some(&doc)), None),
            None
        );
        assert_eq!(Question::for_change(Kind::Trust, None, Some(&doc)), None);
        let garbage = Value::String("not a policy %ZZ".to_owned());
        assert_eq!(
            Question::for_change(Kind::Identity, Some(None), Some(&garbage)),
            None
        );
        // A trust policy with a known previous version is a resource policy to Access Analyzer.
        match Question::for_change(Kind::Trust, Some(Some(&doc)), Some(&doc)) {
            Some(Question::NoNewAccess { policy_type, .. }) => {
                assert_eq!(policy_type, PolicyType::Resource)
            }
            other => panic!("expected CheckNoNewAccess, got {other:?}"),
        }
    }

    #[test]
    fn the_answer_quotes_the_message_and_the_first_reasons() {
        let reasons: Vec<ReasonSummary> = (0..5)
            .map(|i| {
                ReasonSummary::builder()
                    .description(format!("statement {i} grants more"))
                    .build()
            })
            .collect();
        let (result, text) = answer(
            Some("FAIL"),
            Some("The policy grants new access."),
            &reasons,
        );
        assert_eq!(result, "FAIL");
        assert_eq!(
            text,
            "The policy grants new access.; statement 0 grants more; statement 1 grants more; \
             statement 2 grants more; and 2 more"
        );
    }
}
