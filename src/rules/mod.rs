//! The one rule catalogue: which CloudTrail records are IAM changes or tampering with the
//! monitoring ([`catalogue`]), how severe each is ([`severity`]), which ones an operator has
//! allowed ([`allow`]), and what the configuration lets through ([`ruleset`]).
//!
//! The daemon's matcher ([`is_iam_mutation`], [`is_tampering`]) and the CloudFormation metric
//! filters ([`iam_metric_filter_pattern`], [`tampering_metric_filter_pattern`], in
//! [`patterns`]) are built from the same constants ([`catalogue::READ_PREFIXES`],
//! [`TAMPERING_EVENTS`]), so the fast path and the alarm path can never disagree about what is
//! worth reporting.
//! `tests/e2e/rules.rs` proves the agreement on every record of the test corpus with the
//! emulator's filter-pattern evaluator as the independent judge.
//!
//! An IAM mutation is defined by what it is *not*: every IAM operation except the reads
//! (`Get*`, `List*`, `Generate*`, `Simulate*`). That is complete by construction — an IAM API
//! added next year is reported without a code change — where a list of mutating names (say 13
//! prefixes: Create, Delete, Put, Attach, …) silently misses `Tag*`, `Reset*`, `Resync*`, `Accept*`, …
//!
//! Failed calls (`errorCode` set) match too, in both paths: an attempted privilege escalation
//! is worth the alarm. [`classify`] marks them as attempts and ranks them lower.

pub mod allow;
pub mod catalogue;
pub mod patterns;
pub(crate) mod ruleset;
pub mod severity;
pub(crate) mod verdicts;

use crate::event::Record;
pub use allow::AllowRule;
pub use catalogue::{is_iam_mutation, is_tampering, CIS_4_4_FILTER_PATTERN};
pub(crate) use catalogue::{
    is_iam_mutation_name, is_tampering_name, IAM_EVENT_SOURCE, TAMPERING_EVENTS,
};
pub use patterns::{iam_metric_filter_pattern, tampering_metric_filter_pattern};
pub use ruleset::{FailedCalls, Ruleset};
pub use severity::Severity;

/// What kind of event a record of interest is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// A call that changes (or tried to change) IAM.
    IamChange,
    /// A call that blinds the monitoring: the trail, the metric filter, the alarm, the topic.
    Tampering,
}

impl Category {
    /// The category's word in messages, SNS attributes and `scan --json`: `iam-change` or
    /// `tampering`.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::IamChange => "iam-change",
            Category::Tampering => "tampering",
        }
    }
}

/// The catalogue's verdict on one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// IAM change or tampering.
    pub category: Category,
    /// How urgently a human should look.
    pub severity: Severity,
    /// errorCode set: an attempt, not a change
    pub attempt: bool,
    /// Why this severity, for humans (goes into the notification).
    pub reason: String,
}

/// The catalogue's verdict on a record; `None` for what is not of interest (reads, other
/// services).
///
/// A failed call (`errorCode`) is an *attempt*: it changed nothing, so it ranks **one level**
/// below the change it tried to make. One, not two: a denied attempt to attach
/// AdministratorAccess or to create someone else's key is the typical trace of a stolen
/// credential probing its limits, which still deserves HIGH attention, but below a real
/// privilege escalation.
pub(crate) fn classify(record: &Record) -> Option<Classification> {
    let category = if is_tampering(record) {
        Category::Tampering
    } else if is_iam_mutation(record) {
        Category::IamChange
    } else {
        return None;
    };
    let (severity, reason) = severity::of(record, category);
    let attempt = record.failed();
    let (severity, reason) = if attempt {
        let code = record.error_code.as_deref().unwrap_or("an error");
        (
            severity.lower(),
            format!("attempt, failed with {code} (one level below {severity}): {reason}"),
        )
    } else {
        (severity, reason)
    };
    Some(Classification {
        category,
        severity,
        attempt,
        reason,
    })
}

/// Records for the rules' tests.
#[cfg(test)]
pub(crate) mod testing {
    use serde_json::{json, Value};

    use super::IAM_EVENT_SOURCE;
    use crate::event::Record;

    /// A record of `source`/`name` with the given extra fields, as CloudTrail would write it.
    pub(crate) fn record(source: &str, name: &str, extra: Value) -> Record {
        let mut value = json!({
            "eventID": "e-1", "eventSource": source, "eventName": name,
            "recipientAccountId": "111122223333",
            "userIdentity": {"type": "IAMUser", "userName": "alice",
                "arn": "arn:aws:iam::111122223333:user/alice", "accountId": "111122223333"}
        });
        if let (Some(base), Value::Object(more)) = (value.as_object_mut(), extra) {
            base.extend(more);
        }
        Record::from_json(value).expect("test record")
    }

    pub(crate) fn iam(name: &str, params: Value) -> Record {
        record(
            IAM_EVENT_SOURCE,
            name,
            json!({ "requestParameters": params }),
        )
    }

