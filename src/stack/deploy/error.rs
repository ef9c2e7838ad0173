//! Why deploying (or deleting) did not work, and what to do about it: one paragraph, never an
//! SDK error dump.

use std::fmt;
use std::time::Duration;

use aws_sdk_cloudformation::config::http::HttpResponse;
use aws_sdk_cloudformation::error::{ProvideErrorMetadata, SdkError};

use crate::aws::errors::{AwsError, Kind};

/// Why deploying (or deleting) did not work, and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// Creating a new stack without any e-mail address: the template needs at least one.
    #[error(
        "stack {stack} does not exist yet, so at least one --email address (or deploy.emails \
         in the --config file) is needed: the alarms are sent there (the address must confirm \
         the subscription)"
    )]
    NoEmail {
        /// The stack's name.
        stack: String,
    },
    /// The SDK's credential chain found no credentials.
    #[error(
        "no AWS credentials found ({detail}). Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
         or AWS_PROFILE for a profile in ~/.aws/credentials or ~/.aws/config (run `aws sso \
         login` first for an SSO profile), or run where an instance or task role is available"
    )]
    NoCredentials {
        /// Why: the first sentence of the credential chain's error.
        detail: String,
    },
    /// AWS refused the credentials themselves (unknown key, bad signature, expired token).
    #[error(
        "AWS rejected the credentials ({code}: {message}). Check that the access key is \
         active and belongs to this account, that the secret key matches it, and that a \
         session token, if any, has not expired"
    )]
    BadCredentials {
        /// AWS's error code, such as `InvalidClientTokenId` or `ExpiredToken`.
        code: String,
        /// AWS's error message.
        message: String,
    },
    /// The credentials are valid but may not call an action the deployment needs.
    #[error(
        "permission denied: the credentials in use may not call {action} ({message}). Grant \
         {action} to this user or role (deploying needs CloudFormation, and CloudFormation uses \
         the same credentials to create the trail, log group, role, alarms, topic and queue), \
         or deploy with credentials that have it"
    )]
    AccessDenied {
        /// The IAM action denied, such as `cloudformation:CreateChangeSet`: the one AWS's
        /// message names, else the CloudFormation operation that was called.
        action: String,
        /// AWS's error message.
        message: String,
    },
    /// No answer from CloudFormation: a network failure or a timeout.
    #[error(
        "cannot reach the CloudFormation endpoint {endpoint} ({detail}). Check the network \
         (proxy, firewall, DNS), the region, and AWS_ENDPOINT_URL if it is set"
    )]
    Unreachable {
        /// The URL tried: `AWS_ENDPOINT_URL_CLOUDFORMATION`, else `AWS_ENDPOINT_URL`, else the
        /// region's public CloudFormation endpoint.
        endpoint: String,
        /// The underlying cause, such as a connection error or "timed out".
        detail: String,
    },
    /// Another operation is running on the stack.
    #[error(
        "stack {stack} is busy ({status}): another operation is running on it. Wait until it \
         ends (see the CloudFormation console or `aws cloudformation describe-stack-events`), \
         then run this again"
    )]
    StackBusy {
        /// The stack's name.
        stack: String,
        /// The stack's current status, one ending in `_IN_PROGRESS`.
        status: String,
    },
    /// The stack is in a failed state from which CloudFormation cannot update it.
    #[error("stack {stack} is in {status} and CloudFormation cannot update it as it is. {advice}")]
    StackStuck {
        /// The stack's name.
        stack: String,
        /// The stack's status: `ROLLBACK_FAILED`, `DELETE_FAILED` or `UPDATE_ROLLBACK_FAILED`.
        status: String,
        /// What the operator must do by hand before deploying again.
        advice: &'static str,
    },
    /// The creation, update or deletion ran and CloudFormation ended it in failure.
    ///
    /// Boxed: the failure carries several strings and errors travel by value.
    #[error("{0}")]
    StackFailed(Box<StackFailure>),
    /// The stack was still changing when the wait for it (`--timeout-minutes`) ran out.
    #[error(
        "gave up waiting after {waited:?}: stack {stack} is still {status}. CloudFormation \
         goes on by itself; run this again later to see the result"
    )]
    Timeout {
        /// The stack's name.
        stack: String,
        /// The stack's status when the wait ended, one ending in `_IN_PROGRESS`.
        status: String,
        /// How long the command waited.
        waited: Duration,
    },
    /// `--organization` with credentials of an account outside any organization.
    #[error(
        "account {account} is not in an organization, so its trail cannot be an organization \
         trail: run deploy --organization with credentials of the organization's management \
         account, or deploy without --organization (deploy.organization = false)"
    )]
    NoOrganization {
        /// The caller's account.
        account: String,
    },
    /// `--organization` with credentials of a member account.
    #[error(
        "account {account} is not the management account of organization {organization} \
         ({management} is): only the management account can create an organization trail; \
         run deploy --organization with credentials of account {management}"
    )]
    NotManagementAccount {
        /// The caller's account.
        account: String,
        /// The organization's management account.
        management: String,
        /// The organization's ID.
        organization: String,
    },
    /// `--organization` in an organization with consolidated billing only.
    #[error(
        "organization {organization} has the feature set {feature_set}, and an organization \
         trail needs all features: run `aws organizations enable-all-features` in the \
         management account (every member account must accept), then deploy again"
    )]
    NotAllFeatures {
        /// The organization's ID.
        organization: String,
        /// Its feature set, such as `CONSOLIDATED_BILLING`.
        feature_set: String,
    },
    /// `--organization` before CloudTrail's trusted access was enabled.
    #[error(
        "CloudTrail's trusted access is not enabled in organization {organization}, so \
         CloudTrail cannot make the trail an organization trail: run `aws organizations \
         enable-aws-service-access --service-principal cloudtrail.amazonaws.com` in the \
         management account, then deploy again"
    )]
    TrustedAccessMissing {
        /// The organization's ID.
        organization: String,
    },
    /// A StackSet operation ended in failure.
    #[error(
        "{action} of StackSet {stack_set} {status} (operation {operation}): {reason}. Fix the \
         cause in the accounts named and run the same deploy again (it updates the StackSet)"
    )]
    StackSetFailed {
        /// The StackSet's name.
        stack_set: String,
        /// What ran: CREATE, UPDATE or DELETE.
        action: String,
        /// How it ended: FAILED or STOPPED.
        status: String,
        /// The operation's ID.
        operation: String,
        /// Why, per account where CloudFormation says so.
        reason: String,
    },
    /// The request cannot work as given; the message says what to give instead.
    #[error("{0}")]
    Refused(String),
    /// A call other than CloudFormation's failed.
    #[error("{action} failed: {code}: {message}")]
    Call {
        /// The IAM action, such as `organizations:DescribeOrganization`.
        action: &'static str,
        /// AWS's error code (`Error` when it gave none).
        code: String,
        /// AWS's error message.
        message: String,
    },
    /// Any other failure of a CloudFormation call, or a change set that did not complete.
    #[error("CloudFormation {operation} failed: {code}: {message}")]
    Aws {
        /// The CloudFormation API operation, such as `DescribeStacks` or `CreateChangeSet`.
        operation: &'static str,
        /// AWS's error code (`Error` when it gave none), or the change set's status.
        code: String,
        /// AWS's error message, or the change set's status reason.
        message: String,
    },
}

