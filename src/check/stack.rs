//! The alarm-path stack and each of its parts: the stack's status and outputs, the trail
//! logging, the metric filter's pattern, the alarms and their actions, a confirmed e-mail
//! subscription, and (in [`super::encryption`]) the encryption of every part and the key
//! policy.

use std::collections::HashMap;

use super::{aws_error, Report};
use crate::aws::errors::{AwsError, Kind};
use crate::config::Config;
use crate::stack::names::output;

/// The AWS actions this file calls (the daemon's policy, `deploy/iamwatchd-policy.json`,
/// allows them for `check`; `src/aws/actions.rs` enforces it).
#[cfg(test)]
pub(crate) const ACTIONS: &[&str] = &[
    "cloudformation:DescribeStacks",
    "cloudtrail:GetTrailStatus",
    "cloudtrail:GetTrail",
    "logs:DescribeMetricFilters",
    "cloudwatch:DescribeAlarms",
    "sns:ListSubscriptionsByTopic",
];

/// The stack and each of its parts.
pub(super) async fn stack(sdk: &aws_config::SdkConfig, config: &Config, report: &mut Report) {
    let name = &config.aws.stack_name;
    let region = &config.aws.region;
    let deploy_fix = format!(
        "run `iamwatchd deploy --email you@example.com --stack-name {name} --region {region}`"
    );
    let cfn = aws_sdk_cloudformation::Client::new(sdk);
    let described = match cfn.describe_stacks().stack_name(name).send().await {
        Ok(described) => described,
        Err(error) => {
            let error = AwsError::read(&error);
            if error.kind == Kind::NotFound {
                report.fail(format!("stack {name}: not found in {region}"), deploy_fix);
            } else {
                report.fail(
                    format!("stack {name}: cannot describe it: {error}"),
                    "allow cloudformation:DescribeStacks (deploy/iamwatchd-policy.json)",
                );
            }
            return;
        }
    };
    let Some(stack) = described.stacks().first() else {
        report.fail(format!("stack {name}: not found in {region}"), deploy_fix);
        return;
    };
    let status = stack
        .stack_status()
        .map(|s| s.as_str())
        .unwrap_or("UNKNOWN");
    let intact = matches!(
        status,
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "UPDATE_ROLLBACK_COMPLETE" | "IMPORT_COMPLETE"
    );
    if !intact {
        let fix = if status.ends_with("_IN_PROGRESS") {
            "wait for the running stack operation to finish, then check again".to_owned()
        } else {
            format!("look at the stack's events in the CloudFormation console, then {deploy_fix}")
        };
        report.fail(format!("stack {name}: status {status}"), fix);
        return;
    }
    report.ok(format!("stack {name}: {status} in {region}"));
    let outputs: HashMap<&str, &str> = stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?, o.output_value()?)))
        .collect();
    let missing = |report: &mut Report, key: &str| {
        report.fail(
            format!("stack {name}: output {key} is missing"),
            format!("the stack was not made by this version of iamwatchd: {deploy_fix}"),
        );
    };

    match outputs.get(output::TRAIL_ARN) {
        Some(trail) => {
            trail_logging(sdk, trail, report).await;
            if config.accounts.organizations.is_some() {
                organization_trail(sdk, trail, report).await;
            }
        }
        None => missing(report, output::TRAIL_ARN),
    }
    match outputs.get(output::LOG_GROUP_NAME) {
        Some(group) => metric_filter(sdk, group, &deploy_fix, report).await,
        None => missing(report, output::LOG_GROUP_NAME),
    }
    let mut alarm_names = Vec::new();
    for key in [
        output::ALARM_NAME,
        output::TAMPERING_ALARM_NAME,
        output::CIS_ALARM_NAME,
    ] {
        if let Some(alarm) = outputs.get(key) {
            alarm_names.push((*alarm).to_owned());
        } else if key == output::ALARM_NAME {
            missing(report, key);
        }
    }
    if !alarm_names.is_empty() {
        alarms(sdk, &alarm_names, &deploy_fix, report).await;
    }
    // Humans subscribe to the notifications topic in daemon mode, to the alarm topic in
    // alarm-only mode (see the template's two deployment modes).
    let humans = [output::NOTIFICATION_TOPIC_ARN, output::TOPIC_ARN]
        .into_iter()
        .find_map(|key| outputs.get(key));
    match humans {
        Some(topic) => subscriptions(sdk, topic, &deploy_fix, report).await,
        None => missing(report, output::TOPIC_ARN),
    }
    super::encryption::encryption(sdk, &outputs, &deploy_fix, report).await;
}

/// With discovery on, the alarm path covers every account only with an organization trail.
async fn organization_trail(sdk: &aws_config::SdkConfig, trail: &str, report: &mut Report) {
    let cloudtrail = aws_sdk_cloudtrail::Client::new(sdk);
    match cloudtrail.get_trail().name(trail).send().await {
        Ok(answer) if answer.trail().and_then(|t| t.is_organization_trail()) == Some(true) => {
            report.ok(format!(
                "trail {trail}: an organization trail (the alarm path covers every account)"
            ));
        }
        Ok(_) => report.problem(
            super::Status::Warn,
            format!(
                "trail {trail}: not an organization trail — the alarm path confirms only this \
                 account's changes (the poller still reads every member account)"
            ),
            "run `iamwatchd deploy --organization` in the management account",
        ),
        Err(error) => report.fail(
            format!("trail {trail}: cannot read it: {}", aws_error(&error)),
            "allow cloudtrail:GetTrail (deploy/iamwatchd-policy.json)",
        ),
    }
}