    pub(crate) const ADMIN_DOC: &str =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

    pub(crate) fn session(role_path: &str, session_name: &str, account: &str) -> Record {
        record(
            IAM_EVENT_SOURCE,
            "TagRole",
            json!({"recipientAccountId": account, "userIdentity": {
                "type": "AssumedRole",
                "arn": format!("arn:aws:sts::{account}:assumed-role/ci/{session_name}"),
                "accountId": account,
                "sessionContext": {"sessionIssuer": {"type": "Role",
                    "arn": format!("arn:aws:iam::{account}:role/{role_path}ci"), "userName": "ci"}}}}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn classification_table() {
        use Category::*;
        use Severity::*;
        let admin_arn =
            json!({"userName": "bob", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"});
        let cases: Vec<(Record, Option<(Category, Severity)>)> = vec![
            (iam("GetUser", json!({})), None),
            (iam("ListRoles", json!({})), None),
            (iam("GenerateCredentialReport", json!({})), None),
            (iam("SimulatePrincipalPolicy", json!({})), None),
            (record("s3.amazonaws.com", "PutObject", json!({})), None),
            (record("sts.amazonaws.com", "AssumeRole", json!({})), None),
            // Not tampering: same name, another service.
            (
                record("iam.amazonaws.com", "StopLogging", json!({})),
                Some((IamChange, Medium)),
            ),
            (
                record("cloudtrail.amazonaws.com", "GetTrailStatus", json!({})),
                None,
            ),
            (
                iam("AttachUserPolicy", admin_arn.clone()),
                Some((IamChange, Critical)),
            ),
            (
                iam(
                    "AttachRolePolicy",
                    json!({"roleName": "r", "policyArn": "arn:aws:iam::123456789012:policy/team/IAMFullAccess"}),
                ),
                Some((IamChange, Critical)),
            ),
            (
                iam(
                    "AttachGroupPolicy",
                    json!({"groupName": "g", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
                ),
                Some((IamChange, High)),
            ),
            (
                iam(
                    "AttachGroupPolicy",
                    json!({"groupName": "g", "policyArn": "arn:aws:iam::aws:policy/NotAdministratorAccess"}),
                ),
                Some((IamChange, High)),
            ),
            (
                iam(
                    "PutRolePolicy",
                    json!({"roleName": "r", "policyDocument": ADMIN_DOC}),
                ),
                Some((IamChange, Critical)),
            ),
            (
                iam(
                    "PutUserPolicy",
                    json!({"userName": "u", "policyDocument": r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#}),
                ),
                Some((IamChange, High)),
            ),
            (
                iam("CreateAccessKey", json!({"userName": "bob"})),
                Some((IamChange, Critical)),
            ),
            (
                iam("CreateAccessKey", json!({"userName": "alice"})),
                Some((IamChange, Medium)),
            ),
            (iam("CreateAccessKey", json!({})), Some((IamChange, Medium))),
            (
                iam("CreateLoginProfile", json!({"userName": "bob"})),
                Some((IamChange, Critical)),
            ),
            (
                iam("UpdateLoginProfile", json!({"userName": "bob"})),
                Some((IamChange, Critical)),
            ),
            (
                iam("UpdateLoginProfile", json!({"userName": "alice"})),
                Some((IamChange, Medium)),
            ),
            (
                iam("UpdateAssumeRolePolicy", json!({"roleName": "r"})),
                Some((IamChange, Critical)),
            ),
            (
                iam("DeactivateMFADevice", json!({})),
                Some((IamChange, Critical)),
            ),
            (
                iam("DeleteVirtualMFADevice", json!({})),
                Some((IamChange, Critical)),
            ),
            (
                iam("CreateUser", json!({"userName": "eve"})),
                Some((IamChange, High)),
            ),
            (iam("CreateRole", json!({})), Some((IamChange, High))),
            (
                iam("CreatePolicyVersion", json!({})),
                Some((IamChange, High)),
            ),
            (
                iam("CreateOpenIDConnectProvider", json!({})),
                Some((IamChange, High)),
            ),
            (
                iam("AddClientIDToOpenIDConnectProvider", json!({})),
                Some((IamChange, High)),
            ),
            (
                iam("UpdateSAMLProvider", json!({})),
                Some((IamChange, High)),
            ),
            (iam("DeleteRole", json!({})), Some((IamChange, Medium))),
            (
                iam("CreateInstanceProfile", json!({})),
                Some((IamChange, Medium)),
            ),
            (iam("TagRole", json!({})), Some((IamChange, Low))),
            (
                iam("UploadSSHPublicKey", json!({})),
                Some((IamChange, High)),
            ),
            (
                iam("UploadServerCertificate", json!({})),
                Some((IamChange, Low)),
            ),
            (iam("UntagUser", json!({})), Some((IamChange, Low))),
            (iam("ResyncMFADevice", json!({})), Some((IamChange, Low))),
            // A future IAM API nobody listed yet: still a change.
            (iam("FrobnicateRole", json!({})), Some((IamChange, Medium))),
            (
                record("cloudtrail.amazonaws.com", "StopLogging", json!({})),
                Some((Tampering, Critical)),
            ),
            (
                record("cloudtrail.amazonaws.com", "DeleteTrail", json!({})),
                Some((Tampering, Critical)),
            ),
            (
                record("cloudtrail.amazonaws.com", "UpdateTrail", json!({})),
                Some((Tampering, High)),
            ),
            (
                record("cloudtrail.amazonaws.com", "PutEventSelectors", json!({})),
                Some((Tampering, High)),
            ),
            (
                record("logs.amazonaws.com", "DeleteMetricFilter", json!({})),
                Some((Tampering, Critical)),
            ),
            (
                record("logs.amazonaws.com", "DeleteLogGroup", json!({})),
                Some((Tampering, High)),
            ),
            (
                record("monitoring.amazonaws.com", "DeleteAlarms", json!({})),
                Some((Tampering, Critical)),
            ),
            (
                record("monitoring.amazonaws.com", "DisableAlarmActions", json!({})),
                Some((Tampering, High)),
            ),
            (
                record("sns.amazonaws.com", "DeleteTopic", json!({})),
                Some((Tampering, High)),
            ),
            (
                record("sns.amazonaws.com", "Unsubscribe", json!({})),
                Some((Tampering, High)),
            ),
        ];
        for (record, expected) in cases {
            let got = classify(&record).map(|c| (c.category, c.severity));
            assert_eq!(
                got, expected,
                "{} / {}",
                record.event_source, record.event_name
            );
            if let Some(c) = classify(&record) {
                assert!(!c.attempt);
                assert!(!c.reason.is_empty());
            }
        }
    }

    #[test]
    fn failed_calls_are_attempts_one_level_lower_and_still_match_the_pattern() {
        let failed = record(
            IAM_EVENT_SOURCE,
            "AttachUserPolicy",
            json!({"errorCode": "AccessDenied",
                   "requestParameters": {"userName": "alice",
                       "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}}),
        );
        assert!(is_iam_mutation(&failed));
        let c = classify(&failed).unwrap();
        assert!(c.attempt);
        assert_eq!(c.severity, Severity::High);
        assert!(c.reason.contains("AccessDenied"), "{}", c.reason);
        let tag = record(
            IAM_EVENT_SOURCE,
            "TagUser",
            json!({"errorCode": "NoSuchEntity"}),
        );
        assert_eq!(classify(&tag).unwrap().severity, Severity::Info);
    }

    /// The corpus as (line, parsed record); a record without eventID gets a placeholder, which
    /// no rule looks at, so that hand-edited records are classified too.
    fn corpus() -> Vec<(String, Option<Record>)> {
        crate::testdata::records_text()
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| (line.to_owned(), record_for_rules(line)))
            .collect()
    }

    fn record_for_rules(line: &str) -> Option<Record> {
        let mut value: Value = serde_json::from_str(line).ok()?;
        let object = value.as_object_mut()?;
        if !matches!(object.get("eventID"), Some(Value::String(id)) if !id.is_empty()) {
            object.insert("eventID".into(), json!("placeholder"));
        }
        Record::from_json(value).ok()
    }

    #[test]
    fn every_corpus_record_is_classified_and_the_counts_are_known() {
        let (mut mutations, mut reads, mut attempts, mut tampering, mut critical) = (0, 0, 0, 0, 0);
        let mut names = std::collections::BTreeSet::new();
        for (_, record) in corpus() {
            let Some(record) = record else { continue };
            let verdict = classify(&record);
            if record.event_source == IAM_EVENT_SOURCE {
                if is_iam_mutation(&record) {
                    mutations += 1;
                    names.insert(record.event_name.clone());
                    let verdict = verdict.as_ref().expect("a mutation is classified");
                    attempts += usize::from(verdict.attempt);
                    critical += usize::from(verdict.severity == Severity::Critical);
                } else {
                    reads += 1;
                    assert!(verdict.is_none());
                }
            }
            if is_tampering(&record) {
                tampering += 1;
                assert_eq!(verdict.unwrap().category, Category::Tampering);
            }
        }
        println!(
            "corpus: {mutations} IAM mutations ({} names, {attempts} attempts, {critical} critical), \
             {reads} IAM reads, {tampering} tampering",
            names.len()
        );
        // A counter that reads "Describe*" as a read gets 154 / 316: the hand-edited fake name
        // "DescribePolicy" (not an IAM API). Our rule is the catalogue's: every IAM event not
        // named Get*/List*/Generate*/Simulate* is a mutation, so that record is one too.
        assert!(names.contains("DescribePolicy"));
        assert_eq!((mutations, reads), (155, 315));
        assert_eq!(names.len(), 33);
        assert_eq!(attempts, 12);
        assert!(tampering > 0 && critical > 0);
    }
}
