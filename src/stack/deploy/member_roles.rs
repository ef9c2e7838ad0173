//! `iamwatchd deploy --member-roles`: the member role in every account of the organization (or
//! of the OUs chosen), as the service-managed StackSet [`MEMBER_ROLES_STACK_SET`] of the
//! member-role template, run from the management account (or a StackSets delegated
//! administrator).
//!
//! Service-managed, with automatic deployment on: CloudFormation creates the role in every
//! account of the targeted OUs, and in every account that joins one later, through the
//! organization's own StackSets roles (no role to prepare in the members), and deletes it from
//! an account that leaves. Each operation (create, update, the stack instances, deletion) is
//! followed until it ends, as `deploy` follows the main stack; a failure names each account
//! that failed and CloudFormation's reason.

use std::time::{Duration, Instant};

use aws_sdk_cloudformation::types::{
    AutoDeployment, Capability, DeploymentTargets, Parameter, PermissionModels, StackSet,
    StackSetOperationPreferences, StackSetOperationResultStatus, StackSetOperationStatus,
};
use aws_sdk_cloudformation::Client;

use super::checked_config;
use super::error::{sdk_error, DeployError};
use super::organization::caller;
use crate::aws::errors::{AwsError, Kind};
use crate::stack::names::{member_param, MEMBER_ROLES_STACK_SET, MEMBER_ROLE_NAME};
use crate::stack::template::member_role_template_json;

/// The AWS actions this file calls (see `src/aws/actions.rs`).
#[cfg(test)]
pub(crate) const ACTIONS: &[&str] = &[
    "cloudformation:CreateStackInstances",
    "cloudformation:CreateStackSet",
    "cloudformation:DeleteStackInstances",
    "cloudformation:DeleteStackSet",
    "cloudformation:DescribeStackSet",
    "cloudformation:DescribeStackSetOperation",
    "cloudformation:ListStackInstances",
    "cloudformation:ListStackSetOperationResults",
    "cloudformation:UpdateStackSet",
    "organizations:ListRoots",
];

/// Pause between two looks at a running StackSet operation.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// What `deploy --member-roles` should make of the StackSet.
#[derive(Debug, Clone)]
pub struct MemberRolesRequest {
    /// The region of the StackSet and of its stack instances (IAM is global: one is enough).
    pub region: String,
    /// The OUs (or the root, `r-…`) whose accounts get the role; empty: the organization's
    /// root, i.e. every account.
    pub ous: Vec<String>,
    /// The daemon's role or user ARN, the one principal the role trusts; `None`: the
    /// StackSet's current one on an update, else the caller's (an assumed role's role).
    pub principal: Option<String>,
    /// The external ID the role requires; `None`: the current one on an update, else none;
    /// `Some("")`: none.
    pub external_id: Option<String>,
    /// The role's name (the daemon's `accounts.member_role`); `None`: the current one on an
    /// update, else `iamwatchd-member`.
    pub role_name: Option<String>,
    /// Give up waiting for CloudFormation after this long.
    pub timeout: Duration,
}