/// A stack operation that CloudFormation ended in failure, with the first resource that failed.
#[derive(Debug)]
pub struct StackFailure {
    /// What was running: `creation`, `update` or `deletion`.
    pub operation: &'static str,
    /// The stack's name.
    pub stack: String,
    /// The stack's status when the operation ended, such as `ROLLBACK_COMPLETE`.
    pub status: String,
    /// The logical id of the first resource that failed; when no stack event records a
    /// failure, the stack itself (its name) stands in, here and in the fields below.
    pub resource: String,
    /// That resource's CloudFormation type, such as `AWS::CloudTrail::Trail`.
    pub resource_type: String,
    /// That resource's status in the failed event, such as `CREATE_FAILED`.
    pub resource_status: String,
    /// CloudFormation's status reason for the failure, or "no reason given".
    pub reason: String,
}

impl fmt::Display for StackFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of stack {} failed ({}): {} ({}) {}: {}",
            self.operation,
            self.stack,
            self.status,
            self.resource,
            self.resource_type,
            self.resource_status,
            self.reason
        )
    }
}

impl DeployError {
    /// A failed call of `action` (`service:Operation`) of a service other than
    /// CloudFormation; credentials and permission problems keep their own advice.
    pub(super) fn call(action: &'static str, error: AwsError) -> DeployError {
        match error.kind {
            Kind::Denied => DeployError::AccessDenied {
                action: denied_action(&error.message).unwrap_or_else(|| action.to_owned()),
                message: error.message,
            },
            Kind::Credentials => match error.code {
                Some(code) => DeployError::BadCredentials {
                    code,
                    message: error.message,
                },
                None => DeployError::NoCredentials {
                    detail: error.message,
                },
            },
            Kind::Unreachable => DeployError::Call {
                action,
                code: "Unreachable".to_owned(),
                message: format!(
                    "{}; check the network (proxy, firewall, DNS) and AWS_ENDPOINT_URL if it is \
                     set",
                    error.message
                ),
            },
            _ => DeployError::Call {
                action,
                code: error.code.unwrap_or_else(|| "Error".to_owned()),
                message: error.message,
            },
        }
    }
}