async fn trail_logging(sdk: &aws_config::SdkConfig, trail: &str, report: &mut Report) {
    let cloudtrail = aws_sdk_cloudtrail::Client::new(sdk);
    match cloudtrail.get_trail_status().name(trail).send().await {
        Ok(status) if status.is_logging() == Some(true) => {
            report.ok(format!("trail {trail}: logging"));
        }
        Ok(_) => report.fail(
            format!("trail {trail}: NOT logging — the alarm path is blind"),
            format!(
                "find out who stopped it (a StopLogging event is tampering), then \
                 `aws cloudtrail start-logging --name {trail}`"
            ),
        ),
        Err(error) => report.fail(
            format!(
                "trail {trail}: cannot read its status: {}",
                aws_error(&error)
            ),
            "allow cloudtrail:GetTrailStatus; if the trail is gone, run `iamwatchd deploy`",
        ),
    }
}

async fn metric_filter(
    sdk: &aws_config::SdkConfig,
    group: &str,
    deploy_fix: &str,
    report: &mut Report,
) {
    let logs = aws_sdk_cloudwatchlogs::Client::new(sdk);
    let wanted = crate::rules::iam_metric_filter_pattern();
    match logs
        .describe_metric_filters()
        .log_group_name(group)
        .send()
        .await
    {
        Ok(found) => {
            let filters = found.metric_filters();
            if filters
                .iter()
                .any(|f| f.filter_pattern() == Some(wanted.as_str()))
            {
                report.ok(format!(
                    "metric filter on {group}: matches this version's IAM rules"
                ));
            } else if filters.is_empty() {
                report.fail(
                    format!("metric filter on {group}: none — the alarm can never fire"),
                    format!("someone deleted it (tampering?): {deploy_fix}"),
                );
            } else {
                report.fail(
                    format!(
                        "metric filter on {group}: its pattern differs from this version's \
                         IAM rules"
                    ),
                    format!("update the stack: {deploy_fix}"),
                );
            }
        }
        Err(error) => report.fail(
            format!(
                "metric filter on {group}: cannot list filters: {}",
                aws_error(&error)
            ),
            "allow logs:DescribeMetricFilters; if the log group is gone, run `iamwatchd deploy`",
        ),
    }
}

async fn alarms(
    sdk: &aws_config::SdkConfig,
    names: &[String],
    deploy_fix: &str,
    report: &mut Report,
) {
    let cloudwatch = aws_sdk_cloudwatch::Client::new(sdk);
    let found = match cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(names.to_vec()))
        .send()
        .await
    {
        Ok(found) => found,
        Err(error) => {
            report.fail(
                format!("alarms: cannot describe them: {}", aws_error(&error)),
                "allow cloudwatch:DescribeAlarms",
            );
            return;
        }
    };
    for name in names {
        let alarm = found
            .metric_alarms()
            .iter()
            .find(|a| a.alarm_name() == Some(name.as_str()));
        match alarm {
            None => report.fail(
                format!("alarm {name}: missing"),
                format!("someone deleted it (tampering?): {deploy_fix}"),
            ),
            Some(alarm) if alarm.actions_enabled() == Some(false) => report.fail(
                format!("alarm {name}: actions DISABLED — it will not notify anyone"),
                format!("`aws cloudwatch enable-alarm-actions --alarm-names {name}`"),
            ),
            Some(alarm) => report.ok(format!(
                "alarm {name}: actions enabled (state {})",
                alarm.state_value().map(|s| s.as_str()).unwrap_or("unknown")
            )),
        }
    }
}

async fn subscriptions(
    sdk: &aws_config::SdkConfig,
    topic: &str,
    deploy_fix: &str,
    report: &mut Report,
) {
    let sns = aws_sdk_sns::Client::new(sdk);
    let listed = match sns
        .list_subscriptions_by_topic()
        .topic_arn(topic)
        .send()
        .await
    {
        Ok(listed) => listed,
        Err(error) => {
            report.fail(
                format!(
                    "topic {topic}: cannot list subscriptions: {}",
                    aws_error(&error)
                ),
                "allow sns:ListSubscriptionsByTopic",
            );
            return;
        }
    };
    let emails: Vec<_> = listed
        .subscriptions()
        .iter()
        .filter(|s| s.protocol() == Some("email") || s.protocol() == Some("email-json"))
        .collect();
    if emails.is_empty() {
        report.fail(
            format!("topic {topic}: no e-mail subscription — alarms reach nobody"),
            deploy_fix.to_owned(),
        );
    }
    for subscription in emails {
        let address = subscription.endpoint().unwrap_or("(unknown address)");
        if subscription.subscription_arn() == Some("PendingConfirmation") {
            report.fail(
                format!("e-mail subscription {address}: pending confirmation"),
                format!(
                    "click the link in the e-mail from AWS Notifications sent to {address} \
                     (if it is lost, run `iamwatchd deploy` again with the same --email)"
                ),
            );
        } else {
            report.ok(format!("e-mail subscription {address}: confirmed"));
        }
    }
}