/// An OU or root ID as Organizations writes them.
fn is_target_id(id: &str) -> bool {
    let lower_alnum = |s: &str, min: usize, max: usize| {
        (min..=max).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    if let Some(root) = id.strip_prefix("r-") {
        return lower_alnum(root, 4, 32);
    }
    match id.strip_prefix("ou-").and_then(|rest| rest.split_once('-')) {
        Some((root, ou)) => lower_alnum(root, 4, 32) && lower_alnum(ou, 8, 32),
        None => false,
    }
}

/// The principal a trust policy names for the caller `arn`: a user or role as it is, an
/// assumed role's session (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`) as its role. The
/// root user is refused: trusting it would let every principal of the account in.
pub(crate) fn principal_of(arn: &str) -> Result<String, String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let refuse = |why: &str| {
        Err(format!(
            "{why}; give the ARN of the IAM role or user the daemon runs as with \
             --member-role-principal arn:aws:iam::ACCOUNT:role/NAME"
        ))
    };
    let [_, partition, service, _, account, resource] = parts[..] else {
        return refuse(&format!("{arn:?} is not an ARN"));
    };
    match (service, resource.split_once('/')) {
        ("iam", Some(("role" | "user", _))) => Ok(arn.to_owned()),
        ("sts", Some(("assumed-role", rest))) => {
            let role = rest.split('/').next().unwrap_or_default();
            Ok(format!("arn:{partition}:iam::{account}:role/{role}"))
        }
        ("iam", None) if resource == "root" => refuse(&format!(
            "these credentials are the root user of {account}, and a member role trusting the \
             root would let every principal of that account in"
        )),
        _ => refuse(&format!(
            "{arn} is neither an IAM role or user nor an assumed role"
        )),
    }
}

/// The StackSet, `None` when it does not exist.
async fn find_stack_set(cfn: &Client, region: &str) -> Result<Option<StackSet>, DeployError> {
    match cfn
        .describe_stack_set()
        .stack_set_name(MEMBER_ROLES_STACK_SET)
        .send()
        .await
    {
        Ok(answer) => Ok(answer
            .stack_set
            .filter(|s| s.status().is_none_or(|s| s.as_str() != "DELETED"))),
        Err(error) => match AwsError::read(&error) {
            missing
                if missing.kind == Kind::NotFound
                    || missing
                        .code
                        .as_deref()
                        .is_some_and(|c| c.contains("StackSetNotFound")) =>
            {
                Ok(None)
            }
            error => Err(super::error::aws_failure("DescribeStackSet", region, error)),
        },
    }
}

fn parameter(key: &str, value: &str) -> Parameter {
    Parameter::builder()
        .parameter_key(key)
        .parameter_value(value)
        .build()
}

/// The value a StackSet has for `key`.
fn previous<'a>(stack_set: Option<&'a StackSet>, key: &str) -> Option<&'a str> {
    stack_set?
        .parameters()
        .iter()
        .find(|p| p.parameter_key() == Some(key))
        .and_then(|p| p.parameter_value())
}

/// Every account at once: the member role is one small IAM role.
fn preferences() -> StackSetOperationPreferences {
    StackSetOperationPreferences::builder()
        .max_concurrent_percentage(100)
        .failure_tolerance_count(0)
        .build()
}

/// Automatic deployment on; an account that leaves the organization (or the OUs) loses the
/// role.
fn auto_deployment() -> AutoDeployment {
    AutoDeployment::builder()
        .enabled(true)
        .retain_stacks_on_account_removal(false)
        .build()
}

fn targets(ous: &[String]) -> DeploymentTargets {
    DeploymentTargets::builder()
        .set_organizational_unit_ids(Some(ous.to_vec()))
        .build()
}

/// The organization's root (every account is under it).
async fn organization_root(config: &aws_config::SdkConfig) -> Result<String, DeployError> {
    let answer = aws_sdk_organizations::Client::new(config)
        .list_roots()
        .send()
        .await
        .map_err(|e| DeployError::call("organizations:ListRoots", AwsError::read(&e)))?;
    answer
        .roots()
        .first()
        .and_then(|r| r.id())
        .map(str::to_owned)
        .ok_or_else(|| DeployError::Call {
            action: "organizations:ListRoots",
            code: "NoRoot".to_owned(),
            message: "the organization has no root: run deploy --member-roles in the \
                      organization's management account"
                .to_owned(),
        })
}

