//! `iamwatchd deploy`: creates, updates and deletes the alarm-path stack the way a careful
//! operator would.
//!
//! Every create or update goes through a change set, so the operator sees what will change
//! before it changes (and `--dry-run` stops there). While CloudFormation works, each new stack
//! event is printed as it happens; when it fails, the first failing resource and its reason are
//! what the operator needs, so that is what the error says. The usual first-day problems
//! (no credentials, a missing permission, a typo in an e-mail address, a wrong endpoint, a wrong
//! region) end in one paragraph that says what to do, not in an SDK error dump.

pub(crate) mod change_set;
mod error;
pub(crate) mod follow;
pub(crate) mod member_roles;
pub(crate) mod organization;
mod progress;

use std::time::Duration;

use aws_sdk_cloudformation::config::ProvideCredentials;
use aws_sdk_cloudformation::types::Stack;
use aws_sdk_cloudformation::Client;

use crate::aws;
use crate::aws::errors::{root_cause, AwsError, Kind};
use crate::config::DeployTarget;
use crate::stack::names::{
    param, ACCESS_LOG_BUCKET_LOGICAL_ID, CREATED_BUCKET_LOGICAL_ID, CREATED_KEY_LOGICAL_ID,
};
use error::{aws_failure, sdk_error};
use follow::{delete_and_follow, first_failure_of};

pub use error::{DeployError, StackFailure};
pub use member_roles::{delete_member_roles, deploy_member_roles, MemberRolesRequest};

/// The AWS actions this file calls itself; its parts declare theirs. The deploy policy
/// (`deploy/iamwatchd-deploy-policy.json`) must allow every one of them, plus what
/// CloudFormation does with the caller's permissions to create the stack's resources;
/// `src/aws/actions.rs` enforces both.
#[cfg(test)]
pub(crate) const ACTIONS: &[&str] = &[
    "cloudformation:DescribeStacks",
    "cloudformation:ListStackResources",
];

/// How long to wait for CloudFormation by default. Creating a trail, a bucket and a role takes
/// a few minutes; an hour means something is stuck.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// What `deploy` should make of the stack: a validated target (see
/// [`DeployFlags::resolve`](crate::config::DeployFlags::resolve)), and how to go about it.
/// `None` settings keep the stack's current value on an update and take the template's default
/// on a create.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    /// Which stack, where, with which settings.
    pub target: DeployTarget,
    /// Create the change set, show it, delete it.
    pub dry_run: bool,
    /// Give up waiting for CloudFormation after this long.
    pub timeout: Duration,
}

/// What `deploy --delete` should remove.
#[derive(Debug, Clone)]
pub struct DeleteRequest {
    /// The stack's name.
    pub stack_name: String,
    /// Its region.
    pub region: String,
    /// Give up waiting for CloudFormation after this long.
    pub timeout: Duration,
}

impl DeployRequest {
    /// The same stack, to be deleted instead.
    pub fn delete_request(&self) -> DeleteRequest {
        DeleteRequest {
            stack_name: self.target.stack_name.clone(),
            region: self.target.region.clone(),
            timeout: self.timeout,
        }
    }
}

/// Whether CloudFormation's answer means "the stack already is what you asked for".
pub(super) fn is_no_changes(reason: &str) -> bool {
    reason.contains("didn't contain changes") || reason.contains("No updates are to be performed")
}

/// Statuses of a stack that no operation is working on.
pub(super) fn is_settled(status: &str) -> bool {
    !status.ends_with("_IN_PROGRESS")
}

/// A CloudFormation client with the region and endpoint of the request, after making sure
/// there are credentials at all (the SDK's own error for that is a "dispatch failure").
async fn client(region: &str) -> Result<Client, DeployError> {
    Ok(Client::new(&checked_config(region).await?))
}

/// The SDK configuration for `region`, once it is known to hold credentials.
pub(super) async fn checked_config(region: &str) -> Result<aws_config::SdkConfig, DeployError> {
    let config = aws::sdk_config(region).await;
    let provider = config
        .credentials_provider()
        .ok_or_else(|| DeployError::NoCredentials {
            detail: "no credentials provider configured".to_owned(),
        })?;
    if let Err(error) = provider.provide_credentials().await {
        // The chain lists every provider it tried; its first sentence is the useful part.
        let detail = root_cause(&error);
        let detail = detail
            .split(". Attempted:")
            .next()
            .unwrap_or(&detail)
            .to_owned();
        return Err(DeployError::NoCredentials { detail });
    }
    Ok(config)
}

