//! The plain sentence every message opens with ("alice attached AdministratorAccess to user
//! bob: bob can now do anything"), and the analysis of what a change grants as a section and
//! as the message's bounded, one-line-per-entry data.

use serde_json::Value;

use super::safe::{cut_bytes, one_line, part, single};
use super::sections::{Field, Section};
use crate::analysis::cross_check::CrossCheck;
use crate::analysis::{Analysis, Verdict, VerdictKind};
use crate::aws::arn;
use crate::notify::Alert;

/// Longest analysis line kept, in bytes.
const LINE_MAX_BYTES: usize = 1024;

fn param<'a>(params: &'a Value, key: &str) -> Option<&'a str> {
    params.get(key)?.as_str().filter(|s| !s.is_empty())
}

/// `user bob`, `role app`, `group ops`: what the call acted on, when it names an entity.
fn entity(params: &Value) -> Option<(String, String)> {
    [
        ("userName", "user"),
        ("roleName", "role"),
        ("groupName", "group"),
    ]
    .iter()
    .find_map(|(key, word)| {
        param(params, key).map(|name| (format!("{word} {}", part(name)), part(name)))
    })
}

/// The verb of each event, past and bare ("attached", "attach"), and what follows it.
fn phrase(alert: &Alert) -> (String, String) {
    let record = &alert.record;
    let p = &record.request_parameters;
    let policy = param(p, "policyArn")
        .or_else(|| param(p, "permissionsBoundary"))
        .map(|a| part(arn::last_segment(a)))
        .or_else(|| param(p, "policyName").map(part))
        .unwrap_or_else(|| "a policy".to_owned());
    let (on, _) = entity(p).unwrap_or_else(|| ("themselves".to_owned(), String::new()));
    let inline = param(p, "policyName")
        .map(part)
        .unwrap_or_else(|| "an inline policy".into());
    let name = record.event_name.as_str();
    let (past, bare, rest) = match name {
        n if n.starts_with("Attach") => ("attached", "attach", format!("{policy} to {on}")),
        n if n.starts_with("Detach") => ("detached", "detach", format!("{policy} from {on}")),
        n if n.ends_with("PermissionsBoundary") && n.starts_with("Put") => (
            "set",
            "set",
            format!("the permissions boundary {policy} on {on}"),
        ),
        n if n.ends_with("PermissionsBoundary") && n.starts_with("Delete") => (
            "removed",
            "remove",
            format!("the permissions boundary of {on}"),
        ),
        "PutUserPolicy" | "PutGroupPolicy" | "PutRolePolicy" => {
            ("set", "set", format!("the inline policy {inline} on {on}"))
        }
        "DeleteUserPolicy" | "DeleteGroupPolicy" | "DeleteRolePolicy" => (
            "deleted",
            "delete",
            format!("the inline policy {inline} of {on}"),
        ),
        "CreatePolicy" => ("created", "create", format!("the managed policy {inline}")),
        "CreatePolicyVersion" => {
            let default = crate::analysis::flag(p, "setAsDefault");
            let tail = if default {
                " and made it the default"
            } else {
                ""
            };
            (
                "created",
                "create",
                format!("a new version of {policy}{tail}"),
            )
        }
        "SetDefaultPolicyVersion" => {
            let v = param(p, "versionId").map(part).unwrap_or_default();
            (
                "made",
                "make",
                format!("version {v} the default of {policy}"),
            )
        }
        "UpdateAssumeRolePolicy" => ("changed", "change", format!("who may assume {on}")),
        "CreateAccessKey" => ("created", "create", format!("an access key for {on}")),
        "CreateLoginProfile" => ("gave", "give", format!("{on} a console password")),
        "UpdateLoginProfile" => ("changed", "change", format!("the console password of {on}")),
        "AddUserToGroup" => {
            let group = param(p, "groupName").map(part).unwrap_or_default();
            let user = param(p, "userName").map(part).unwrap_or_default();
            ("added", "add", format!("user {user} to group {group}"))
        }
        n if n.starts_with("Tag") => ("added", "add", format!("a tag to {on}")),
        n if n.starts_with("Untag") => ("removed", "remove", format!("a tag from {on}")),
        n if n.starts_with("Create") || n.starts_with("Delete") => {
            let (past, bare) = if n.starts_with("Create") {
                ("created", "create")
            } else {
                ("deleted", "delete")
            };
            let what = entity(p)
                .map(|(phrase, _)| phrase)
                .or_else(|| record.target().map(|t| part(&t)))
                .unwrap_or_else(|| part(n));
            (past, bare, what)
        }
        n => {
            let target = record
                .target()
                .map(|t| format!(" on {}", part(&t)))
                .unwrap_or_default();
            ("called", "call", format!("{}{target}", part(n)))
        }
    };
    (format!("{past} {rest}"), format!("{bare} {rest}"))
}

