//! What an IAM change means: policy documents read by one parser ([`policy`]), normalised
//! ([`document`]), compared before and after ([`compare`]) into the grants added and removed
//! and the verdicts on them (`admin-equivalent`, `privilege-escalation` from the table in
//! [`escalation`], `trust-widened`, `boundary-removed`, `mfa-condition-removed`).
//!
//! The analysis itself is pure: [`plan`] says, for one record, which documents to compare and
//! where each comes from (the request, the store's snapshot of an inline or trust policy, a
//! managed policy version read from IAM); the pipeline fetches them within its budget
//! ([`lookup`] for IAM) and [`Plan::analyse`] compares them. A side that could not be fetched
//! is "previous version unknown", never a lost finding.

pub(crate) mod compare;
pub mod config;
pub mod cross_check;
pub(crate) mod document;
pub(crate) mod escalation;
pub(crate) mod lookup;
pub mod policy;
pub(crate) mod seed;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::Record;
pub(crate) use compare::Side;

/// What kind of document a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A permissions policy (inline or managed).
    Identity,
    /// A role's trust policy: who may assume it.
    Trust,
    /// A permissions boundary: the most an entity's policies can grant.
    Boundary,
}

/// The kinds of verdict, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerdictKind {
    /// The new grants make the holder an administrator.
    AdminEquivalent,
    /// The new grants match a known privilege-escalation path.
    PrivilegeEscalation,
    /// A trust policy admits anyone, another account, or an unscoped federated provider.
    TrustWidened,
    /// A permissions boundary was removed.
    BoundaryRemoved,
    /// A grant no longer requires MFA.
    MfaConditionRemoved,
}

impl VerdictKind {
    /// The kind's name in messages and JSON: `admin-equivalent`, …
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictKind::AdminEquivalent => "admin-equivalent",
            VerdictKind::PrivilegeEscalation => "privilege-escalation",
            VerdictKind::TrustWidened => "trust-widened",
            VerdictKind::BoundaryRemoved => "boundary-removed",
            VerdictKind::MfaConditionRemoved => "mfa-condition-removed",
        }
    }
}

/// One verdict: its kind, a one-line reason, and the public source the rule rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Which verdict.
    pub kind: VerdictKind,
    /// Why, in one line.
    pub reason: String,
    /// Where the rule comes from.
    pub source: String,
}

/// What a change grants: the grant lines added and removed, the verdicts, and notes (an
/// unknown previous version, an unreadable document). Serde data: it travels in the message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Analysis {
    /// `+ Allow iam:PassRole on *`, `~ Condition changed on sts:AssumeRole`, …
    pub added: Vec<String>,
    /// `- Allow s3:GetObject on arn:aws:s3:::logs/*`, …
    pub removed: Vec<String>,
    /// The verdicts, strongest first.
    pub verdicts: Vec<Verdict>,
    /// What limits the analysis: `previous version unknown (…)`, `unreadable policy: …`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Whether the previous version was known (so `removed` is complete).
    #[serde(default)]
    pub previous_known: bool,
    /// IAM Access Analyzer's answer, when `analysis.access_analyzer` asks for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_analyzer: Option<cross_check::CrossCheck>,
}

impl Analysis {
    /// The strongest verdict, if any.
    pub fn strongest(&self) -> Option<&Verdict> {
        self.verdicts.iter().min_by_key(|v| v.kind)
    }

    /// Whether the change only took permissions away (the previous version known, nothing
    /// added or changed, no verdict).
    pub fn removal_only(&self) -> bool {
        self.previous_known
            && self.added.is_empty()
            && !self.removed.is_empty()
            && self.verdicts.is_empty()
    }
}

/// A stored snapshot's key: an inline policy (`user-policy`, `group-policy`, `role-policy`,
/// entity and policy name), a role's trust policy (`trust`), an entity's permissions
/// boundary (`boundary`, the document is the policy ARN) or a managed policy's default version
/// (`managed-default`, the document is the version id), per account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SnapshotKey {
    pub account: String,
    pub kind: &'static str,
    pub entity: String,
    pub name: String,
}

/// Which version of a managed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Version {
    /// The current default version (`GetPolicy`).
    Default,
    /// This version id.
    Id(String),
    /// The default version before this change (the store's `managed-default` snapshot).
    PreviousDefault,
}

/// Where one side's document comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// No document (a new policy, a deleted one).
    Nothing,
    /// In the request.
    Request(Value),
    /// The store's snapshot.
    Snapshot(SnapshotKey),
    /// A managed policy version, from IAM.
    Managed { arn: String, version: Version },
    /// The managed policy the entity's boundary snapshot names, from IAM.
    BoundaryOf(SnapshotKey),
}

