//! The template's resources (trail, log group, metric filters, alarms, topics, queue; the key
//! in `key`, the buckets in `buckets`) and its outputs. The metric filters' patterns come from
//! the rule catalogue; every resource that holds data is encrypted with the stack's key.

use serde_json::{json, Map, Value};

use super::buckets::bucket_resources;
use super::key::{key_arn, key_resources};
use super::{get_att, reference, sub};
use crate::rules::{self, Category};
use crate::stack::names::{alarm_suffix, metric, output, param, CREATED_BUCKET_LOGICAL_ID};

/// The metric every filter of the stack counts into lives in a namespace of its own stack, so
/// two stacks in one account never mix their counts.
const METRIC_NAMESPACE: &str = "iamwatchd/${AWS::StackName}";

/// The bucket name the trail writes to: the created bucket or the given one.
fn bucket_name() -> Value {
    json!({ "Fn::If": ["CreateBucket", reference(CREATED_BUCKET_LOGICAL_ID), reference(param::BUCKET)] })
}

/// A tag on the trail naming its bucket. It is there for the dependency more than for the
/// information: CloudTrail checks the bucket policy when the trail is created, so the trail must
/// wait for the policy, and `DependsOn` cannot name a resource that a condition may leave out,
/// while a `Ref` inside `Fn::If` can. (The `Ref` of an `AWS::S3::BucketPolicy` is its bucket.)
fn trail_bucket_tag() -> Value {
    json!({
        "Key": "iamwatchd:log-bucket",
        "Value": { "Fn::If": ["CreateBucket", reference("TrailBucketPolicy"), reference(param::BUCKET)] },
    })
}

/// The alarms on the catalogue's groups beside IAM changes: (category, logical-id prefix,
/// condition, alarm name suffix, description). One metric filter per pattern of the group
/// ([`rules::group_patterns`]: at most 1,024 characters each), all counting into the group's
/// metric, and one alarm on it.
#[rustfmt::skip]
const GROUP_ALARMS: [(Category, &str, Option<&str>, &str, &str); 5] = [
    (Category::Tampering, "Tampering", Some("TamperingAlarm"), alarm_suffix::TAMPERING,
        "Someone changed or removed part of the monitoring (trail, filter, alarm, topic, queue, bucket, key, stack) or of GuardDuty, Security Hub, Config, Access Analyzer, flow logs."),
    (Category::IdentityCenter, "IdentityCenter", None, alarm_suffix::IDENTITY_CENTER,
        "Someone changed IAM Identity Center: permission sets, account assignments, users, groups, identity source or MFA."),
    (Category::Organizations, "Organizations", None, alarm_suffix::ORGANIZATIONS,
        "Someone changed the organization's policies (SCP, RCP, ...), accounts or delegated administrators."),
    (Category::RootUse, "RootUse", None, alarm_suffix::ROOT_USE,
        "The root user was used (CIS 4.3)."),
    (Category::ConsoleSignIn, "ConsoleSignIn", None, alarm_suffix::CONSOLE_SIGN_IN,
        "An IAM user signed in to the console without MFA (CIS 4.2)."),
];

/// Metric filters counting matches of each of `patterns` into `metric` (`{prefix}Filter`,
/// `{prefix}Filter2`, …), and an alarm on that metric that notifies the topic.
fn filter_and_alarm(
    resources: &mut Map<String, Value>,
    prefix: &str,
    condition: Option<&str>,
    patterns: Vec<String>,
    metric: &str,
    suffix: &str,
    description: &str,
) {
    for (index, pattern) in patterns.into_iter().enumerate() {
        let mut filter = metric_filter(pattern, metric);
        if let Some(condition) = condition {
            filter["Condition"] = json!(condition);
        }
        let number = if index == 0 {
            String::new()
        } else {
            (index + 1).to_string()
        };
        resources.insert(format!("{prefix}Filter{number}"), filter);
    }
    let mut alarm = alarm(metric, suffix, description);
    if let Some(condition) = condition {
        alarm["Condition"] = json!(condition);
    }
    resources.insert(format!("{prefix}Alarm"), alarm);
}

/// A metric filter counting matches of `pattern` into `metric`.
fn metric_filter(pattern: String, metric: &str) -> Value {
    json!({
        "Type": "AWS::Logs::MetricFilter",
        "Properties": {
            "LogGroupName": reference("LogGroup"),
            "FilterPattern": pattern,
            "MetricTransformations": [{
                "MetricName": metric,
                "MetricNamespace": sub(METRIC_NAMESPACE),
                "MetricValue": "1",
            }],
        },
    })
}

