//! The CloudFormation template of the alarm path (the safety net beside the daemon).
//!
//! Trail (all regions, global service events, log file validation) → CloudWatch Logs group
//! (through a role that may only write to that group) → metric filter → alarm → SNS topic →
//! e-mail, plus optional extras chosen by parameter: the exact CIS 4.4 filter and its alarm, an
//! alarm on tampering with the monitoring, and the SQS queue through which the daemon hears the
//! alarm.
//!
//! Two deployment modes: **alarm-only** (`EnableDaemonQueue=false`): the alarm topic e-mails
//! the humans. **With daemon** (the default): the alarm topic feeds only the daemon's queue;
//! the humans subscribe to a separate notifications topic that the daemon publishes its
//! detailed messages to (or get them by SMTP), so they never receive both the bare alarm and
//! the detailed message for one change; a dead-man's switch alarm on the queue's age of oldest
//! message e-mails them through that topic when the daemon stops reading. The trail's S3 bucket is either one the operator names or one the stack creates with
//! the bucket policy CloudTrail needs (the missing policy is what trips new users up first).
//!
//! The template is built in code rather than kept as a hand-edited file because its metric
//! filter patterns come from the rule catalogue ([`crate::rules`]): the filter and the daemon's
//! matcher can then never disagree. `deploy/iamwatchd.template.json` is the output of
//! `iamwatchd template`, committed for people who deploy with other tools; a test fails when
//! it is stale.

use serde_json::{json, Map, Value};

use crate::rules;

/// Parameter names, shared with [`crate::deploy`] so the CLI and the template cannot drift.
pub mod param {
    /// The e-mail addresses that receive the alarms: one required, two optional. Separate
    /// parameters rather than one list because CloudFormation conditions cannot count the
    /// items of a list, and each address needs its own subscription resource.
    pub const EMAILS: [&str; 3] = [
        "NotificationEmail1",
        "NotificationEmail2",
        "NotificationEmail3",
    ];
    pub const BUCKET: &str = "TrailBucketName";
    pub const LOG_RETENTION_DAYS: &str = "LogRetentionDays";
    pub const ALARM_PERIOD: &str = "AlarmPeriodSeconds";
    pub const ALARM_THRESHOLD: &str = "AlarmThreshold";
    pub const CIS_FILTER: &str = "EnableCisFilter";
    pub const TAMPERING_ALARM: &str = "EnableTamperingAlarm";
    pub const DAEMON_QUEUE: &str = "EnableDaemonQueue";
    pub const QUEUE_AGE_THRESHOLD: &str = "DaemonQueueMaxAgeSeconds";
}

/// Output names, read back by [`crate::deploy`] and by the daemon's configuration.
pub mod output {
    pub const TOPIC_ARN: &str = "TopicArn";
    pub const NOTIFICATION_TOPIC_ARN: &str = "NotificationTopicArn";
    pub const DEAD_MANS_SWITCH_ALARM_NAME: &str = "DaemonQueueAgeAlarmName";
    pub const ALARM_NAME: &str = "AlarmName";
    pub const ALARM_ARN: &str = "AlarmArn";
    pub const LOG_GROUP_NAME: &str = "LogGroupName";
    pub const TRAIL_ARN: &str = "TrailArn";
    pub const QUEUE_URL: &str = "QueueUrl";
    pub const QUEUE_ARN: &str = "QueueArn";
    pub const BUCKET_NAME: &str = "BucketName";
    pub const CIS_ALARM_NAME: &str = "CisAlarmName";
    pub const TAMPERING_ALARM_NAME: &str = "TamperingAlarmName";
}

/// Metric names of the filters: the alarm path reads `Trigger.MetricName` to know which
/// pattern an alarm counts.
pub mod metric {
    pub const IAM_CHANGES: &str = "IAMChanges";
    pub const CIS: &str = "IAMPolicyChanges";
    pub const TAMPERING: &str = "MonitoringTampering";
}

