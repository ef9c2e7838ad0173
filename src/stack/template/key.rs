//! The stack's customer-managed KMS key (or the one the operator names with `KmsKeyArn`),
//! which encrypts the trail's log files, the log group, both SNS topics and the daemon's
//! queue, and its key policy.
//!
//! The key policy grants each service exactly what it needs for this stack, with the
//! conditions AWS documents:
//!
//! - the account (`:root`): everything, so the account's administrators manage the key through
//!   IAM and no one is locked out (AWS's default key policy statement);
//! - CloudTrail: `kms:GenerateDataKey*` for this stack's trail only (`aws:SourceArn` and the
//!   `aws:cloudtrail:arn` encryption context), `kms:DescribeKey`;
//! - CloudWatch Logs of this region: the data-key calls for log groups of this account and
//!   region (the encryption context `aws:logs:arn`; the log group's own ARN would be a cycle,
//!   since the group names the key);
//! - SNS: `kms:GenerateDataKey*` and `kms:Decrypt`, to deliver to the encrypted queue, from
//!   topics of this account and region;
//! - CloudWatch alarms: the same two calls, unconditioned as AWS documents it. Without this
//!   grant an alarm cannot publish to an encrypted topic, and nothing says so: the alarm shows
//!   ALARM and nobody hears it.
//!
//! The statement ids are the contract with `iamwatchd check`, which finds each grant by its
//! service principal and actions (see [`crate::stack::names::key_grants`]).

use serde_json::{json, Value};

use super::{get_att, reference, sub};
use crate::stack::names::{key_grants, param, CREATED_KEY_LOGICAL_ID};

/// The ARN of the key every encrypted resource uses: the created one or the given one.
pub(super) fn key_arn() -> Value {
    json!({ "Fn::If": ["CreateKey", get_att(CREATED_KEY_LOGICAL_ID, "Arn"), reference(param::KMS_KEY)] })
}

/// The ARN of this stack's trail (named after the stack, see the `Trail` resource).
pub(super) const TRAIL_ARN: &str =
    "arn:${AWS::Partition}:cloudtrail:${AWS::Region}:${AWS::AccountId}:trail/${AWS::StackName}";

/// One statement of the key policy granting a service principal `actions`.
fn grant(sid: &str, principal: Value, actions: &[&str], condition: Value) -> Value {
    let mut statement = json!({
        "Sid": sid,
        "Effect": "Allow",
        "Principal": { "Service": principal },
        "Action": actions,
        "Resource": "*",
    });
    if !condition.is_null() {
        statement["Condition"] = condition;
    }
    statement
}

/// The key policy of the created key (and what `check` expects of a given one).
pub(super) fn key_policy() -> Value {
    let same_account = json!({ "aws:SourceAccount": sub("${AWS::AccountId}") });
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministrators",
                "Effect": "Allow",
                "Principal": { "AWS": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root") },
                "Action": "kms:*",
                "Resource": "*",
            },
            grant(
                "CloudTrailEncryptsThisTrailsLogs",
                json!(key_grants::CLOUDTRAIL),
                key_grants::CLOUDTRAIL_ACTIONS,
                json!({
                    "StringEquals": { "aws:SourceArn": sub(TRAIL_ARN) },
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn":
                            sub("arn:${AWS::Partition}:cloudtrail:*:${AWS::AccountId}:trail/*"),
                    },
                }),
            ),
            grant(
                "CloudTrailDescribesTheKey",
                json!(key_grants::CLOUDTRAIL),
                &["kms:DescribeKey"],
                json!({ "StringEquals": { "aws:SourceArn": sub(TRAIL_ARN) } }),
            ),
            grant(
                "CloudWatchLogsEncryptsTheLogGroup",
                sub(key_grants::LOGS),
                key_grants::LOGS_ACTIONS,
                json!({
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn":
                            sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"),
                    },
                }),
            ),
            grant(
                "SnsDeliversToTheEncryptedQueue",
                json!(key_grants::SNS),
                key_grants::PUBLISH_ACTIONS,
                json!({
                    "StringEquals": same_account,
                    "ArnLike": {
                        "aws:SourceArn": sub("arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:*"),
                    },
                }),
            ),
            // Without conditions, as AWS documents this grant: a condition CloudWatch's calls
            // do not carry (kms:CallerAccount is known not to hold) would silence every alarm,
            // the failure this grant exists to prevent. Who may publish to the topics is the
            // topics' own access policy's business (this account only).
            grant(
                "CloudWatchAlarmsPublishToTheEncryptedTopics",
                json!(key_grants::CLOUDWATCH),
                key_grants::PUBLISH_ACTIONS,
                Value::Null,
            ),
        ],
    })
}

/// The key, only when no key is given.
pub(super) fn key_resources(resources: &mut serde_json::Map<String, Value>) {
    resources.insert(
        CREATED_KEY_LOGICAL_ID.to_owned(),
        json!({
            "Type": "AWS::KMS::Key",
            "Condition": "CreateKey",
            // The trail's log files in the retained bucket stay readable only while the key
            // exists: deleting the stack must not take it along.
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "Description": sub("iamwatchd ${AWS::StackName}: encrypts the trail's log files, its log group, the alarm topics and the daemon's queue"),
                "EnableKeyRotation": true,
                "KeyPolicy": key_policy(),
            },
        }),
    );
}
