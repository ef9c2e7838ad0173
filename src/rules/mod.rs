//! The one rule catalogue: which CloudTrail records are IAM changes, tampering with the
//! monitoring, IAM Identity Center or Organizations changes, root use or console sign-ins
//! without MFA ([`catalogue`]), how severe each is ([`severity`]), which ones an operator has
//! allowed ([`allow`]), and what the configuration lets through ([`ruleset`]).
//!
//! The daemon's matcher ([`is_iam_mutation`], [`catalogue::Group::matches`]) and the
//! CloudFormation metric filters ([`iam_metric_filter_pattern`], [`group_patterns`], in
//! [`patterns`]) are built from the same constants ([`catalogue::READ_PREFIXES`],
//! [`catalogue::GROUPS`]), so the fast path and the alarm path can never disagree about what is
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

use serde_json::Value;

use crate::analysis::policy;
use crate::aws::arn;
use crate::event::Record;
pub use allow::{AllowRule, DigestMode};
use catalogue::Rule;
pub use catalogue::{
    group, is_iam_mutation, is_tampering, Attribute, Group, LookupBy, Ours, Recorded,
    CIS_4_4_FILTER_PATTERN, GROUPS,
};
pub(crate) use catalogue::{may_match, IAM_EVENT_SOURCE};
pub use patterns::{group_patterns, iam_metric_filter_pattern};
pub use ruleset::{FailedCalls, Ruleset};
pub use severity::Severity;

/// What kind of event a record of interest is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// A call that changes (or tried to change) IAM.
    IamChange,
    /// A call that blinds the monitoring: ours (the trail, filters, alarms, topic, queue,
    /// bucket, key, stack) or the security services' (GuardDuty, Security Hub, Config, …).
    Tampering,
    /// A change to who can reach which account through IAM Identity Center.
    IdentityCenter,
    /// A change to the organization's policies, accounts or delegated administrators.
    Organizations,
    /// The root user at work (CIS 4.3).
    RootUse,
    /// A console sign-in without MFA (CIS 4.2).
    ConsoleSignIn,
}

impl Category {
    /// Every category, in the order [`classify`] prefers on a tie in severity.
    pub const ALL: [Category; 6] = [
        Category::Tampering,
        Category::IamChange,
        Category::IdentityCenter,
        Category::Organizations,
        Category::ConsoleSignIn,
        Category::RootUse,
    ];
}