/// A change to the store's snapshots that a successful call makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Update {
    /// The key's document is now this (JSON text, an ARN or a version id).
    Put(SnapshotKey, String),
    /// The key no longer exists.
    Delete(SnapshotKey),
}

/// What to compare for one record, and how it changes the snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub kind: Kind,
    pub before: Source,
    pub after: Source,
    /// Applied only when the call succeeded.
    pub updates: Vec<Update>,
    /// The account the policy belongs to.
    pub account: String,
    /// `Delete*PermissionsBoundary`.
    pub boundary_removed: bool,
    /// A fact about the change worth saying (a version that is not the default).
    pub note: Option<String>,
}

/// A boolean request parameter, as CloudTrail writes it (`true`) or as a string (`"true"`).
pub(crate) fn flag(params: &Value, key: &str) -> bool {
    match params.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn text(params: &Value, key: &str) -> Option<String> {
    params
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The document in the request as JSON text for the store (the one parser; the raw text when
/// it is unreadable, so the next comparison says so).
fn document_text(value: &Value) -> String {
    match policy::parse(value) {
        Some(document) => document.to_string(),
        None => value
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| value.to_string()),
    }
}

/// What to compare for `record`; `None` for events that carry no policy.
pub(crate) fn plan(record: &Record) -> Option<Plan> {
    let params = &record.request_parameters;
    let account = record.account().unwrap_or("unknown").to_owned();
    let key = |kind: &'static str, entity: String, name: String| SnapshotKey {
        account: account.clone(),
        kind,
        entity,
        name,
    };
    let inline = |entity_key: &str, kind: &'static str| -> Option<SnapshotKey> {
        Some(key(
            kind,
            text(params, entity_key)?,
            text(params, "policyName")?,
        ))
    };
    let entity_kind = |name: &str| -> Option<(&'static str, &'static str, &'static str)> {
        if name.contains("User") {
            Some(("userName", "user-policy", "user"))
        } else if name.contains("Group") {
            Some(("groupName", "group-policy", "group"))
        } else if name.contains("Role") {
            Some(("roleName", "role-policy", "role"))
        } else {
            None
        }
    };
    let name = record.event_name.as_str();
    let mut plan = Plan {
        kind: Kind::Identity,
        before: Source::Nothing,
        after: Source::Nothing,
        updates: Vec::new(),
        account: account.clone(),
        boundary_removed: false,
        note: None,
    };
    match name {
        "PutUserPolicy" | "PutGroupPolicy" | "PutRolePolicy" => {
            let (entity, kind, _) = entity_kind(name)?;
            let k = inline(entity, kind)?;
            let document = params.get("policyDocument")?.clone();
            plan.updates
                .push(Update::Put(k.clone(), document_text(&document)));
            plan.before = Source::Snapshot(k);
            plan.after = Source::Request(document);
        }
        "DeleteUserPolicy" | "DeleteGroupPolicy" | "DeleteRolePolicy" => {
            let (entity, kind, _) = entity_kind(name)?;
            let k = inline(entity, kind)?;
            plan.updates.push(Update::Delete(k.clone()));
            plan.before = Source::Snapshot(k);
        }
        "CreateRole" | "UpdateAssumeRolePolicy" => {
            let field = if name == "CreateRole" {
                "assumeRolePolicyDocument"
            } else {
                "policyDocument"
            };
            let document = params.get(field)?.clone();
            let k = key("trust", text(params, "roleName")?, String::new());
            plan.kind = Kind::Trust;
            plan.updates
                .push(Update::Put(k.clone(), document_text(&document)));
            if name == "UpdateAssumeRolePolicy" {
                plan.before = Source::Snapshot(k);
            }
            plan.after = Source::Request(document);
        }
        "CreatePolicy" => {
            plan.after = Source::Request(params.get("policyDocument")?.clone());
            let arn = record
                .response_elements
                .pointer("/policy/arn")
                .and_then(Value::as_str);
            let version = record
                .response_elements
                .pointer("/policy/defaultVersionId")
                .and_then(Value::as_str)
                .unwrap_or("v1");
            if let Some(arn) = arn {
                plan.updates.push(Update::Put(
                    key("managed-default", arn.to_owned(), String::new()),
                    version.to_owned(),
                ));
            }
            plan.note = Some("a new managed policy grants nothing until it is attached".to_owned());
        }
        "CreatePolicyVersion" => {
            let arn = text(params, "policyArn")?;
            plan.after = Source::Request(params.get("policyDocument")?.clone());
            let default = flag(params, "setAsDefault");
            if default {
                plan.before = Source::Managed {
                    arn: arn.clone(),
                    version: Version::PreviousDefault,
                };
                if let Some(id) = record
                    .response_elements
                    .pointer("/policyVersion/versionId")
                    .and_then(Value::as_str)
                {
                    plan.updates.push(Update::Put(
                        key("managed-default", arn, String::new()),
                        id.to_owned(),
                    ));
                }
            } else {
                plan.before = Source::Managed {
                    arn,
                    version: Version::Default,
                };
                plan.note = Some(
                    "the new version is not the default: it grants this only once it is made the default"
                        .to_owned(),
                );
            }
        }
        "SetDefaultPolicyVersion" => {
            let arn = text(params, "policyArn")?;
            let id = text(params, "versionId")?;
            plan.before = Source::Managed {
                arn: arn.clone(),
                version: Version::PreviousDefault,
            };
            plan.after = Source::Managed {
                arn: arn.clone(),
                version: Version::Id(id.clone()),
            };
            plan.updates
                .push(Update::Put(key("managed-default", arn, String::new()), id));
        }
        "AttachUserPolicy" | "AttachGroupPolicy" | "AttachRolePolicy" => {
            plan.after = Source::Managed {
                arn: text(params, "policyArn")?,
                version: Version::Default,
            };
        }
        "DetachUserPolicy" | "DetachGroupPolicy" | "DetachRolePolicy" => {
            plan.before = Source::Managed {
                arn: text(params, "policyArn")?,
                version: Version::Default,
            };
        }
        "PutUserPermissionsBoundary" | "PutRolePermissionsBoundary" => {
            let (entity, _, word) = entity_kind(name)?;
            let arn = text(params, "permissionsBoundary")?;
            let k = key(
                "boundary",
                format!("{word}/{}", text(params, entity)?),
                String::new(),
            );
            plan.kind = Kind::Boundary;
            plan.before = Source::BoundaryOf(k.clone());
            plan.after = Source::Managed {
                arn: arn.clone(),
                version: Version::Default,
            };
            plan.updates.push(Update::Put(k, arn));
        }
        "DeleteUserPermissionsBoundary" | "DeleteRolePermissionsBoundary" => {
            let (entity, _, word) = entity_kind(name)?;
            let k = key(
                "boundary",
                format!("{word}/{}", text(params, entity)?),
                String::new(),
            );
            plan.kind = Kind::Boundary;
            plan.before = Source::BoundaryOf(k.clone());
            plan.updates.push(Update::Delete(k));
            plan.boundary_removed = true;
        }
        _ => return None,
    }
    Some(plan)
}

