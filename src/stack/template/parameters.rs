//! The template's parameters (each with its default and the values CloudFormation accepts)
//! and the conditions built on them.

use serde_json::{json, Map, Value};

use super::{is_true, not_empty, reference};
use crate::stack::names::{
    param, ALARM_PERIOD_SECONDS_ALLOWED, DEFAULT_ALARM_PERIOD_SECONDS, DEFAULT_ALARM_THRESHOLD,
    DEFAULT_CIS_FILTER, DEFAULT_DAEMON_QUEUE, DEFAULT_LOG_RETENTION_DAYS,
    DEFAULT_ORGANIZATION_TRAIL, DEFAULT_QUEUE_AGE_THRESHOLD_SECONDS, DEFAULT_TAMPERING_ALARM,
    KMS_KEY_ARN_PATTERN, LOG_RETENTION_DAYS_ALLOWED, MIN_ALARM_THRESHOLD, ORGANIZATION_ID_PATTERN,
};

fn boolean_parameter(description: &str, default: bool) -> Value {
    json!({
        "Type": "String",
        "AllowedValues": ["true", "false"],
        "Default": default.to_string(),
        "Description": description,
    })
}

/// The template's `Parameters` section: each parameter with its type, default and bounds.
pub(crate) fn parameters() -> Value {
    let mut parameters = Map::new();
    for (index, name) in param::EMAILS.iter().enumerate() {
        let mut parameter = json!({
            "Type": "String",
            "Description": if index == 0 {
                "E-mail address that receives the alarms, or with the daemon queue the daemon's \
                 messages (it must confirm the subscription)."
            } else {
                "Another e-mail address that receives the alarms (optional)."
            },
            "MaxLength": 254,
            "AllowedPattern": if index == 0 { "^[^@\\s,]+@[^@\\s,]+\\.[^@\\s,]+$" } else { "^([^@\\s,]+@[^@\\s,]+\\.[^@\\s,]+)?$" },
            "ConstraintDescription": "an e-mail address like admin@example.com",
        });
        if index > 0 {
            parameter["Default"] = json!("");
        }
        parameters.insert((*name).to_owned(), parameter);
    }
    parameters.insert(
        param::KMS_KEY.to_owned(),
        json!({
            "Type": "String",
            "Default": "",
            "Description": "ARN of an existing symmetric customer-managed KMS key in this region for \
                the trail's log files, the log group, both topics and the queue; its key policy \
                must grant what the created key's policy grants (CloudTrail, CloudWatch Logs, SNS, \
                CloudWatch alarms). Empty: the stack creates a key with rotation on.",
            "AllowedPattern": KMS_KEY_ARN_PATTERN,
            "ConstraintDescription": "a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), or empty",
        }),
    );
    parameters.insert(
        param::BUCKET.to_owned(),
        json!({
            "Type": "String",
            "Default": "",
            "Description": "Existing S3 bucket for the trail's log files; its policy must let \
                cloudtrail.amazonaws.com call s3:GetBucketAcl and s3:PutObject. Empty: the stack \
                creates an encrypted, private bucket with that policy (kept when the stack is deleted).",
            "AllowedPattern": "^([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?$",
            "ConstraintDescription": "an S3 bucket name, or empty",
        }),
    );
    parameters.insert(
        param::LOG_RETENTION_DAYS.to_owned(),
        json!({
            "Type": "Number",
            "Default": DEFAULT_LOG_RETENTION_DAYS,
            "AllowedValues": LOG_RETENTION_DAYS_ALLOWED,
            "Description": "Days CloudTrail records stay in the log group (and, in a bucket the stack created, in S3).",
        }),
    );
    parameters.insert(
        param::ALARM_PERIOD.to_owned(),
        json!({
            "Type": "Number",
            "Default": DEFAULT_ALARM_PERIOD_SECONDS,
            "AllowedValues": ALARM_PERIOD_SECONDS_ALLOWED,
            "Description": "Seconds over which the alarms count changes.",
        }),
    );
    parameters.insert(
        param::ALARM_THRESHOLD.to_owned(),
        json!({
            "Type": "Number",
            "Default": DEFAULT_ALARM_THRESHOLD,
            "MinValue": MIN_ALARM_THRESHOLD,
            "Description": "Changes within one period that set off the alarm.",
        }),
    );
    parameters.insert(
        param::CIS_FILTER.to_owned(),
        boolean_parameter(
            "Add the exact CIS 4.4 / Security Hub CloudWatch.4 metric filter and its alarm \
             (Security Hub accepts only that exact pattern).",
            DEFAULT_CIS_FILTER,
        ),
    );
    parameters.insert(
        param::TAMPERING_ALARM.to_owned(),
        boolean_parameter(
            "Add a filter and an alarm for calls that blind the monitoring (StopLogging, \
             DeleteTrail, DeleteAlarms, DeleteTopic, ...).",
            DEFAULT_TAMPERING_ALARM,
        ),
    );
    parameters.insert(
        param::DAEMON_QUEUE.to_owned(),
        boolean_parameter(
            "Daemon mode: the alarm topic feeds an SQS queue the iamwatchd daemon reads, and \
             the e-mail addresses subscribe to a separate notifications topic the daemon \
             publishes its detailed messages to. false: alarm-only mode, the alarm topic \
             e-mails the addresses directly.",
            DEFAULT_DAEMON_QUEUE,
        ),
    );
    parameters.insert(
        param::QUEUE_AGE_THRESHOLD.to_owned(),
        json!({
            "Type": "Number",
            "Default": DEFAULT_QUEUE_AGE_THRESHOLD_SECONDS,
            "MinValue": 60,
            "Description": "With the daemon queue: e-mail the humans directly when an alarm \
                message has waited this many seconds (the daemon stopped reading the queue).",
        }),
    );
    parameters.insert(
        param::ORGANIZATION_TRAIL.to_owned(),
        boolean_parameter(
            "Make the trail an organization trail (deploy in the organization's management \
             account, with CloudTrail's trusted access enabled): every member account's \
             records reach the one log group, its metric filters and alarms.",
            DEFAULT_ORGANIZATION_TRAIL,
        ),
    );
    parameters.insert(
        param::ORGANIZATION_ID.to_owned(),
        json!({
            "Type": "String",
            "Default": "",
            "Description": "With the organization trail: the organization's ID (o-...), for the \
                created bucket's policy (members' log files go to AWSLogs/<organization ID>/).",
            "AllowedPattern": ORGANIZATION_ID_PATTERN,
            "ConstraintDescription": "an organization ID (o-abcd123456), or empty",
        }),
    );
    Value::Object(parameters)
}

pub(super) fn conditions() -> Value {
    json!({
        "CreateBucket": { "Fn::Equals": [reference(param::BUCKET), ""] },
        "CreateKey": { "Fn::Equals": [reference(param::KMS_KEY), ""] },
        "HasEmail2": not_empty(param::EMAILS[1]),
        "HasEmail3": not_empty(param::EMAILS[2]),
        "CisFilter": is_true(param::CIS_FILTER),
        "TamperingAlarm": is_true(param::TAMPERING_ALARM),
        "DaemonQueue": is_true(param::DAEMON_QUEUE),
        "OrganizationTrail": is_true(param::ORGANIZATION_TRAIL),
    })
}