/// An alarm on `metric` that notifies the topic.
fn alarm(metric: &str, suffix: &str, description: &str) -> Value {
    json!({
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": sub(&format!("${{AWS::StackName}}-{suffix}")),
            "AlarmDescription": description,
            "MetricName": metric,
            "Namespace": sub(METRIC_NAMESPACE),
            "Statistic": "Sum",
            "Period": reference(param::ALARM_PERIOD),
            "EvaluationPeriods": 1,
            "Threshold": reference(param::ALARM_THRESHOLD),
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            // A period without changes is "OK", so the next burst of changes alarms again.
            "TreatMissingData": "notBreaching",
            "AlarmActions": [reference("Topic")],
        },
    })
}

pub(super) fn resources() -> Value {
    let mut resources = Map::new();
    key_resources(&mut resources);
    bucket_resources(&mut resources);
    resources.insert(
        "LogGroup".to_owned(),
        json!({
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "RetentionInDays": reference(param::LOG_RETENTION_DAYS),
                "KmsKeyId": key_arn(),
            },
        }),
    );
    resources.insert(
        "TrailLogsRole".to_owned(),
        json!({
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "Lets the iamwatchd trail write its records to its own log group, nothing else.",
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Principal": { "Service": "cloudtrail.amazonaws.com" },
                        "Action": "sts:AssumeRole",
                    }],
                },
                "Policies": [{
                    "PolicyName": "write-trail-log-group",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Effect": "Allow",
                            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                            "Resource": get_att("LogGroup", "Arn"),
                        }],
                    },
                }],
            },
        }),
    );
    resources.insert(
        "Trail".to_owned(),
        json!({
            "Type": "AWS::CloudTrail::Trail",
            "Properties": {
                // A fixed name, so the bucket policy can name the trail without a cycle.
                "TrailName": reference("AWS::StackName"),
                "IsLogging": true,
                "IsMultiRegionTrail": true,
                "IncludeGlobalServiceEvents": true,
                "EnableLogFileValidation": true,
                "IsOrganizationTrail": { "Fn::If": ["OrganizationTrail", true, false] },
                "KMSKeyId": key_arn(),
                "S3BucketName": bucket_name(),
                "Tags": [trail_bucket_tag()],
                "CloudWatchLogsLogGroupArn": get_att("LogGroup", "Arn"),
                "CloudWatchLogsRoleArn": get_att("TrailLogsRole", "Arn"),
            },
        }),
    );
    filter_and_alarm(
        &mut resources,
        "IamChanges",
        None,
        vec![rules::iam_metric_filter_pattern()],
        metric::IAM_CHANGES,
        alarm_suffix::IAM_CHANGES,
        "Someone changed IAM (iamwatchd reports who and what).",
    );
    filter_and_alarm(
        &mut resources,
        "Cis",
        Some("CisFilter"),
        vec![rules::CIS_4_4_FILTER_PATTERN.to_owned()],
        metric::CIS,
        alarm_suffix::CIS,
        "CIS 4.4 / Security Hub CloudWatch.4: an IAM policy changed.",
    );
    for (category, prefix, condition, suffix, description) in GROUP_ALARMS {
        filter_and_alarm(
            &mut resources,
            prefix,
            condition,
            rules::group_patterns(category),
            category.metric(),
            suffix,
            description,
        );
    }
    resources.insert(
        "Topic".to_owned(),
        json!({
            "Type": "AWS::SNS::Topic",
            "Properties": { "DisplayName": "iamwatchd", "KmsMasterKeyId": key_arn() },
        }),
    );
    // Daemon mode: humans hear the daemon (one detailed message per change, through this
    // topic or SMTP) and the dead-man's switch, never the bare alarm as well.
    resources.insert(
        "NotificationTopic".to_owned(),
        json!({
            "Type": "AWS::SNS::Topic",
            "Condition": "DaemonQueue",
            "Properties": { "DisplayName": "iamwatchd", "KmsMasterKeyId": key_arn() },
        }),
    );
    for (index, name) in param::EMAILS.iter().enumerate() {
        let mut subscription = json!({
            "Type": "AWS::SNS::Subscription",
            "Properties": {
                "TopicArn": { "Fn::If": ["DaemonQueue", reference("NotificationTopic"), reference("Topic")] },
                "Protocol": "email",
                "Endpoint": reference(name),
            },
        });
        if index > 0 {
            subscription["Condition"] = json!(format!("HasEmail{}", index + 1));
        }
        resources.insert(format!("EmailSubscription{}", index + 1), subscription);
    }
    resources.insert(
        "DaemonQueue".to_owned(),
        json!({
            "Type": "AWS::SQS::Queue",
            "Condition": "DaemonQueue",
            "Properties": {
                // Two weeks: a stopped daemon loses nothing it can be restarted within.
                "MessageRetentionPeriod": 1209600,
                "KmsMasterKeyId": key_arn(),
                // A data key serves 5 minutes of messages: fewer KMS calls, for SNS and the
                // daemon alike (the default; written so the choice is visible).
                "KmsDataKeyReusePeriodSeconds": 300,
            },
        }),
    );
    resources.insert(
        "DaemonQueuePolicy".to_owned(),
        json!({
            "Type": "AWS::SQS::QueuePolicy",
            "Condition": "DaemonQueue",
            "Properties": {
                "Queues": [reference("DaemonQueue")],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Sid": "AlarmTopicOnly",
                        "Effect": "Allow",
                        "Principal": { "Service": "sns.amazonaws.com" },
                        "Action": "sqs:SendMessage",
                        "Resource": get_att("DaemonQueue", "Arn"),
                        "Condition": { "ArnEquals": { "aws:SourceArn": reference("Topic") } },
                    }],
                },
            },
        }),
    );
    resources.insert(
        "DaemonQueueSubscription".to_owned(),
        json!({
            "Type": "AWS::SNS::Subscription",
            "Condition": "DaemonQueue",
            "DependsOn": ["DaemonQueuePolicy"],
            "Properties": {
                "TopicArn": reference("Topic"),
                "Protocol": "sqs",
                "Endpoint": get_att("DaemonQueue", "Arn"),
            },
        }),
    );
    resources.insert(
        "DaemonQueueAgeAlarm".to_owned(),
        json!({
            "Type": "AWS::CloudWatch::Alarm",
            "Condition": "DaemonQueue",
            "Properties": {
                "AlarmName": sub(&format!("${{AWS::StackName}}-{}", alarm_suffix::DAEMON_NOT_READING)),
                "AlarmDescription": "An alarm message has waited in the daemon's queue too long: \
                    iamwatchd run stopped reading it (or cannot read one message; see its log). \
                    IAM changes are not being reported in detail.",
                "Namespace": "AWS/SQS",
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{ "Name": "QueueName", "Value": get_att("DaemonQueue", "QueueName") }],
                "Statistic": "Maximum",
                "Period": 60,
                "EvaluationPeriods": 1,
                "Threshold": reference(param::QUEUE_AGE_THRESHOLD),
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                // SQS stops publishing for a queue idle for hours: an empty queue is healthy.
                "TreatMissingData": "notBreaching",
                "AlarmActions": [reference("NotificationTopic")],
                "OKActions": [reference("NotificationTopic")],
            },
        }),
    );
    Value::Object(resources)
}