/// Logical id of the bucket the stack creates when no bucket is given; `deploy --delete` looks
/// for it to tell the operator that it is retained.
pub const CREATED_BUCKET_LOGICAL_ID: &str = "TrailBucket";

/// How many e-mail addresses the template can subscribe.
pub const MAX_EMAILS: usize = param::EMAILS.len();

/// Defaults of the parameters, also used by the CLI's help text.
pub const DEFAULT_LOG_RETENTION_DAYS: u32 = 365;
pub const DEFAULT_ALARM_PERIOD_SECONDS: u32 = 300;
pub const DEFAULT_ALARM_THRESHOLD: u32 = 1;
/// The dead-man's switch: an alarm message older than this means the daemon stopped reading.
pub const DEFAULT_QUEUE_AGE_THRESHOLD_SECONDS: u32 = 900;
pub const DEFAULT_CIS_FILTER: bool = false;
pub const DEFAULT_TAMPERING_ALARM: bool = true;
pub const DEFAULT_DAEMON_QUEUE: bool = true;

/// The alarm periods the template offers. CloudWatch itself takes 10, 30 or any multiple of
/// 60 seconds, but a CloudFormation parameter cannot say "multiple of 60", so the template
/// lists the useful ones and CloudFormation refuses anything else.
pub const ALARM_PERIOD_SECONDS_ALLOWED: [u32; 9] = [10, 30, 60, 120, 300, 600, 900, 1800, 3600];

/// The smallest alarm threshold: at 0 the alarm would fire on every period, changes or not.
pub const MIN_ALARM_THRESHOLD: u32 = 1;

/// The retention periods CloudWatch Logs accepts (PutRetentionPolicy).
pub const LOG_RETENTION_DAYS_ALLOWED: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// The metric every filter of the stack counts into lives in a namespace of its own stack, so
/// two stacks in one account never mix their counts.
const METRIC_NAMESPACE: &str = "iamwatchd/${AWS::StackName}";

fn reference(name: &str) -> Value {
    json!({ "Ref": name })
}

fn get_att(resource: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [resource, attribute] })
}

fn sub(text: &str) -> Value {
    json!({ "Fn::Sub": text })
}

fn is_true(parameter: &str) -> Value {
    json!({ "Fn::Equals": [reference(parameter), "true"] })
}

fn not_empty(parameter: &str) -> Value {
    json!({ "Fn::Not": [{ "Fn::Equals": [reference(parameter), ""] }] })
}

fn boolean_parameter(description: &str, default: bool) -> Value {
    json!({
        "Type": "String",
        "AllowedValues": ["true", "false"],
        "Default": default.to_string(),
        "Description": description,
    })
}

fn parameters() -> Value {
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
    Value::Object(parameters)
}

fn conditions() -> Value {
    json!({
        "CreateBucket": { "Fn::Equals": [reference(param::BUCKET), ""] },
        "HasEmail2": not_empty(param::EMAILS[1]),
        "HasEmail3": not_empty(param::EMAILS[2]),
        "CisFilter": is_true(param::CIS_FILTER),
        "TamperingAlarm": is_true(param::TAMPERING_ALARM),
        "DaemonQueue": is_true(param::DAEMON_QUEUE),
    })
}

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

/// A metric filter counting matches of `pattern` into `metric`, and an alarm on that metric
/// that notifies the topic.
fn filter_and_alarm(
    resources: &mut Map<String, Value>,
    prefix: &str,
    condition: Option<&str>,
    pattern: String,
    metric: &str,
    alarm_suffix: &str,
    description: &str,
) {
    let mut filter = json!({
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
    });
    let mut alarm = json!({
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": sub(&format!("${{AWS::StackName}}-{alarm_suffix}")),
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
    });
    if let Some(condition) = condition {
        filter["Condition"] = json!(condition);
        alarm["Condition"] = json!(condition);
    }
    resources.insert(format!("{prefix}Filter"), filter);
    resources.insert(format!("{prefix}Alarm"), alarm);
}