impl Category {
    /// The category's word in messages, SNS attributes and `scan --json`: `iam-change` or
    /// `tampering`.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::IamChange => "iam-change",
            Category::Tampering => "tampering",
            Category::IdentityCenter => "identity-center",
            Category::Organizations => "organizations",
            Category::RootUse => "root-use",
            Category::ConsoleSignIn => "console-sign-in",
        }
    }

    /// The stack's metric that counts this category's filter patterns.
    pub fn metric(self) -> &'static str {
        use crate::stack::names::metric;
        match self {
            Category::IamChange => metric::IAM_CHANGES,
            Category::Tampering => metric::TAMPERING,
            Category::IdentityCenter => metric::IDENTITY_CENTER,
            Category::Organizations => metric::ORGANIZATIONS,
            Category::RootUse => metric::ROOT_USE,
            Category::ConsoleSignIn => metric::CONSOLE_SIGN_IN,
        }
    }

    /// The category whose patterns `metric` counts; IAM changes for any other metric (the CIS
    /// filter's counts a subset of them).
    pub fn of_metric(metric: Option<&str>) -> Category {
        Category::ALL
            .into_iter()
            .find(|category| Some(category.metric()) == metric)
            .unwrap_or(Category::IamChange)
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
/// services). A record that more than one category reports (the root user attaching a policy)
/// gets the most severe verdict, the earlier category of [`Category::ALL`] on a tie; `ours`
/// names our own monitoring, on which resource-specific tampering is CRITICAL.
///
/// A failed call (`errorCode`) is an *attempt*: it changed nothing, so it ranks **one level**
/// below the change it tried to make. One, not two: a denied attempt to attach
/// AdministratorAccess or to create someone else's key is the typical trace of a stolen
/// credential probing its limits, which still deserves HIGH attention, but below a real
/// privilege escalation.
pub(crate) fn classify(record: &Record, ours: &Ours) -> Option<Classification> {
    let mut best: Option<(Category, Severity, String)> = None;
    for category in Category::ALL {
        let verdict = match group(category) {
            None if is_iam_mutation(record) => Some(severity::of_iam_change(record)),
            None => None,
            Some(group) => group
                .rule_for(record)
                .map(|rule| of_rule(rule, record, ours)),
        };
        if let Some((severity, reason)) = verdict {
            if best.as_ref().is_none_or(|(_, best, _)| severity > *best) {
                best = Some((category, severity, reason));
            }
        }
    }
    let (category, severity, reason) = best?;
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

/// The severity of a listed call and why: CRITICAL when it names one of our own resources
/// or hands out administrator power through a permission set, else the rule's.
fn of_rule(rule: &Rule, record: &Record, ours: &Ours) -> (Severity, String) {
    if let Some(resource) = rule.ours.filter(|r| ours.named_in(*r, record)) {
        return (
            Severity::Critical,
            format!(
                "{} — {}: the monitoring itself",
                rule.reason,
                resource.describe()
            ),
        );
    }
    let params = &record.request_parameters;
    let admin = match record.event_name.as_str() {
        "AttachManagedPolicyToPermissionSet" => params
            .get("managedPolicyArn")
            .and_then(Value::as_str)
            .map(arn::last_segment)
            .filter(|name| severity::ADMIN_POLICIES.contains(name))
            .map(|name| {
                format!("an administrator policy ({name}) was attached to a permission set")
            }),
        "PutInlinePolicyToPermissionSet" => params
            .get("inlinePolicy")
            .filter(|document| policy::grants_everything(document))
            .map(|_| {
                "a permission set's inline policy allows every action on every resource".to_owned()
            }),
        _ => None,
    };
    match admin {
        Some(reason) => (Severity::Critical, reason),
        None => (rule.severity, rule.reason.to_owned()),
    }
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
            let got = classify(&record, &Default::default()).map(|c| (c.category, c.severity));
            assert_eq!(
                got, expected,
                "{} / {}",
                record.event_source, record.event_name
            );
            if let Some(c) = classify(&record, &Default::default()) {
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
        let c = classify(&failed, &Default::default()).unwrap();
        assert!(c.attempt);
        assert_eq!(c.severity, Severity::High);
        assert!(c.reason.contains("AccessDenied"), "{}", c.reason);
        let tag = record(
            IAM_EVENT_SOURCE,
            "TagUser",
            json!({"errorCode": "NoSuchEntity"}),
        );
        assert_eq!(
            classify(&tag, &Default::default()).unwrap().severity,
            Severity::Info
        );
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
            let verdict = classify(&record, &Default::default());
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
                assert_eq!(
                    classify(&record, &Ours::default()).unwrap().category,
                    Category::Tampering
                );
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

    /// How many corpus records each group's rules match, and the verdict's category on them:
    /// the corpus holds real GuardDuty, Config, Organizations, KMS, S3, flow-log, root and
    /// console sign-in records (tests/data/cloudtrail/SOURCES.md).
    #[test]
    fn every_group_matches_its_corpus_records() {
        let mut counts = std::collections::BTreeMap::new();
        for (_, record) in corpus() {
            let Some(record) = record else { continue };
            for group in GROUPS {
                if group.matches(&record) {
                    *counts.entry(group.category.as_str()).or_insert(0) += 1;
                    let verdict = classify(&record, &Ours::default()).expect("matched: reported");
                    assert!(verdict.severity >= severity::Severity::Info);
                }
            }
        }
        println!("corpus per group: {counts:?}");
        let expected: std::collections::BTreeMap<&str, usize> =
            EXPECTED_GROUP_COUNTS.into_iter().collect();
        assert_eq!(counts, expected);
    }

    const EXPECTED_GROUP_COUNTS: [(&str, usize); 4] = [
        ("console-sign-in", 12),
        ("organizations", 3),
        ("root-use", 41),
        ("tampering", 52),
    ];

    fn with(source: &str, name: &str, extra: Value) -> Record {
        record(source, name, extra)
    }

    fn root(source: &str, name: &str, extra: Value) -> Record {
        let mut extra = extra;
        extra["userIdentity"] = json!({"type": "Root", "arn": "arn:aws:iam::111122223333:root",
            "accountId": "111122223333", "principalId": "111122223333"});
        extra["eventType"] = json!("AwsApiCall");
        record(source, name, extra)
    }

    #[test]
    fn the_new_groups_rank_as_the_catalogue_says() {
        use Category::*;
        use Severity::*;
        let none = json!({});
        let params = |p: Value| json!({ "requestParameters": p });
        let cases: Vec<(Record, Option<(Category, Severity)>)> = vec![
            (
                with("guardduty.amazonaws.com", "DeleteDetector", none.clone()),
                Some((Tampering, Critical)),
            ),
            (
                with(
                    "guardduty.amazonaws.com",
                    "UpdateDetector",
                    params(json!({"detectorId": "d", "enable": false})),
                ),
                Some((Tampering, Critical)),
            ),
            (
                with(
                    "guardduty.amazonaws.com",
                    "UpdateDetector",
                    params(json!({"detectorId": "d", "enable": true})),
                ),
                None,
            ),
            (
                with(
                    "guardduty.amazonaws.com",
                    "CreateFilter",
                    params(json!({"action": "ARCHIVE"})),
                ),
                Some((Tampering, High)),
            ),
            (
                with(
                    "guardduty.amazonaws.com",
                    "CreateFilter",
                    params(json!({"action": "NOOP"})),
                ),
                None,
            ),
            (
                with("guardduty.amazonaws.com", "GetDetector", none.clone()),
                None,
            ),
            (
                with(
                    "config.amazonaws.com",
                    "StopConfigurationRecorder",
                    none.clone(),
                ),
                Some((Tampering, Critical)),
            ),
            (
                with(
                    "securityhub.amazonaws.com",
                    "DisableSecurityHub",
                    none.clone(),
                ),
                Some((Tampering, Critical)),
            ),
            (
                with("ec2.amazonaws.com", "DeleteFlowLogs", none.clone()),
                Some((Tampering, High)),
            ),
            (
                with(
                    "s3.amazonaws.com",
                    "PutBucketPolicy",
                    params(json!({"bucketName": "other"})),
                ),
                Some((Tampering, Low)),
            ),
            (
                with("sso.amazonaws.com", "CreateAccountAssignment", none.clone()),
                Some((IdentityCenter, High)),
            ),
            (
                with(
                    "sso.amazonaws.com",
                    "AttachManagedPolicyToPermissionSet",
                    params(
                        json!({"managedPolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
                    ),
                ),
                Some((IdentityCenter, Critical)),
            ),
            (
                with(
                    "sso.amazonaws.com",
                    "PutInlinePolicyToPermissionSet",
                    params(json!({"inlinePolicy": ADMIN_DOC})),
                ),
                Some((IdentityCenter, Critical)),
            ),
            (
                with("sso.amazonaws.com", "ListPermissionSets", none.clone()),
                None,
            ),
            (
                with(
                    "identitystore.amazonaws.com",
                    "CreateGroupMembership",
                    none.clone(),
                ),
                Some((IdentityCenter, High)),
            ),
            (
                with(
                    "organizations.amazonaws.com",
                    "AttachPolicy",
                    params(json!({"policyId": "p-1", "targetId": "ou-1"})),
                ),
                Some((Organizations, High)),
            ),
            (
                with(
                    "organizations.amazonaws.com",
                    "LeaveOrganization",
                    none.clone(),
                ),
                Some((Organizations, Critical)),
            ),
            (
                with(
                    "organizations.amazonaws.com",
                    "DescribeOrganization",
                    none.clone(),
                ),
                None,
            ),
            (
                root(
                    "signin.amazonaws.com",
                    "ConsoleLogin",
                    json!({"additionalEventData": {"MFAUsed": "No"}, "responseElements": {"ConsoleLogin": "Success"}}),
                ),
                Some((RootUse, Critical)),
            ),
            (
                root(
                    "signin.amazonaws.com",
                    "ConsoleLogin",
                    json!({"additionalEventData": {"MFAUsed": "Yes"}, "responseElements": {"ConsoleLogin": "Success"}}),
                ),
                Some((RootUse, High)),
            ),
            (
                root("iam.amazonaws.com", "CreateAccessKey", none.clone()),
                Some((RootUse, Critical)),
            ),
            (
                root("s3.amazonaws.com", "ListBuckets", none.clone()),
                Some((RootUse, High)),
            ),
            // The root user attaching AdministratorAccess: the IAM verdict is the more severe.
            (
                root(
                    "iam.amazonaws.com",
                    "AttachUserPolicy",
                    params(
                        json!({"userName": "bob", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
                    ),
                ),
                Some((IamChange, Critical)),
            ),
            (
                with(
                    "signin.amazonaws.com",
                    "ConsoleLogin",
                    json!({"additionalEventData": {"MFAUsed": "No"}, "responseElements": {"ConsoleLogin": "Success"}}),
                ),
                Some((ConsoleSignIn, Medium)),
            ),
            (
                with(
                    "signin.amazonaws.com",
                    "ConsoleLogin",
                    json!({"additionalEventData": {"MFAUsed": "Yes"}, "responseElements": {"ConsoleLogin": "Success"}}),
                ),
                None,
            ),
            (
                with(
                    "signin.amazonaws.com",
                    "ConsoleLogin",
                    json!({"additionalEventData": {"MFAUsed": "No"}, "responseElements": {"ConsoleLogin": "Failure"}}),
                ),
                None,
            ),
        ];
        for (record, expected) in cases {
            let got = classify(&record, &Ours::default()).map(|c| (c.category, c.severity));
            assert_eq!(
                got, expected,
                "{} / {} {}",
                record.event_source, record.event_name, record.raw
            );
            let kind = record.identity.kind.as_deref();
            if got.is_some() {
                assert!(
                    may_match(&record.event_source, &record.event_name, kind),
                    "scan's prefilter"
                );
            }
        }
        // An AWS service acting as root (invokedBy) is not the root user's use.
        let mut by_service = root("s3.amazonaws.com", "PutObject", json!({}));
        by_service.raw["userIdentity"]["invokedBy"] = json!("cloudtrail.amazonaws.com");
        assert_eq!(classify(&by_service, &Ours::default()), None);
    }

    #[test]
    fn tampering_with_our_own_resources_is_critical_and_elsewhere_lower() {
        let ours = Ours {
            stack_name: "iamwatchd".into(),
            trail_bucket: Some("iamwatchd-trail".into()),
            trail_key: Some("arn:aws:kms:us-east-1:111122223333:key/k-1".into()),
            log_group: Some("iamwatchd-trail-logs".into()),
            queue_url: Some("https://sqs.us-east-1.amazonaws.com/111122223333/iamwatchd-q".into()),
        };
        let cases = [
            (
                "s3.amazonaws.com",
                "DeleteBucket",
                json!({"bucketName": "iamwatchd-trail"}),
                json!({"bucketName": "photos"}),
            ),
            (
                "s3.amazonaws.com",
                "PutBucketLifecycle",
                json!({"bucketName": "iamwatchd-trail"}),
                json!({"bucketName": "photos"}),
            ),
            (
                "kms.amazonaws.com",
                "ScheduleKeyDeletion",
                json!({"keyId": "k-1"}),
                json!({"keyId": "k-2"}),
            ),
            (
                "kms.amazonaws.com",
                "DisableKey",
                json!({"keyId": "arn:aws:kms:us-east-1:111122223333:key/k-1"}),
                json!({"keyId": "k-2"}),
            ),
            (
                "logs.amazonaws.com",
                "PutRetentionPolicy",
                json!({"logGroupName": "iamwatchd-trail-logs", "retentionInDays": 1}),
                json!({"logGroupName": "/aws/lambda/x", "retentionInDays": 1}),
            ),
            (
                "sqs.amazonaws.com",
                "PurgeQueue",
                json!({"queueUrl": "https://sqs.us-east-1.amazonaws.com/111122223333/iamwatchd-q"}),
                json!({"queueUrl": "https://sqs.us-east-1.amazonaws.com/111122223333/jobs"}),
            ),
            (
                "cloudformation.amazonaws.com",
                "DeleteStack",
                json!({"stackName": "iamwatchd"}),
                json!({"stackName": "web"}),
            ),
            (
                "cloudformation.amazonaws.com",
                "UpdateStack",
                json!({"stackName": "arn:aws:cloudformation:us-east-1:111122223333:stack/iamwatchd/abc"}),
                json!({"stackName": "web"}),
            ),
            (
                "monitoring.amazonaws.com",
                "SetAlarmState",
                json!({"alarmName": "iamwatchd-iam-changes", "stateValue": "OK"}),
                json!({"alarmName": "web-5xx", "stateValue": "OK"}),
            ),
            (
                "monitoring.amazonaws.com",
                "PutMetricAlarm",
                json!({"alarmName": "iamwatchd-root-use"}),
                json!({"alarmName": "web-5xx"}),
            ),
        ];
        for (source, name, on_ours, elsewhere) in cases {
            let mine = classify(
                &with(source, name, json!({ "requestParameters": on_ours })),
                &ours,
            )
            .unwrap();
            assert_eq!(
                (mine.category, mine.severity),
                (Category::Tampering, Severity::Critical),
                "{name}"
            );
            assert!(
                mine.reason.contains("the monitoring itself"),
                "{}",
                mine.reason
            );
            let theirs = classify(
                &with(source, name, json!({ "requestParameters": elsewhere })),
                &ours,
            )
            .unwrap();
            assert!(
                theirs.severity < Severity::High,
                "{name} elsewhere: {:?}",
                theirs.severity
            );
        }
    }
}
