//! The member-role template: the one role the daemon assumes in every member account of an
//! organization (`iamwatchd template --member-role`, deployed to the members as the
//! service-managed StackSet of `iamwatchd deploy --member-roles`).
//!
//! Least privilege: the role trusts one principal, the daemon's own role or user (parameter
//! `DaemonPrincipalArn`), optionally only with an external ID (`ExternalId`, empty = none, a
//! `Condition` that `Fn::If` leaves out), and allows exactly the calls the daemon makes with a
//! member's credentials ([`MEMBER_ROLE_ACTIONS`]): reading the account's event history and its
//! alias. Neither call takes a resource narrower than `*` (no resource-level permissions), and
//! checkov passes the role as it is: no check is skipped.
//!
//! `deploy/iamwatchd-member-role.template.json` is this template's output, committed for
//! people who deploy with other tools; a test fails when it is stale.

use serde_json::{json, Value};

use super::{get_att, not_empty, reference};
use crate::stack::names::{member_param, MEMBER_ROLE_ACTIONS, MEMBER_ROLE_NAME};

/// The logical id of the role.
pub(crate) const ROLE_LOGICAL_ID: &str = "MemberRole";

/// The template as a JSON value.
pub fn member_role_template() -> Value {
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!(
            "iamwatchd {}: the role the iamwatchd daemon assumes in a member account to read \
             its CloudTrail event history and its alias (nothing else)",
            env!("CARGO_PKG_VERSION")
        ),
        "Parameters": {
            (member_param::ROLE_NAME): {
                "Type": "String",
                "Default": MEMBER_ROLE_NAME,
                "Description": "Name of the role (the daemon's accounts.member_role).",
                "AllowedPattern": "^[\\w+=,.@-]{1,64}$",
                "ConstraintDescription": "an IAM role name: 1-64 letters, digits and +=,.@_-",
            },
            (member_param::PRINCIPAL): {
                "Type": "String",
                "Description": "ARN of the IAM role or user the iamwatchd daemon runs as (in \
                    the account it runs in): the only principal the role trusts.",
                "AllowedPattern": "^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/.+$",
                "ConstraintDescription": "an IAM role or user ARN, \
                    arn:aws:iam::123456789012:role/NAME",
            },
            (member_param::EXTERNAL_ID): {
                "Type": "String",
                "Default": "",
                "Description": "External ID the daemon must give when it assumes the role \
                    (its accounts.external_id). Empty: none required.",
                "AllowedPattern": "^([\\w+=,.@:/-]{2,1224})?$",
                "ConstraintDescription": "2-1224 letters, digits and +=,.@:/-, or empty",
            },
        },
        "Conditions": {
            "HasExternalId": not_empty(member_param::EXTERNAL_ID),
        },
        "Resources": {
            (ROLE_LOGICAL_ID): {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": reference(member_param::ROLE_NAME),
                    "Description": "Lets the iamwatchd daemon read this account's CloudTrail \
                        event history and its alias, nothing else.",
                    "MaxSessionDuration": 3600,
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Effect": "Allow",
                            "Principal": { "AWS": reference(member_param::PRINCIPAL) },
                            "Action": "sts:AssumeRole",
                            "Condition": {
                                "Fn::If": [
                                    "HasExternalId",
                                    { "StringEquals": { "sts:ExternalId": reference(member_param::EXTERNAL_ID) } },
                                    reference("AWS::NoValue"),
                                ],
                            },
                        }],
                    },
                    "Policies": [{
                        "PolicyName": "read-event-history",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [{
                                "Effect": "Allow",
                                "Action": MEMBER_ROLE_ACTIONS,
                                "Resource": "*",
                            }],
                        },
                    }],
                },
            },
        },
        "Outputs": {
            "RoleArn": {
                "Description": "The role the daemon assumes in this account",
                "Value": get_att(ROLE_LOGICAL_ID, "Arn"),
            },
        },
    })
}

/// The template as `iamwatchd template --member-role` prints it and `deploy/` holds it.
pub fn member_role_template_json() -> String {
    let mut text =
        serde_json::to_string_pretty(&member_role_template()).expect("a JSON value serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn committed_member_role_template_is_up_to_date() {
        let committed = include_str!("../../../deploy/iamwatchd-member-role.template.json");
        assert!(
            committed == member_role_template_json(),
            "deploy/iamwatchd-member-role.template.json is stale: run `cargo run --bin \
             iamwatchd -- template --member-role > deploy/iamwatchd-member-role.template.json` \
             and commit it"
        );
    }

    /// The role allows what the daemon calls in a member and nothing more: the calls of
    /// `src/accounts/` other than STS (made with the daemon's own credentials) and
    /// Organizations (made with the discovery role's).
    #[test]
    fn the_role_allows_exactly_the_calls_made_with_a_members_credentials() {
        let member_side: BTreeSet<&str> = crate::accounts::credentials::ACTIONS
            .iter()
            .chain(crate::accounts::discovery::ACTIONS)
            .copied()
            .filter(|a| !a.starts_with("sts:") && !a.starts_with("organizations:"))
            .collect();
        let allowed: BTreeSet<&str> = MEMBER_ROLE_ACTIONS.iter().copied().collect();
        assert_eq!(allowed, member_side);
        let template = member_role_template();
        let role = &template["Resources"][ROLE_LOGICAL_ID]["Properties"];
        let statements = role["Policies"][0]["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap();
        assert_eq!(statements.len(), 1);
        assert_eq!(statements[0]["Action"], json!(MEMBER_ROLE_ACTIONS));
        assert_eq!(role["Policies"].as_array().unwrap().len(), 1);
        assert!(role.get("ManagedPolicyArns").is_none());
        assert_eq!(
            template["Parameters"][member_param::ROLE_NAME]["Default"],
            crate::accounts::config::DEFAULT_MEMBER_ROLE
        );
    }

    #[test]
    fn the_role_trusts_the_daemon_alone_and_the_external_id_when_given() {
        let template = member_role_template();
        let trust = &template["Resources"][ROLE_LOGICAL_ID]["Properties"]
            ["AssumeRolePolicyDocument"]["Statement"];
        assert_eq!(trust.as_array().unwrap().len(), 1);
        assert_eq!(
            trust[0]["Principal"],
            json!({ "AWS": { "Ref": member_param::PRINCIPAL } })
        );
        let condition = &trust[0]["Condition"]["Fn::If"];
        assert_eq!(condition[0], "HasExternalId");
        assert_eq!(
            condition[1]["StringEquals"]["sts:ExternalId"],
            json!({ "Ref": member_param::EXTERNAL_ID })
        );
        assert_eq!(condition[2], json!({ "Ref": "AWS::NoValue" }));
        assert!(template["Conditions"]["HasExternalId"].is_object());
        assert_eq!(
            template["Parameters"][member_param::EXTERNAL_ID]["Default"],
            ""
        );
    }
}