/// What the strongest verdict means for the holder, after a colon.
fn consequence(alert: &Alert, verdict: Option<&Verdict>, analysis: Option<&Analysis>) -> String {
    let holder = entity(&alert.record.request_parameters)
        .map(|(_, name)| name)
        .unwrap_or_else(|| "whoever holds it".to_owned());
    match verdict.map(|v| v.kind) {
        Some(VerdictKind::AdminEquivalent) => format!(": {holder} can now do anything"),
        Some(VerdictKind::PrivilegeEscalation) => {
            format!(": {holder} can now give itself more permissions (privilege escalation)")
        }
        Some(VerdictKind::TrustWidened) => ": more principals can now assume it".to_owned(),
        Some(VerdictKind::BoundaryRemoved) => {
            format!(": {holder}'s policies now apply without a cap")
        }
        Some(VerdictKind::MfaConditionRemoved) => {
            ": some permissions no longer need MFA".to_owned()
        }
        None if analysis.is_some_and(Analysis::removal_only) => {
            format!(": {holder} lost permissions and gained none")
        }
        None => String::new(),
    }
}

/// The sentence a person reads first.
pub(crate) fn sentence(alert: &Alert) -> String {
    let record = &alert.record;
    let actor = part(&record.identity.display_name());
    let (past, bare) = phrase(alert);
    let text = if alert.classification.attempt {
        let code = record.error_code.as_deref().unwrap_or("an error");
        format!("{actor}'s attempt to {bare} failed ({})", part(code))
    } else {
        let analysis = alert.analysis.as_ref();
        let verdict = analysis.and_then(Analysis::strongest);
        format!("{actor} {past}{}", consequence(alert, verdict, analysis))
    };
    single(&text)
}

fn bounded(line: &str) -> String {
    cut_bytes(&one_line(line), LINE_MAX_BYTES)
}

/// The analysis with every string on one line and bounded: what the message carries.
pub(crate) fn safe_analysis(analysis: &Analysis) -> Analysis {
    Analysis {
        added: analysis.added.iter().map(|l| bounded(l)).collect(),
        removed: analysis.removed.iter().map(|l| bounded(l)).collect(),
        verdicts: analysis
            .verdicts
            .iter()
            .map(|v| Verdict {
                kind: v.kind,
                reason: bounded(&v.reason),
                source: bounded(&v.source),
            })
            .collect(),
        notes: analysis.notes.iter().map(|l| bounded(l)).collect(),
        previous_known: analysis.previous_known,
        access_analyzer: analysis.access_analyzer.as_ref().map(|c| CrossCheck {
            check: bounded(&c.check),
            result: bounded(&c.result),
            message: bounded(&c.message),
        }),
    }
}

