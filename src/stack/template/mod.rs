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
//!
//! Every resource that holds data is encrypted with one customer-managed KMS key, the stack's
//! own (rotation on) or one the operator names (`KmsKeyArn`); its key policy is in `key`. The
//! created trail bucket is versioned and its server access is logged to a second bucket
//! (`buckets`). checkov's checks that a resource does not meet on purpose are skipped in its
//! metadata, each with its reason (`checkov`).
//!
//! The member role that an organization's member accounts hold for the daemon has a template of
//! its own (`member_role`, `iamwatchd template --member-role`).
//!
//! The parameters and conditions are in `parameters`, the resources and outputs in `resources`;
//! the names and limits they share with the rest of the crate in [`crate::stack::names`].

mod buckets;
mod checkov;
mod key;
mod member_role;
mod parameters;
mod resources;

use serde_json::{json, Value};

pub use member_role::{member_role_template, member_role_template_json};
use parameters::conditions;
pub(crate) use parameters::parameters;
use resources::{outputs, resources};

pub(super) fn reference(name: &str) -> Value {
    json!({ "Ref": name })
}

pub(super) fn get_att(resource: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [resource, attribute] })
}

pub(super) fn sub(text: &str) -> Value {
    json!({ "Fn::Sub": text })
}

pub(super) fn is_true(parameter: &str) -> Value {
    json!({ "Fn::Equals": [reference(parameter), "true"] })
}

pub(super) fn not_empty(parameter: &str) -> Value {
    json!({ "Fn::Not": [{ "Fn::Equals": [reference(parameter), ""] }] })
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
    use crate::rules;
    use crate::stack::names::{
        param, ACCESS_LOG_BUCKET_LOGICAL_ID, CREATED_BUCKET_LOGICAL_ID, CREATED_KEY_LOGICAL_ID,
        DEFAULT_QUEUE_AGE_THRESHOLD_SECONDS, MAX_EMAILS,
    };

    /// CloudWatch Logs rejects filter patterns longer than this.
    const FILTER_PATTERN_LIMIT: usize = 1024;
    /// CreateChangeSet's limit for a template passed inline (TemplateBody).
    const TEMPLATE_BODY_LIMIT: usize = 51_200;

    #[test]
    fn committed_template_is_up_to_date() {
        let committed = include_str!("../../../deploy/iamwatchd.template.json");
        assert!(
            committed == template_json(),
            "deploy/iamwatchd.template.json is stale: run \
             `cargo run --bin iamwatchd -- template > deploy/iamwatchd.template.json` and commit it"
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
        for (category, prefix) in [
            (rules::Category::Tampering, "Tampering"),
            (rules::Category::IdentityCenter, "IdentityCenter"),
            (rules::Category::Organizations, "Organizations"),
            (rules::Category::RootUse, "RootUse"),
            (rules::Category::ConsoleSignIn, "ConsoleSignIn"),
        ] {
            let patterns = rules::group_patterns(category);
            for (index, wanted) in patterns.iter().enumerate() {
                let id = match index {
                    0 => format!("{prefix}Filter"),
                    n => format!("{prefix}Filter{}", n + 1),
                };
                assert_eq!(&pattern(&id), wanted, "{id}");
                assert!(pattern(&id).len() <= FILTER_PATTERN_LIMIT, "{id} too long");
                let metric = &resources[&id]["Properties"]["MetricTransformations"][0];
                assert_eq!(metric["MetricName"], category.metric());
            }
            assert!(
                resources
                    .get(format!("{prefix}Filter{}", patterns.len() + 1))
                    .is_none(),
                "no stale filter beyond the group's patterns"
            );
            assert_eq!(
                resources[format!("{prefix}Alarm")]["Properties"]["MetricName"],
                category.metric()
            );
        }
        for id in ["IamChangesFilter", "CisFilter"] {
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
        assert_eq!(
            bucket["Properties"]["VersioningConfiguration"]["Status"],
            "Enabled"
        );
        let logs = &bucket["Properties"]["LoggingConfiguration"]["DestinationBucketName"];
        assert_eq!(logs, &reference(ACCESS_LOG_BUCKET_LOGICAL_ID));
        let log_bucket = &template["Resources"][ACCESS_LOG_BUCKET_LOGICAL_ID];
        assert_eq!(log_bucket["DeletionPolicy"], "Retain");
        assert_eq!(
            log_bucket["Properties"]["PublicAccessBlockConfiguration"],
            bucket["Properties"]["PublicAccessBlockConfiguration"]
        );
        for policy in ["TrailBucketPolicy", "TrailAccessLogBucketPolicy"] {
            let first =
                &template["Resources"][policy]["Properties"]["PolicyDocument"]["Statement"][0];
            assert_eq!(first["Sid"], "TlsOnly", "{policy}");
            assert_eq!(first["Effect"], "Deny", "{policy}");
        }
    }

    #[test]
    fn every_resource_holding_data_uses_the_stacks_key() {
        let template = template();
        let resources = &template["Resources"];
        let key = json!({ "Fn::If": ["CreateKey", get_att(CREATED_KEY_LOGICAL_ID, "Arn"), reference(param::KMS_KEY)] });
        for (id, property) in [
            ("Trail", "KMSKeyId"),
            ("LogGroup", "KmsKeyId"),
            ("Topic", "KmsMasterKeyId"),
            ("NotificationTopic", "KmsMasterKeyId"),
            ("DaemonQueue", "KmsMasterKeyId"),
        ] {
            assert_eq!(resources[id]["Properties"][property], key, "{id}");
        }
        let created = &resources[CREATED_KEY_LOGICAL_ID];
        assert_eq!(created["Condition"], "CreateKey");
        assert_eq!(created["Properties"]["EnableKeyRotation"], true);
        assert_eq!(template["Outputs"]["KmsKeyArn"]["Value"], key);
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
        assert_eq!(alarms.len(), 8);
        for alarm in alarms {
            assert_eq!(alarm["Properties"]["TreatMissingData"], "notBreaching");
        }
    }

    #[test]
    fn daemon_mode_sends_humans_the_daemon_and_the_dead_mans_switch_not_the_bare_alarm() {
        let template = template();
        let resources = &template["Resources"];
        for id in [
            "IamChangesAlarm",
            "CisAlarm",
            "TamperingAlarm",
            "IdentityCenterAlarm",
            "OrganizationsAlarm",
            "RootUseAlarm",
            "ConsoleSignInAlarm",
        ] {
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