/// The endpoint the SDK talks to, for messages only (the SDK resolves it itself).
fn endpoint(region: &str) -> String {
    std::env::var("AWS_ENDPOINT_URL_CLOUDFORMATION")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|_| format!("https://cloudformation.{region}.amazonaws.com"))
}

/// The action named in an AccessDenied message ("... is not authorized to perform:
/// cloudformation:CreateChangeSet on resource ..."), if it names one.
fn denied_action(message: &str) -> Option<String> {
    let rest = message.split("perform: ").nth(1)?;
    let action: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == ':' || *c == '-')
        .collect();
    action.contains(':').then_some(action)
}

/// Turns an AWS failure of `operation` into the error the operator can act on.
pub(super) fn aws_failure(operation: &'static str, region: &str, error: AwsError) -> DeployError {
    match (error.kind, error.code) {
        (Kind::Unreachable, _) => DeployError::Unreachable {
            endpoint: endpoint(region),
            detail: error.message,
        },
        (Kind::Denied, _) => DeployError::AccessDenied {
            action: denied_action(&error.message)
                .unwrap_or_else(|| format!("cloudformation:{operation}")),
            message: error.message,
        },
        (Kind::Credentials, Some(code)) => DeployError::BadCredentials {
            code,
            message: error.message,
        },
        (Kind::Credentials, None) => DeployError::NoCredentials {
            detail: error.message,
        },
        (_, code) => DeployError::Aws {
            operation,
            code: code.unwrap_or_else(|| "Error".to_owned()),
            message: error.message,
        },
    }
}

pub(super) fn sdk_error<E>(
    operation: &'static str,
    region: &str,
    error: SdkError<E, HttpResponse>,
) -> DeployError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    aws_failure(operation, region, AwsError::read(&error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_names_the_missing_action() {
        let denied = |operation, code, message: &str| {
            aws_failure(
                operation,
                crate::aws::IAM_EVENTS_REGION,
                AwsError::answered(Some(code), message, Some(400)),
            )
        };
        let error = denied(
            "CreateChangeSet",
            "AccessDenied",
            "User: arn:aws:iam::123456789012:user/ops is not authorized to perform: \
             cloudformation:CreateChangeSet on resource: arn:aws:cloudformation:us-east-1:\
             123456789012:stack/iamwatchd/* because no identity-based policy allows the \
             cloudformation:CreateChangeSet action",
        );
        match &error {
            DeployError::AccessDenied { action, .. } => {
                assert_eq!(action, "cloudformation:CreateChangeSet")
            }
            other => panic!("{other:?}"),
        }
        // Without the usual sentence, the operation we called is the action.
        match denied("DescribeStacks", "AccessDeniedException", "denied") {
            DeployError::AccessDenied { action, .. } => {
                assert_eq!(action, "cloudformation:DescribeStacks")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            denied("DescribeStacks", "InvalidClientTokenId", "bad token"),
            DeployError::BadCredentials { .. }
        ));
    }
}