/// The "Analysis" section: verdicts, then the lines added and removed, then the notes.
pub(crate) fn analysis_section(analysis: &Analysis) -> Section {
    let mut fields: Vec<Field> = analysis
        .verdicts
        .iter()
        .map(|v| {
            Field::new(
                format!("Verdict: {}", v.kind.as_str()),
                format!("{} (source: {})", v.reason, v.source),
            )
        })
        .collect();
    if analysis.verdicts.is_empty() {
        fields.push(Field::new(
            "Verdict",
            "none: nothing known to be dangerous was granted",
        ));
    }
    for (label, lines) in [("Added", &analysis.added), ("Removed", &analysis.removed)] {
        if !lines.is_empty() {
            fields.push(Field::block(label, &lines.join("\n")));
        }
    }
    if let Some(check) = &analysis.access_analyzer {
        // Beside ours, never instead: the verdicts above are the daemon's own.
        fields.push(Field::new(
            format!("IAM Access Analyzer {}", check.check),
            if check.message.is_empty() {
                check.result.clone()
            } else {
                format!("{}: {}", check.result, check.message)
            },
        ));
    }
    for note in &analysis.notes {
        fields.push(Field::new("Note", note));
    }
    Section {
        title: "Analysis".to_owned(),
        fields,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;

    use crate::event::{Record, SeenBy};
    use crate::notify::render::testing::assert_safe;
    use crate::notify::Alert;
    use crate::rules::{Classification, Severity};

    fn alert(name: &str, params: serde_json::Value, error: Option<&str>) -> Alert {
        let mut value = json!({
            "eventID": "s-1", "eventName": name, "eventSource": "iam.amazonaws.com",
            "awsRegion": "us-east-1", "recipientAccountId": "111122223333",
            "eventTime": "2026-11-25T12:00:00Z",
            "userIdentity": {"type": "IAMUser", "userName": "alice",
                "arn": "arn:aws:iam::111122223333:user/alice"},
            "requestParameters": params,
        });
        if let Some(code) = error {
            value["errorCode"] = code.into();
        }
        let record = Record::from_json(value).unwrap();
        let analysis = crate::analysis::from_record(&record);
        let classification = crate::rules::Ruleset::default()
            .judge_with(&record, analysis.as_ref())
            .unwrap_or(Classification {
                category: crate::rules::Category::IamChange,
                severity: Severity::Low,
                attempt: error.is_some(),
                reason: "r".into(),
            });
        Alert {
            record,
            classification,
            detected_at: Utc::now(),
            seen_by: SeenBy::Poller,
            analysis,
            account_name: None,
        }
    }

    #[test]
    fn every_message_opens_with_one_plain_sentence() {
        let admin = json!({"roleName": "deploy", "policyName": "p",
            "policyDocument": "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}"});
        let cases = [
            (
                alert("PutRolePolicy", admin, None),
                "alice set the inline policy p on role deploy: deploy can now do anything",
            ),
            (
                alert("TagRole", json!({"roleName": "app"}), None),
                "alice added a tag to role app",
            ),
            (
                alert(
                    "CreateAccessKey",
                    json!({"userName": "root"}),
                    Some("AccessDenied"),
                ),
                "alice's attempt to create an access key for user root failed (AccessDenied)",
            ),
            (
                alert(
                    "AttachUserPolicy",
                    json!({"userName": "bob", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
                    None,
                ),
                "alice attached ReadOnlyAccess to user bob",
            ),
            (
                alert("CreateUser", json!({"userName": "carol"}), None),
                "alice created user carol",
            ),
            (
                alert("UpdateAccountPasswordPolicy", json!({}), None),
                "alice called UpdateAccountPasswordPolicy",
            ),
        ];
        for (alert, sentence) in cases {
            let message = alert.render();
            assert_eq!(message.summary, sentence);
            assert!(message.text.starts_with(sentence), "{}", message.text);
            assert_eq!(message.sections[0].fields[0].value, sentence);
            assert_safe(&message);
        }
    }

    #[test]
    fn the_subject_names_the_strongest_verdict_and_the_message_carries_the_analysis() {
        let admin = json!({"roleName": "deploy", "policyName": "p",
            "policyDocument": "%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22iam%3A%2A%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D"});
        let message = alert("PutRolePolicy", admin, None).render();
        assert!(
            message.subject.starts_with(
                "[iamwatchd] CRITICAL admin-equivalent: PutRolePolicy deploy by alice"
            ),
            "{}",
            message.subject
        );
        let analysis = message.analysis.as_ref().unwrap();
        assert_eq!(analysis.added, ["+ Allow iam:* on *"]);
        assert!(
            analysis
                .notes
                .iter()
                .any(|n| n.contains("previous version unknown")),
            "{analysis:?}"
        );
        assert_eq!(message.sections[1].title, "Analysis");
        assert!(
            message
                .text
                .contains("Verdict: admin-equivalent: Allow iam:* on *"),
            "{}",
            message.text
        );
        let payload = crate::notify::webhook::payload(&message);
        assert_eq!(
            payload["data"]["analysis"]["verdicts"][0]["kind"],
            "admin-equivalent"
        );
        assert_eq!(
            payload["data"]["analysis"]["added"][0],
            "+ Allow iam:* on *"
        );
        let stored: crate::notify::Message =
            serde_json::from_str(&serde_json::to_string(&message).unwrap()).unwrap();
        assert_eq!(stored, message);
    }
}
