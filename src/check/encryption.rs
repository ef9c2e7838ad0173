//! The stack's encryption: the trail, the log group, the topics and the queue each use the
//! stack's KMS key (output `KmsKeyArn`), and the key's policy lets every service that uses it
//! make its calls ([`key_grants::CALLS`]). A grant missing for CloudWatch is the silent failure
//! this exists for: the alarm goes to ALARM and its message never reaches the topic.

use std::collections::HashMap;

use serde_json::Value;

use super::{aws_error, Report};
use crate::stack::names::{key_grants, output};

/// The AWS actions this file calls (the daemon's policy allows them for `check`;
/// `src/aws/actions.rs` enforces it).
#[cfg(test)]
pub(crate) const ACTIONS: &[&str] = &[
    "kms:GetKeyPolicy",
    "cloudtrail:GetTrail",
    "logs:DescribeLogGroups",
    "sns:GetTopicAttributes",
    "sqs:GetQueueAttributes",
];

/// The key id at the end of a key ARN (`arn:aws:kms:R:A:key/ID`), or the text itself: SNS and
/// SQS give back whatever they were given, CloudTrail and CloudWatch Logs the ARN.
fn key_id(key: &str) -> &str {
    key.rsplit_once(":key/").map_or(key, |(_, id)| id)
}

/// Whether an IAM-style action pattern (`kms:*`, `kms:GenerateDataKey*`) covers `action`.
fn covers(pattern: &str, action: &str) -> bool {
    let (pattern, action) = (pattern.to_ascii_lowercase(), action.to_ascii_lowercase());
    match pattern.split_once('*') {
        None => pattern == action,
        // One wildcard at the end is all key policies use; any other pattern only as written.
        Some((prefix, rest)) => {
            (rest.is_empty() && action.starts_with(prefix)) || pattern == action
        }
    }
}

fn strings(value: &Value) -> Vec<&str> {
    match value {
        Value::String(text) => vec![text.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The calls of `calls` that no Allow statement of `policy` grants to service `principal`
/// (conditions are not evaluated: the template's grants use them to scope a grant to this
/// stack, not to withhold it).
pub(crate) fn missing_calls<'a>(
    policy: &Value,
    principal: &str,
    calls: &[&'a str],
) -> Vec<&'a str> {
    let statements = match &policy["Statement"] {
        Value::Array(items) => items.iter().collect(),
        single @ Value::Object(_) => vec![single],
        _ => Vec::new(),
    };
    let grants = |statement: &&Value, call: &str| {
        statement["Effect"] == "Allow"
            && (statement["Principal"] == "*"
                || strings(&statement["Principal"]["Service"]).contains(&principal)
                || strings(&statement["Principal"]["AWS"]).contains(&"*"))
            && strings(&statement["Action"])
                .iter()
                .any(|pattern| covers(pattern, call))
    };
    calls
        .iter()
        .filter(|call| !statements.iter().any(|s| grants(s, call)))
        .copied()
        .collect()
}

/// Checks every encrypted part of the stack and the key policy.
pub(super) async fn encryption(
    sdk: &aws_config::SdkConfig,
    outputs: &HashMap<&str, &str>,
    deploy_fix: &str,
    report: &mut Report,
) {
    let Some(key) = outputs.get(output::KMS_KEY_ARN).copied() else {
        report.fail(
            "encryption: the stack has no KMS key (it was made by an older iamwatchd: its \
             trail, log group, topics and queue are not encrypted with a customer-managed key)",
            format!("update the stack in place: {deploy_fix}"),
        );
        return;
    };
    key_policy(sdk, key, report).await;
    let mut uses = Vec::new();
    if let Some(trail) = outputs.get(output::TRAIL_ARN) {
        let cloudtrail = aws_sdk_cloudtrail::Client::new(sdk);
        let found = cloudtrail.get_trail().name(*trail).send().await;
        let used = found
            .map(|t| t.trail().and_then(|t| t.kms_key_id()).map(str::to_owned))
            .map_err(|e| (aws_error(&e), "cloudtrail:GetTrail"));
        uses.push((format!("trail {trail}"), used));
    }
    if let Some(group) = outputs.get(output::LOG_GROUP_NAME) {
        let logs = aws_sdk_cloudwatchlogs::Client::new(sdk);
        let found = logs
            .describe_log_groups()
            .log_group_name_prefix(*group)
            .send()
            .await;
        let used = found
            .map(|answer| {
                answer
                    .log_groups()
                    .iter()
                    .find(|g| g.log_group_name() == Some(*group))
                    .and_then(|g| g.kms_key_id())
                    .map(str::to_owned)
            })
            .map_err(|e| (aws_error(&e), "logs:DescribeLogGroups"));
        uses.push((format!("log group {group}"), used));
    }
    let sns = aws_sdk_sns::Client::new(sdk);
    for key_name in [output::TOPIC_ARN, output::NOTIFICATION_TOPIC_ARN] {
        if let Some(topic) = outputs.get(key_name) {
            let found = sns.get_topic_attributes().topic_arn(*topic).send().await;
            let used = found
                .map(|a| {
                    a.attributes()
                        .and_then(|a| a.get("KmsMasterKeyId"))
                        .cloned()
                })
                .map_err(|e| (aws_error(&e), "sns:GetTopicAttributes"));
            uses.push((format!("topic {topic}"), used));
        }
    }
    if let Some(queue) = outputs.get(output::QUEUE_URL) {
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let found = sqs
            .get_queue_attributes()
            .queue_url(*queue)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::KmsMasterKeyId)
            .send()
            .await;
        let used = found
            .map(|a| {
                a.attributes()
                    .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::KmsMasterKeyId))
                    .cloned()
            })
            .map_err(|e| (aws_error(&e), "sqs:GetQueueAttributes"));
        uses.push((format!("queue {queue}"), used));
    }
    for (part, used) in uses {
        match used {
            Ok(Some(used)) if key_id(&used) == key_id(key) => {
                report.ok(format!("{part}: encrypted with the stack's key"));
            }
            Ok(Some(other)) => report.fail(
                format!("{part}: encrypted with {other}, not the stack's key {key}"),
                format!("someone changed it (tampering?): {deploy_fix}"),
            ),
            Ok(None) => report.fail(
                format!("{part}: NOT encrypted with a customer-managed key"),
                format!("someone removed its encryption (tampering?): {deploy_fix}"),
            ),
            Err((error, action)) => report.fail(
                format!("{part}: cannot read its encryption: {error}"),
                format!("allow {action} (deploy/iamwatchd-policy.json)"),
            ),
        }
    }
}