impl Plan {
    /// Compares the two sides as fetched.
    pub(crate) fn analyse(&self, before: &Side, after: &Side) -> Analysis {
        let own = (self.account != "unknown").then_some(self.account.as_str());
        let mut analysis = compare::compare(self.kind, before, after, own);
        if self.boundary_removed {
            analysis.verdicts.insert(
                0,
                Verdict {
                    kind: VerdictKind::BoundaryRemoved,
                    reason: "the permissions boundary was removed: the entity's policies now apply in full".to_owned(),
                    source: "AWS IAM User Guide, \"Permissions boundaries for IAM entities\"".to_owned(),
                },
            );
        }
        if let Some(note) = &self.note {
            analysis.notes.push(note.clone());
        }
        analysis.verdicts.sort_by_key(|v| v.kind);
        analysis
    }
}

/// The analysis of `record` from the documents it carries alone (for `iamwatchd scan`,
/// which reads no snapshots and no IAM): the other sides are "unknown".
pub(crate) fn from_record(record: &Record) -> Option<Analysis> {
    let plan = plan(record)?;
    let side = |source: &Source| match source {
        Source::Nothing => Side::Nothing,
        Source::Request(value) => side_of(value),
        _ => Side::Unknown("`iamwatchd scan` reads no stored snapshots or IAM versions".to_owned()),
    };
    Some(plan.analyse(&side(&plan.before), &side(&plan.after)))
}

/// The account in an ARN (`arn:aws:iam::111122223333:role/x` → `111122223333`).
pub(crate) fn account_in_arn(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// A side read from a document held in the request or the store.
pub(crate) fn side_of(value: &Value) -> Side {
    Side::Document(document::read(value).map_err(|e| e.0))
}
