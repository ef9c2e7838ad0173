//! How severe a change is: the severity levels, the table that ranks each event name, and the
//! escalations that need the request's parameters to decide.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use serde_json::Value;

use super::allow::glob_matches;
use crate::analysis::policy;
use crate::aws::arn;
use crate::event::Record;

/// How urgently a human should look. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Only a failed attempt at a LOW change ranks this low.
    Info,
    /// Labels and housekeeping that grant nothing (tags, a user's own password change).
    Low,
    /// Other changes to permissions or credentials (deletions, a user's own access key).
    Medium,
    /// A new principal, a new way in, or a policy that can grant anything.
    High,
    /// Power over the account gained or handed out, or the monitoring switched off.
    Critical,
}

impl Severity {
    const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The name used in subjects, SNS message attributes and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }

    /// One level lower, `Info` stays `Info`.
    pub fn lower(self) -> Severity {
        match self {
            Severity::Critical => Severity::High,
            Severity::High => Severity::Medium,
            Severity::Medium => Severity::Low,
            Severity::Low | Severity::Info => Severity::Info,
        }
    }
}

/// The lowest level: a `min_severity` left unset reports everything.
impl Default for Severity {
    fn default() -> Severity {
        Severity::Info
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity name that is not one of INFO, LOW, MEDIUM, HIGH, CRITICAL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?}: use one of INFO, LOW, MEDIUM, HIGH, CRITICAL (any case)")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    /// Case-insensitive, so configuration may say `critical` or `CRITICAL`.
    fn from_str(text: &str) -> Result<Severity, UnknownSeverity> {
        Severity::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| UnknownSeverity(text.to_owned()))
    }
}

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The severity table of IAM changes: the first row whose event-name glob matches decides,
/// unless one of the escalations in [`escalation`] (which need the request parameters) applies
/// first. Rows are checked only for records already known to be IAM mutations; the listed
/// calls of the other categories carry their severity in their
/// [`Rule`](super::catalogue::Rule).
///
/// The reasoning, in short: CRITICAL = the caller gained or handed out power over the account,
/// or switched the monitoring off; HIGH = a new principal, a new way in, or a policy that can
/// grant anything; MEDIUM = other changes to permissions or credentials; LOW = labels and
/// housekeeping that grant nothing.
#[rustfmt::skip]
const SEVERITY_TABLE: &[(&str, Severity, &str)] = &[
    // Trust and MFA.
    ("UpdateAssumeRolePolicy", Severity::Critical, "a role's trust policy changed: who can assume it"),
    ("DeactivateMFADevice", Severity::Critical, "an MFA device was deactivated"),
    ("DeleteVirtualMFADevice", Severity::Critical, "a virtual MFA device was deleted"),
    // Permissions (escalations to CRITICAL are decided from the request, see `escalation`).
    ("Attach*Policy", Severity::High, "a managed policy was attached: new permissions"),
    ("Put*Policy", Severity::High, "an inline policy was set: new permissions"),
    ("CreatePolicyVersion", Severity::High, "a new policy version can change every holder's permissions"),
    ("SetDefaultPolicyVersion", Severity::High, "another policy version became active"),
    ("AddUserToGroup", Severity::High, "a user gained the group's permissions"),
    ("Delete*PermissionsBoundary", Severity::High, "a permissions boundary was removed"),
    ("Put*PermissionsBoundary", Severity::Medium, "a permissions boundary was set"),
    // New principals and new ways in.
    ("CreateUser", Severity::High, "a new IAM user"),
    ("CreateRole", Severity::High, "a new IAM role"),
    ("*OpenIDConnectProvider*", Severity::High, "an OIDC identity provider (federated access) changed"),
    ("*SAMLProvider", Severity::High, "a SAML identity provider (federated access) changed"),
    ("UploadServerCertificate", Severity::Low, "a TLS certificate for load balancers was uploaded (not a sign-in credential)"),
    ("Upload*", Severity::High, "a certificate or SSH key was uploaded: a new credential"),
    ("CreateAccessKey", Severity::Medium, "a user created an access key for themselves"),
    ("CreateLoginProfile", Severity::Medium, "a console password was created for the caller"),
    ("UpdateLoginProfile", Severity::Medium, "the caller's console password changed"),
    ("CreateServiceSpecificCredential", Severity::Medium, "a service-specific credential was created"),
    ("UpdateAccessKey", Severity::Medium, "an access key was activated or deactivated"),
    ("UpdateAccountPasswordPolicy", Severity::High, "the account's password policy changed"),
    ("DeleteAccountPasswordPolicy", Severity::High, "the account's password policy was removed"),
    ("CreateServiceLinkedRole", Severity::Low, "AWS created a service-linked role for a service"),
    ("ChangePassword", Severity::Low, "a user changed their own password"),
    ("ResyncMFADevice", Severity::Low, "an MFA device was resynchronised"),
    // Labels grant nothing by themselves.
    ("Tag*", Severity::Low, "tags were added"),
    ("Untag*", Severity::Low, "tags were removed"),
    // Everything else that changes IAM.
    ("Delete*", Severity::Medium, "an IAM entity or credential was deleted"),
    ("*", Severity::Medium, "IAM changed"),
];