async fn key_policy(sdk: &aws_config::SdkConfig, key: &str, report: &mut Report) {
    let kms = aws_sdk_kms::Client::new(sdk);
    let text = match kms
        .get_key_policy()
        .key_id(key)
        .policy_name("default")
        .send()
        .await
    {
        Ok(answer) => answer.policy().unwrap_or_default().to_owned(),
        Err(error) => {
            report.fail(
                format!(
                    "key {key}: cannot read its key policy: {}",
                    aws_error(&error)
                ),
                "allow kms:GetKeyPolicy on the key (deploy/iamwatchd-policy.json); if the key \
                 is gone or disabled, nothing the stack encrypts can be written: restore it",
            );
            return;
        }
    };
    let policy: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let region = sdk.region().map(|r| r.as_ref()).unwrap_or_default();
    let mut complete = true;
    for (principal, consequence, calls) in key_grants::CALLS {
        let principal = principal.replace("${AWS::Region}", region);
        let missing = missing_calls(&policy, &principal, calls);
        if !missing.is_empty() {
            complete = false;
            report.fail(
                format!(
                    "key {key}: its policy does not let {principal} call {} — {consequence}",
                    missing.join(", ")
                ),
                format!(
                    "add a statement allowing service principal {principal} {} on the key (the \
                     key policy `iamwatchd template` writes has it, scoped to this stack): `aws \
                     kms get-key-policy --key-id {key} --policy-name default`, edit, then `aws \
                     kms put-key-policy` with the result",
                    missing.join(", ")
                ),
            );
        }
    }
    if complete {
        report.ok(format!(
            "key {key}: its policy lets CloudTrail, CloudWatch Logs, SNS and CloudWatch alarms use it"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::template::template;

    #[test]
    fn the_templates_key_policy_grants_every_call_check_looks_for() {
        let template = template();
        let policy = &template["Resources"]["Key"]["Properties"]["KeyPolicy"];
        for (principal, _, calls) in key_grants::CALLS {
            // The template writes the logs principal with ${AWS::Region} inside an Fn::Sub.
            let policy = serde_json::to_string(policy).unwrap().replace(
                r#"{"Fn::Sub":"logs.${AWS::Region}.amazonaws.com"}"#,
                r#""logs.${AWS::Region}.amazonaws.com""#,
            );
            let policy: Value = serde_json::from_str(&policy).unwrap();
            assert_eq!(
                missing_calls(&policy, principal, calls),
                Vec::<&str>::new(),
                "{principal}"
            );
        }
    }

    #[test]
    fn a_policy_without_the_cloudwatch_grant_is_caught() {
        let policy = serde_json::json!({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "kms:*"},
            {"Effect": "Allow", "Principal": {"Service": ["sns.amazonaws.com"]},
             "Action": ["kms:GenerateDataKey*", "kms:Decrypt"]},
        ]});
        let calls = ["kms:GenerateDataKey", "kms:Decrypt"];
        assert_eq!(
            missing_calls(&policy, "sns.amazonaws.com", &calls),
            Vec::<&str>::new()
        );
        assert_eq!(
            missing_calls(&policy, "cloudwatch.amazonaws.com", &calls),
            calls
        );
        assert!(covers("kms:*", "kms:Decrypt") && covers("KMS:decrypt", "kms:Decrypt"));
        assert!(!covers("kms:Decrypt", "kms:DescribeKey"));
        assert_eq!(key_id("arn:aws:kms:us-east-1:1:key/abc"), "abc");
    }
}