/// The stack by name, `None` when it does not exist (CloudFormation says so with a
/// ValidationError).
async fn find_stack(cfn: &Client, name: &str, region: &str) -> Result<Option<Stack>, DeployError> {
    match cfn.describe_stacks().stack_name(name).send().await {
        Ok(answer) => Ok(answer.stacks().first().cloned()),
        Err(error) => match AwsError::read(&error) {
            missing if missing.kind == Kind::NotFound => Ok(None),
            error => Err(aws_failure("DescribeStacks", region, error)),
        },
    }
}

pub(super) fn status_of(stack: &Stack) -> String {
    stack
        .stack_status()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default()
}

/// `iamwatchd deploy`: create or update the stack through a change set.
pub async fn deploy(request: &DeployRequest) -> Result<(), DeployError> {
    let region = request.target.region.as_str();
    let name = request.target.stack_name.as_str();
    let config = checked_config(region).await?;
    let cfn = Client::new(&config);

    let mut existing = find_stack(&cfn, name, region).await?;
    // An organization trail (asked for, or the stack's already): CloudTrail's prerequisites
    // first, each refusal with its fix, before any change set exists.
    let organization_id = if request.target.settings.organization.unwrap_or_else(|| {
        existing
            .as_ref()
            .is_some_and(|s| parameter_of(s, param::ORGANIZATION_TRAIL) == Some("true"))
    }) {
        Some(organization::check_organization_trail(&config).await?)
    } else {
        None
    };
    if let Some(stack) = &existing {
        let status = status_of(stack);
        match status.as_str() {
            "ROLLBACK_COMPLETE" => {
                // No flag needed: a stack whose first creation rolled back holds nothing (a
                // bucket it created is retained outside it), CloudFormation can only delete it,
                // and the operator asked for the stack to exist.
                let reason = match first_failure_of(&cfn, stack, region).await? {
                    Some(event) => format!(
                        "{} {}: {}",
                        event.logical_resource_id().unwrap_or("?"),
                        event.resource_status().map(|s| s.as_str()).unwrap_or("?"),
                        event.resource_status_reason().unwrap_or("no reason given")
                    ),
                    None => stack
                        .stack_status_reason()
                        .unwrap_or("no reason recorded")
                        .to_owned(),
                };
                crate::outln!(
                    "Stack {name} is in ROLLBACK_COMPLETE: its first creation failed ({reason}) \
                     and was rolled back, so none of its resources exist and CloudFormation can \
                     only delete it. {} it and creating it again; no flag is needed because \
                     nothing is lost.",
                    if request.dry_run {
                        "A real run would delete"
                    } else {
                        "Deleting"
                    }
                );
                if request.dry_run {
                    crate::outln!(
                        "Dry run: nothing changed. The new stack would create every resource \
                         of the template."
                    );
                    return Ok(());
                }
                delete_and_follow(&cfn, stack, region, request.timeout).await?;
                existing = None;
            }
            "REVIEW_IN_PROGRESS" => {}
            "ROLLBACK_FAILED" | "DELETE_FAILED" => {
                return Err(DeployError::StackStuck {
                    stack: name.to_owned(),
                    status,
                    advice: "Look at its events for the resource that could not be deleted, \
                             remove that resource by hand, then run `iamwatchd deploy --delete` \
                             and deploy again",
                })
            }
            "UPDATE_ROLLBACK_FAILED" => {
                return Err(DeployError::StackStuck {
                    stack: name.to_owned(),
                    status,
                    advice: "Fix the resource its events name, then run `aws cloudformation \
                             continue-update-rollback --stack-name` with this stack's name and \
                             deploy again",
                })
            }
            other if !is_settled(other) => {
                return Err(DeployError::StackBusy {
                    stack: name.to_owned(),
                    status,
                })
            }
            _ => {}
        }
    }
    // A stack in REVIEW_IN_PROGRESS was made by a change set never executed (an interrupted
    // run): it has no resources and takes CREATE change sets only.
    let creating = existing
        .as_ref()
        .is_none_or(|s| status_of(s) == "REVIEW_IN_PROGRESS");
    change_set::apply(
        &cfn,
        request,
        existing.as_ref(),
        creating,
        organization_id.as_deref(),
    )
    .await
}