/// `iamwatchd deploy --member-roles`: create or update the StackSet and its stack instances.
pub async fn deploy_member_roles(request: &MemberRolesRequest) -> Result<(), DeployError> {
    let region = request.region.as_str();
    if let Some(bad) = request.ous.iter().find(|ou| !is_target_id(ou)) {
        return Err(DeployError::Refused(format!(
            "--member-role-ous: {bad:?} is not an OU or root ID (ou-xxxx-xxxxxxxx or r-xxxx, \
             as `aws organizations list-organizational-units-for-parent` shows them)"
        )));
    }
    let config = checked_config(region).await?;
    let cfn = Client::new(&config);
    let existing = find_stack_set(&cfn, region).await?;

    let principal = match request
        .principal
        .clone()
        .or_else(|| previous(existing.as_ref(), member_param::PRINCIPAL).map(str::to_owned))
    {
        Some(given) => principal_of(&given).map_err(DeployError::Refused)?,
        None => principal_of(&caller(&config).await?.1).map_err(DeployError::Refused)?,
    };
    let external_id = request
        .external_id
        .clone()
        .or_else(|| previous(existing.as_ref(), member_param::EXTERNAL_ID).map(str::to_owned))
        .unwrap_or_default();
    let role_name = request
        .role_name
        .clone()
        .or_else(|| previous(existing.as_ref(), member_param::ROLE_NAME).map(str::to_owned))
        .unwrap_or_else(|| MEMBER_ROLE_NAME.to_owned());
    let ous = if request.ous.is_empty() {
        vec![organization_root(&config).await?]
    } else {
        request.ous.clone()
    };
    let parameters = vec![
        parameter(member_param::ROLE_NAME, &role_name),
        parameter(member_param::PRINCIPAL, &principal),
        parameter(member_param::EXTERNAL_ID, &external_id),
    ];
    crate::outln!(
        "StackSet {MEMBER_ROLES_STACK_SET} in {region}: member role {role_name} trusting \
         {principal}{}, in the accounts of {}",
        if external_id.is_empty() {
            String::new()
        } else {
            " with an external ID".to_owned()
        },
        ous.join(", ")
    );

    let mut present = Vec::new();
    match &existing {
        None => {
            cfn.create_stack_set()
                .stack_set_name(MEMBER_ROLES_STACK_SET)
                .description(
                    "iamwatchd: the role the iamwatchd daemon assumes in each member account",
                )
                .template_body(member_role_template_json())
                .set_parameters(Some(parameters))
                .capabilities(Capability::CapabilityNamedIam)
                .permission_model(PermissionModels::ServiceManaged)
                .auto_deployment(auto_deployment())
                .send()
                .await
                .map_err(|e| stack_sets_failure("CreateStackSet", region, e))?;
            crate::outln!("Created StackSet {MEMBER_ROLES_STACK_SET} (service-managed, automatic deployment on)");
        }
        Some(_) => {
            let operation = cfn
                .update_stack_set()
                .stack_set_name(MEMBER_ROLES_STACK_SET)
                .template_body(member_role_template_json())
                .set_parameters(Some(parameters))
                .capabilities(Capability::CapabilityNamedIam)
                .permission_model(PermissionModels::ServiceManaged)
                .auto_deployment(auto_deployment())
                .operation_preferences(preferences())
                .send()
                .await
                .map_err(|e| stack_sets_failure("UpdateStackSet", region, e))?
                .operation_id
                .unwrap_or_default();
            follow_operation(&cfn, region, &operation, "update", request.timeout).await?;
            present = instance_ous(&cfn, region).await?.0;
        }
    }
    let missing: Vec<String> = ous
        .iter()
        .filter(|ou| !present.contains(ou))
        .cloned()
        .collect();
    if !missing.is_empty() {
        let operation = cfn
            .create_stack_instances()
            .stack_set_name(MEMBER_ROLES_STACK_SET)
            .deployment_targets(targets(&missing))
            .regions(region)
            .operation_preferences(preferences())
            .send()
            .await
            .map_err(|e| stack_sets_failure("CreateStackInstances", region, e))?
            .operation_id
            .unwrap_or_default();
        follow_operation(
            &cfn,
            region,
            &operation,
            "creation of the stack instances",
            request.timeout,
        )
        .await?;
    }
    let (_, accounts) = instance_ous(&cfn, region).await?;
    crate::outln!(
        "The member role is in {} account{}: {}",
        accounts.len(),
        if accounts.len() == 1 { "" } else { "s" },
        accounts.join(", ")
    );
    crate::outln!(
        "Accounts that join these OUs get it too (automatic deployment). Next: [accounts] in \
         the daemon's configuration (member_role, external_id)."
    );
    Ok(())
}