/// Managed policies that make their holder an administrator (of everything, or of IAM, which
/// is the same thing one step later).
pub(super) const ADMIN_POLICIES: [&str; 2] = ["AdministratorAccess", "IAMFullAccess"];

/// The cases the name alone cannot decide: they are CRITICAL only with certain parameters.
fn escalation(record: &Record) -> Option<String> {
    let params = &record.request_parameters;
    let param = |key: &str| params.get(key).and_then(Value::as_str);
    match record.event_name.as_str() {
        "AttachUserPolicy" | "AttachGroupPolicy" | "AttachRolePolicy" => {
            let policy_arn = param("policyArn")?;
            let name = arn::last_segment(policy_arn);
            ADMIN_POLICIES
                .contains(&name)
                .then(|| format!("an administrator policy ({name}) was attached"))
        }
        "PutUserPolicy" | "PutGroupPolicy" | "PutRolePolicy" => {
            let document = params.get("policyDocument")?;
            policy::grants_everything(document).then(|| {
                "an inline policy allows every action (\"*\" or \"iam:*\") on every resource"
                    .to_owned()
            })
        }
        "CreateAccessKey" | "CreateLoginProfile" | "UpdateLoginProfile" => {
            // No userName: the caller acts on their own user.
            let target = param("userName")?;
            (record.identity.user_name.as_deref() != Some(target)).then(|| {
                format!(
                    "{} for another user ({target}): a way in as someone else",
                    record.event_name
                )
            })
        }
        _ => None,
    }
}

/// The severity of an IAM change and why: an escalation when one applies, else the first row
/// of the table whose event-name glob matches.
pub(super) fn of_iam_change(record: &Record) -> (Severity, String) {
    match escalation(record) {
        Some(reason) => (Severity::Critical, reason),
        None => SEVERITY_TABLE
            .iter()
            .find(|(name, _, _)| glob_matches(name, &record.event_name))
            .map(|(_, severity, reason)| (*severity, (*reason).to_owned()))
            .unwrap_or((Severity::Medium, "IAM changed".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_prints_and_parses() {
        assert!(Severity::Info < Severity::Low && Severity::High < Severity::Critical);
        for severity in Severity::ALL {
            assert_eq!(severity.to_string().parse::<Severity>(), Ok(severity));
        }
        assert_eq!("critical".parse::<Severity>(), Ok(Severity::Critical));
        assert_eq!(Severity::Medium.to_string(), "MEDIUM");
        let error = "urgent".parse::<Severity>().unwrap_err();
        assert!(error.to_string().contains("INFO, LOW"));
    }
}