pub(super) fn outputs() -> Value {
    let out =
        |description: &str, value: Value| json!({ "Description": description, "Value": value });
    let mut outputs = json!({
        (output::TOPIC_ARN): out("SNS topic the alarms notify", reference("Topic")),
        (output::ALARM_NAME): out("Alarm on IAM changes", reference("IamChangesAlarm")),
        (output::ALARM_ARN): out("ARN of the alarm on IAM changes", get_att("IamChangesAlarm", "Arn")),
        (output::LOG_GROUP_NAME): out("Log group the trail delivers to", reference("LogGroup")),
        (output::TRAIL_ARN): out("The trail", get_att("Trail", "Arn")),
        (output::KMS_KEY_ARN): out("KMS key encrypting the trail's log files, the log group, the topics and the queue", key_arn()),
        (output::BUCKET_NAME): out("S3 bucket holding the trail's log files", bucket_name()),
        (output::NOTIFICATION_TOPIC_ARN): out("SNS topic humans subscribe to in daemon mode: the daemon's sns.topic_arn", reference("NotificationTopic")),
        (output::DEAD_MANS_SWITCH_ALARM_NAME): out("Alarm when the daemon stops reading its queue", reference("DaemonQueueAgeAlarm")),
        (output::QUEUE_URL): out("SQS queue the daemon reads alarms from", reference("DaemonQueue")),
        (output::QUEUE_ARN): out("ARN of the daemon's SQS queue", get_att("DaemonQueue", "Arn")),
        (output::CIS_ALARM_NAME): out("CIS 4.4 alarm", reference("CisAlarm")),
        (output::TAMPERING_ALARM_NAME): out("Alarm on tampering with the monitoring", reference("TamperingAlarm")),
    });
    outputs[output::QUEUE_URL]["Condition"] = json!("DaemonQueue");
    outputs[output::NOTIFICATION_TOPIC_ARN]["Condition"] = json!("DaemonQueue");
    outputs[output::DEAD_MANS_SWITCH_ALARM_NAME]["Condition"] = json!("DaemonQueue");
    outputs[output::QUEUE_ARN]["Condition"] = json!("DaemonQueue");
    outputs[output::CIS_ALARM_NAME]["Condition"] = json!("CisFilter");
    outputs[output::TAMPERING_ALARM_NAME]["Condition"] = json!("TamperingAlarm");
    outputs
}