/// The value of a stack's parameter `key`.
pub(super) fn parameter_of<'a>(stack: &'a Stack, key: &str) -> Option<&'a str> {
    stack
        .parameters()
        .iter()
        .find(|p| p.parameter_key() == Some(key))
        .and_then(|p| p.parameter_value())
}

/// What the stack created that deletion keeps (`DeletionPolicy: Retain`), each with its
/// physical id: the trail bucket, its access-log bucket and the KMS key.
async fn retained_resources(
    cfn: &Client,
    stack: &Stack,
    region: &str,
) -> Result<Vec<(&'static str, String)>, DeployError> {
    let stack_id = stack.stack_id().or(stack.stack_name()).unwrap_or_default();
    let mut retained = Vec::new();
    let mut token = None;
    loop {
        let page = cfn
            .list_stack_resources()
            .stack_name(stack_id)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| sdk_error("ListStackResources", region, e))?;
        for resource in page.stack_resource_summaries() {
            let live = resource
                .resource_status()
                .is_some_and(|s| s.as_str() != "DELETE_COMPLETE");
            let kept = RETAINED
                .iter()
                .find(|(id, _)| resource.logical_resource_id() == Some(*id));
            if let (true, Some((_, what)), Some(physical)) =
                (live, kept, resource.physical_resource_id())
            {
                retained.push((*what, physical.to_owned()));
            }
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(retained);
        }
    }
}

/// The resources the template retains on deletion, by logical id, with what to call them.
const RETAINED: [(&str, &str); 3] = [
    (
        CREATED_BUCKET_LOGICAL_ID,
        "The S3 bucket with the trail's log files",
    ),
    (
        ACCESS_LOG_BUCKET_LOGICAL_ID,
        "The S3 bucket with the trail bucket's access logs",
    ),
    (
        CREATED_KEY_LOGICAL_ID,
        "The KMS key that encrypted the log files (they cannot be read without it)",
    ),
];

/// `iamwatchd deploy --delete`: delete the stack, following its events.
pub async fn delete(request: &DeleteRequest) -> Result<(), DeployError> {
    let region = request.region.as_str();
    let name = request.stack_name.as_str();
    let cfn = client(region).await?;
    let Some(stack) = find_stack(&cfn, name, region).await? else {
        crate::outln!("Stack {name} does not exist in {region}: nothing to delete.");
        return Ok(());
    };
    let status = status_of(&stack);
    if !is_settled(&status) && status != "REVIEW_IN_PROGRESS" {
        return Err(DeployError::StackBusy {
            stack: name.to_owned(),
            status,
        });
    }
    // What the stack created and deletion keeps (DeletionPolicy Retain): say so and name it.
    let retained = retained_resources(&cfn, &stack, region).await?;
    crate::outln!("Deleting stack {name} in {region}");
    delete_and_follow(&cfn, &stack, region, request.timeout).await?;
    crate::outln!("Stack {name} is deleted.");
    for (what, id) in &retained {
        crate::outln!("{what}, {id}, was retained (it belongs to the audit record).");
    }
    if !retained.is_empty() {
        crate::outln!(
            "Delete the buckets (emptied) and schedule the key's deletion yourself once you no \
             longer need those logs."
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::RETAINED;
    use crate::stack::template::template;

    #[test]
    fn deletion_names_every_resource_the_template_retains() {
        let template = template();
        let mut retained: Vec<&str> = template["Resources"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, r)| r["DeletionPolicy"] == "Retain")
            .map(|(id, _)| id.as_str())
            .collect();
        let mut named: Vec<&str> = RETAINED.iter().map(|(id, _)| *id).collect();
        retained.sort_unstable();
        named.sort_unstable();
        assert_eq!(retained, named);
    }
}