fn resources() -> Value {
    let mut resources = Map::new();
    resources.insert(
        CREATED_BUCKET_LOGICAL_ID.to_owned(),
        json!({
            "Type": "AWS::S3::Bucket",
            "Condition": "CreateBucket",
            // The logs are the audit record: deleting the stack must not delete them.
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        { "ServerSideEncryptionByDefault": { "SSEAlgorithm": "AES256" } }
                    ],
                },
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": true,
                    "BlockPublicPolicy": true,
                    "IgnorePublicAcls": true,
                    "RestrictPublicBuckets": true,
                },
                "LifecycleConfiguration": {
                    "Rules": [{
                        "Id": "expire-cloudtrail-logs",
                        "Status": "Enabled",
                        "ExpirationInDays": reference(param::LOG_RETENTION_DAYS),
                        "AbortIncompleteMultipartUpload": { "DaysAfterInitiation": 7 },
                    }],
                },
            },
        }),
    );
    // What CloudTrail needs (and nothing more), limited to this stack's trail.
    let trail_arn =
        "arn:${AWS::Partition}:cloudtrail:${AWS::Region}:${AWS::AccountId}:trail/${AWS::StackName}";
    resources.insert(
        "TrailBucketPolicy".to_owned(),
        json!({
            "Type": "AWS::S3::BucketPolicy",
            "Condition": "CreateBucket",
            "Properties": {
                "Bucket": reference(CREATED_BUCKET_LOGICAL_ID),
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "CloudTrailAclCheck",
                            "Effect": "Allow",
                            "Principal": { "Service": "cloudtrail.amazonaws.com" },
                            "Action": "s3:GetBucketAcl",
                            "Resource": get_att(CREATED_BUCKET_LOGICAL_ID, "Arn"),
                            "Condition": { "StringEquals": { "aws:SourceArn": sub(trail_arn) } },
                        },
                        {
                            "Sid": "CloudTrailWrite",
                            "Effect": "Allow",
                            "Principal": { "Service": "cloudtrail.amazonaws.com" },
                            "Action": "s3:PutObject",
                            "Resource": sub(&format!("${{{CREATED_BUCKET_LOGICAL_ID}.Arn}}/AWSLogs/${{AWS::AccountId}}/*")),
                            "Condition": {
                                "StringEquals": {
                                    "s3:x-amz-acl": "bucket-owner-full-control",
                                    "aws:SourceArn": sub(trail_arn),
                                },
                            },
                        },
                    ],
                },
            },
        }),
    );
    resources.insert(
        "LogGroup".to_owned(),
        json!({
            "Type": "AWS::Logs::LogGroup",
            "Properties": { "RetentionInDays": reference(param::LOG_RETENTION_DAYS) },
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
        rules::iam_metric_filter_pattern(),
        metric::IAM_CHANGES,
        "iam-changes",
        "Someone changed IAM (iamwatchd reports who and what).",
    );
    filter_and_alarm(
        &mut resources,
        "Cis",
        Some("CisFilter"),
        rules::CIS_4_4_FILTER_PATTERN.to_owned(),
        metric::CIS,
        "cis-4-4-iam-policy-changes",
        "CIS 4.4 / Security Hub CloudWatch.4: an IAM policy changed.",
    );
    filter_and_alarm(
        &mut resources,
        "Tampering",
        Some("TamperingAlarm"),
        rules::tampering_metric_filter_pattern(),
        metric::TAMPERING,
        "monitoring-tampering",
        "Someone changed or removed part of the IAM change monitoring (trail, filter, alarm, topic).",
    );
    resources.insert(
        "Topic".to_owned(),
        json!({
            "Type": "AWS::SNS::Topic",
            "Properties": { "DisplayName": "iamwatchd" },
        }),
    );
    // Daemon mode: humans hear the daemon (one detailed message per change, through this
    // topic or SMTP) and the dead-man's switch, never the bare alarm as well.
    resources.insert(
        "NotificationTopic".to_owned(),
        json!({
            "Type": "AWS::SNS::Topic",
            "Condition": "DaemonQueue",
            "Properties": { "DisplayName": "iamwatchd" },
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
                "SqsManagedSseEnabled": true,
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
                "AlarmName": sub("${AWS::StackName}-daemon-not-reading"),
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

fn outputs() -> Value {
    let out =
        |description: &str, value: Value| json!({ "Description": description, "Value": value });
    let mut outputs = json!({
        (output::TOPIC_ARN): out("SNS topic the alarms notify", reference("Topic")),
        (output::ALARM_NAME): out("Alarm on IAM changes", reference("IamChangesAlarm")),
        (output::ALARM_ARN): out("ARN of the alarm on IAM changes", get_att("IamChangesAlarm", "Arn")),
        (output::LOG_GROUP_NAME): out("Log group the trail delivers to", reference("LogGroup")),
        (output::TRAIL_ARN): out("The trail", get_att("Trail", "Arn")),
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

/// The template as a JSON value.
pub fn template() -> Value {
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!(
            "iamwatchd {}: CloudTrail -> CloudWatch Logs -> metric filter -> alarm -> SNS \
             (e-mail, and an SQS queue for the iamwatchd daemon) on every IAM change",
            env!("CARGO_PKG_VERSION")
        ),
        "Parameters": parameters(),
        "Conditions": conditions(),
        "Resources": resources(),
        "Outputs": outputs(),
    })
}

/// The template as `iamwatchd template` prints it and `deploy/` holds it: pretty JSON with a
/// final newline.
pub fn template_json() -> String {
    let mut text = serde_json::to_string_pretty(&template()).expect("a JSON value serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CloudWatch Logs rejects filter patterns longer than this.
    const FILTER_PATTERN_LIMIT: usize = 1024;
    /// CreateChangeSet's limit for a template passed inline (TemplateBody).
    const TEMPLATE_BODY_LIMIT: usize = 51_200;

    #[test]
    fn committed_template_is_up_to_date() {
        let committed = include_str!("../deploy/iamwatchd.template.json");
        assert!(
            committed == template_json(),
            "deploy/iamwatchd.template.json is stale: run \
             `cargo run -- template > deploy/iamwatchd.template.json` and commit it"
        );
    }

    #[test]
    fn fits_inline_template_limit() {
        assert!(template_json().len() < TEMPLATE_BODY_LIMIT);
    }

    #[test]
    fn metric_filters_use_the_rule_catalogue_and_fit_the_limit() {
        let template = template();
        let resources = &template["Resources"];
        let pattern = |id: &str| {
            resources[id]["Properties"]["FilterPattern"]
                .as_str()
                .unwrap_or_else(|| panic!("{id} has a pattern"))
                .to_owned()
        };
        assert_eq!(
            pattern("IamChangesFilter"),
            rules::iam_metric_filter_pattern()
        );
        assert_eq!(pattern("CisFilter"), rules::CIS_4_4_FILTER_PATTERN);
        assert_eq!(
            pattern("TamperingFilter"),
            rules::tampering_metric_filter_pattern()
        );
        for id in ["IamChangesFilter", "CisFilter", "TamperingFilter"] {
            assert!(pattern(id).len() <= FILTER_PATTERN_LIMIT, "{id} too long");
        }
    }

    #[test]
    fn every_ref_and_condition_names_something_declared() {
        let template = template();
        let parameters = template["Parameters"].as_object().unwrap();
        let resources = template["Resources"].as_object().unwrap();
        let conditions = template["Conditions"].as_object().unwrap();
        fn walk(value: &Value, refs: &mut Vec<String>) {
            match value {
                Value::Object(map) => {
                    for (key, inner) in map {
                        if key == "Ref" {
                            refs.push(inner.as_str().unwrap().to_owned());
                        } else if key == "Fn::GetAtt" {
                            refs.push(inner[0].as_str().unwrap().to_owned());
                        }
                        walk(inner, refs);
                    }
                }
                Value::Array(items) => items.iter().for_each(|item| walk(item, refs)),
                _ => {}
            }
        }
        let mut refs = Vec::new();
        walk(&template, &mut refs);
        for name in refs {
            assert!(
                name.starts_with("AWS::")
                    || parameters.contains_key(&name)
                    || resources.contains_key(&name),
                "Ref to undeclared {name}"
            );
        }
        let sections = [&template["Resources"], &template["Outputs"]];
        for section in sections {
            for (id, item) in section.as_object().unwrap() {
                if let Some(condition) = item.get("Condition") {
                    assert!(
                        conditions.contains_key(condition.as_str().unwrap()),
                        "{id} uses an undeclared condition"
                    );
                }
            }
        }
    }

    #[test]
    fn trail_records_everything_and_writes_only_to_its_log_group() {
        let template = template();
        let trail = &template["Resources"]["Trail"]["Properties"];
        for property in [
            "IsLogging",
            "IsMultiRegionTrail",
            "IncludeGlobalServiceEvents",
            "EnableLogFileValidation",
        ] {
            assert_eq!(trail[property], true, "{property}");
        }
        let statement = &template["Resources"]["TrailLogsRole"]["Properties"]["Policies"][0]
            ["PolicyDocument"]["Statement"];
        assert_eq!(statement.as_array().unwrap().len(), 1);
        assert_eq!(
            statement[0]["Action"],
            json!(["logs:CreateLogStream", "logs:PutLogEvents"])
        );
        assert_eq!(statement[0]["Resource"], get_att("LogGroup", "Arn"));
    }

    #[test]
    fn created_bucket_is_retained_private_and_encrypted() {
        let template = template();
        let bucket = &template["Resources"][CREATED_BUCKET_LOGICAL_ID];
        assert_eq!(bucket["DeletionPolicy"], "Retain");
        assert_eq!(bucket["Condition"], "CreateBucket");
        let block = &bucket["Properties"]["PublicAccessBlockConfiguration"];
        assert!(block.as_object().unwrap().values().all(|v| v == true));
        assert!(bucket["Properties"]["BucketEncryption"].is_object());
        assert!(bucket["Properties"]["LifecycleConfiguration"]["Rules"][0].is_object());
    }

    #[test]
    fn every_alarm_treats_missing_data_as_not_breaching() {
        let template = template();
        let alarms: Vec<_> = template["Resources"]
            .as_object()
            .unwrap()
            .values()
            .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
            .collect();
        assert_eq!(alarms.len(), 4);
        for alarm in alarms {
            assert_eq!(alarm["Properties"]["TreatMissingData"], "notBreaching");
        }
    }

    #[test]
    fn daemon_mode_sends_humans_the_daemon_and_the_dead_mans_switch_not_the_bare_alarm() {
        let template = template();
        let resources = &template["Resources"];
        for id in ["IamChangesAlarm", "CisAlarm", "TamperingAlarm"] {
            assert_eq!(
                resources[id]["Properties"]["AlarmActions"],
                json!([{"Ref": "Topic"}]),
                "{id} feeds the alarm topic"
            );
        }
        for index in 1..=MAX_EMAILS {
            assert_eq!(
                resources[format!("EmailSubscription{index}")]["Properties"]["TopicArn"],
                json!({ "Fn::If": ["DaemonQueue", {"Ref": "NotificationTopic"}, {"Ref": "Topic"}] })
            );
        }
        let switch = &resources["DaemonQueueAgeAlarm"];
        assert_eq!(switch["Condition"], "DaemonQueue");
        assert_eq!(switch["Properties"]["Namespace"], "AWS/SQS");
        assert_eq!(
            switch["Properties"]["MetricName"],
            "ApproximateAgeOfOldestMessage"
        );
        assert_eq!(
            switch["Properties"]["AlarmActions"],
            json!([{"Ref": "NotificationTopic"}])
        );
        assert_eq!(
            template["Parameters"][param::QUEUE_AGE_THRESHOLD]["Default"],
            DEFAULT_QUEUE_AGE_THRESHOLD_SECONDS
        );
    }
}