/// `iamwatchd deploy --member-roles --delete`: the stack instances (so the role leaves every
/// account), then the StackSet.
pub async fn delete_member_roles(region: &str, timeout: Duration) -> Result<(), DeployError> {
    let config = checked_config(region).await?;
    let cfn = Client::new(&config);
    if find_stack_set(&cfn, region).await?.is_none() {
        crate::outln!(
            "StackSet {MEMBER_ROLES_STACK_SET} does not exist in {region}: nothing to delete."
        );
        return Ok(());
    }
    let (ous, accounts) = instance_ous(&cfn, region).await?;
    if !accounts.is_empty() {
        crate::outln!(
            "Deleting the member role from {} account{} ({})",
            accounts.len(),
            if accounts.len() == 1 { "" } else { "s" },
            ous.join(", ")
        );
        let operation = cfn
            .delete_stack_instances()
            .stack_set_name(MEMBER_ROLES_STACK_SET)
            .deployment_targets(targets(&ous))
            .regions(region)
            .retain_stacks(false)
            .operation_preferences(preferences())
            .send()
            .await
            .map_err(|e| sdk_error("DeleteStackInstances", region, e))?
            .operation_id
            .unwrap_or_default();
        follow_operation(
            &cfn,
            region,
            &operation,
            "deletion of the stack instances",
            timeout,
        )
        .await?;
    }
    cfn.delete_stack_set()
        .stack_set_name(MEMBER_ROLES_STACK_SET)
        .send()
        .await
        .map_err(|e| sdk_error("DeleteStackSet", region, e))?;
    crate::outln!("StackSet {MEMBER_ROLES_STACK_SET} is deleted.");
    Ok(())
}

/// The OUs the StackSet's instances were deployed for, and the accounts that have one.
async fn instance_ous(
    cfn: &Client,
    region: &str,
) -> Result<(Vec<String>, Vec<String>), DeployError> {
    let mut ous = Vec::new();
    let mut accounts = Vec::new();
    let mut pages = cfn
        .list_stack_instances()
        .stack_set_name(MEMBER_ROLES_STACK_SET)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_error("ListStackInstances", region, e))?;
        for instance in page.summaries() {
            if let Some(ou) = instance.organizational_unit_id() {
                if !ous.iter().any(|o| o == ou) {
                    ous.push(ou.to_owned());
                }
            }
            if let Some(account) = instance.account() {
                if !accounts.iter().any(|a| a == account) {
                    accounts.push(account.to_owned());
                }
            }
        }
    }
    accounts.sort();
    Ok((ous, accounts))
}

/// Polls a StackSet operation until it ends; a failure says, per account, why.
async fn follow_operation(
    cfn: &Client,
    region: &str,
    operation: &str,
    what: &str,
    timeout: Duration,
) -> Result<(), DeployError> {
    let started = Instant::now();
    let mut last = None;
    loop {
        let answer = cfn
            .describe_stack_set_operation()
            .stack_set_name(MEMBER_ROLES_STACK_SET)
            .operation_id(operation)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeStackSetOperation", region, e))?;
        let details = answer.stack_set_operation;
        let status = details
            .as_ref()
            .and_then(|o| o.status().cloned())
            .unwrap_or(StackSetOperationStatus::Running);
        if last.as_ref() != Some(&status) {
            crate::outln!("  {what} ({operation}): {}", status.as_str());
            last = Some(status.clone());
        }
        match status {
            StackSetOperationStatus::Succeeded => return Ok(()),
            StackSetOperationStatus::Failed | StackSetOperationStatus::Stopped => {
                let mut reasons = failed_accounts(cfn, region, operation).await?;
                if let Some(reason) = details.as_ref().and_then(|o| o.status_reason()) {
                    reasons.insert(0, reason.to_owned());
                }
                if reasons.is_empty() {
                    reasons.push("CloudFormation gave no reason".to_owned());
                }
                return Err(DeployError::StackSetFailed {
                    stack_set: MEMBER_ROLES_STACK_SET.to_owned(),
                    action: what.to_owned(),
                    status: status.as_str().to_owned(),
                    operation: operation.to_owned(),
                    reason: reasons.join("; "),
                });
            }
            _ => {}
        }
        if started.elapsed() >= timeout {
            return Err(DeployError::Timeout {
                stack: format!("StackSet {MEMBER_ROLES_STACK_SET}"),
                status: status.as_str().to_owned(),
                waited: timeout,
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// "account 111122223333 (us-east-1): reason" for every account the operation failed in.
async fn failed_accounts(
    cfn: &Client,
    region: &str,
    operation: &str,
) -> Result<Vec<String>, DeployError> {
    let mut failed = Vec::new();
    let mut pages = cfn
        .list_stack_set_operation_results()
        .stack_set_name(MEMBER_ROLES_STACK_SET)
        .operation_id(operation)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_error("ListStackSetOperationResults", region, e))?;
        for result in page.summaries() {
            if result.status() == Some(&StackSetOperationResultStatus::Failed) {
                failed.push(format!(
                    "account {} ({}): {}",
                    result.account().unwrap_or("?"),
                    result.region().unwrap_or("?"),
                    result.status_reason().unwrap_or("no reason given")
                ));
            }
        }
    }
    Ok(failed)
}

/// A StackSets call's failure; the one every first service-managed StackSet meets (StackSets'
/// trusted access not activated) says how to activate it.
fn stack_sets_failure<E>(
    operation: &'static str,
    region: &str,
    error: aws_sdk_cloudformation::error::SdkError<
        E,
        aws_sdk_cloudformation::config::http::HttpResponse,
    >,
) -> DeployError
where
    E: aws_sdk_cloudformation::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let read = AwsError::read(&error);
    if read.message.contains("organizations access") || read.message.contains("trusted access") {
        return DeployError::Refused(format!(
            "CloudFormation {operation}: {}. A service-managed StackSet needs StackSets' trusted \
             access in the organization: run `aws cloudformation activate-organizations-access` \
             in the management account, then deploy --member-roles again",
            read.message
        ));
    }
    super::error::aws_failure(operation, region, read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_trusts_the_callers_role_not_its_session_nor_the_root() {
        assert_eq!(
            principal_of("arn:aws:sts::123456789012:assumed-role/iamwatchd/i-0abc").unwrap(),
            "arn:aws:iam::123456789012:role/iamwatchd"
        );
        for kept in [
            "arn:aws:iam::123456789012:role/ops/iamwatchd",
            "arn:aws:iam::123456789012:user/iamwatchd",
        ] {
            assert_eq!(principal_of(kept).unwrap(), kept);
        }
        let root = principal_of("arn:aws:iam::123456789012:root").unwrap_err();
        assert!(root.contains("--member-role-principal"), "{root}");
        assert!(principal_of("not an arn").is_err());
    }

    #[test]
    fn targets_are_ou_or_root_ids() {
        for good in ["r-ab12", "ou-ab12-cd34ef56"] {
            assert!(is_target_id(good), "{good}");
        }
        for bad in ["ou-ab12", "r-A123", "123456789012", "ou-ab12-cd34", ""] {
            assert!(!is_target_id(bad), "{bad}");
        }
    }
}
