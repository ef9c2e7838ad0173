//! `iamwatchd check`: is this machine ready to run the daemon?
//!
//! The configuration is checked first (every problem at once, by [`crate::config`]); then the
//! environment, in the order an operator would fix it: credentials (who am I), the region (the
//! us-east-1 trap), the alarm-path stack and each of its parts (trail logging, the metric
//! filter's pattern, the alarm and its actions, a confirmed e-mail subscription), and each
//! notifier. Every problem comes with the fix, and one failing check never hides the others.
//!
//! Everything here only reads, except `--send-test`, which sends one clearly marked test
//! message through every notifier.

use std::collections::HashMap;
use std::fmt;

use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

use crate::aws::errors::{AwsError, Kind};
use crate::config::Config;
use crate::notify::render::test_message;
use crate::stack::names::output;

/// The AWS actions this module calls (kept beside the calls; `deploy/iamwatchd-policy.json`
/// must allow exactly the union of every module's list, which a test below enforces).
pub const ACTIONS: &[&str] = &[
    "sts:GetCallerIdentity",
    "cloudformation:DescribeStacks",
    "cloudtrail:GetTrailStatus",
    "logs:DescribeMetricFilters",
    "cloudwatch:DescribeAlarms",
    "sns:ListSubscriptionsByTopic",
];

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Worth reading, but the daemon can run.
    Warn,
    /// The environment is not ready: `check` exits with 69.
    Fail,
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub status: Status,
    /// What was checked and what was found.
    pub text: String,
    /// What to do about a warning or failure.
    pub fix: Option<String>,
}

/// The checklist, in the order the checks ran.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub items: Vec<Item>,
}

impl Report {
    fn ok(&mut self, text: impl Into<String>) {
        self.items.push(Item {
            status: Status::Ok,
            text: text.into(),
            fix: None,
        });
    }

    fn problem(&mut self, status: Status, text: impl Into<String>, fix: impl Into<String>) {
        self.items.push(Item {
            status,
            text: text.into(),
            fix: Some(fix.into()),
        });
    }

    fn fail(&mut self, text: impl Into<String>, fix: impl Into<String>) {
        self.problem(Status::Fail, text, fix);
    }

    /// True when nothing failed (warnings allowed).
    pub fn ready(&self) -> bool {
        self.items.iter().all(|item| item.status != Status::Fail)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for item in &self.items {
            let mark = match item.status {
                Status::Ok => "✓",
                Status::Warn => "!",
                Status::Fail => "✗",
            };
            writeln!(f, "{mark} {}", item.text)?;
            if let Some(fix) = &item.fix {
                writeln!(f, "    fix: {fix}")?;
            }
        }
        Ok(())
    }
}

/// What to check beyond the defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Send a test message through every notifier.
    pub send_test: bool,
}

/// An AWS error in one line, with the service's code and message.
fn aws_error<E>(error: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    AwsError::read(error).to_string()
}

/// Checks the environment for an already valid configuration.
pub async fn check(config: &Config, options: Options) -> Report {
    let mut report = Report::default();
    let region = config.aws.region.as_str();
    let sdk = crate::aws::loader(region, config.aws.max_attempts)
        .load()
        .await;

    let sts = aws_sdk_sts::Client::new(&sdk);
    let account = match sts.get_caller_identity().send().await {
        Ok(identity) => {
            let account = identity.account().unwrap_or("unknown").to_owned();
            report.ok(format!(
                "credentials: account {account} as {}",
                identity.arn().unwrap_or("unknown")
            ));
            Some(account)
        }
        Err(error) => {
            report.fail(
                format!(
                    "credentials: who am I (STS GetCallerIdentity) failed: {}",
                    aws_error(&error)
                ),
                "give the daemon credentials through the standard chain: an instance or task \
                 role, AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            );
            None
        }
    };

    if region == crate::aws::IAM_EVENTS_REGION {
        report.ok(format!(
            "region: {region} (where CloudTrail records IAM events)"
        ));
    } else {
        report.problem(
            Status::Warn,
            format!(
                "region: {region} — CloudTrail records IAM events only in {}: the poller \
                 will see NO IAM changes here",
                crate::aws::IAM_EVENTS_REGION
            ),
            format!(
                "set [aws] region = \"{}\" (watch other regions for tampering with \
                 [aws] tampering_regions)",
                crate::aws::IAM_EVENTS_REGION
            ),
        );
    }

    if account.is_some() {
        stack(&sdk, config, &mut report).await;
    } else {
        report.fail(
            format!(
                "stack {}: not checked without credentials",
                config.aws.stack_name
            ),
            "fix the credentials first",
        );
    }

    notifiers(config, options, account.as_deref(), &mut report).await;
    report
}

/// The stack and each of its parts.
async fn stack(sdk: &aws_config::SdkConfig, config: &Config, report: &mut Report) {
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
        Some(trail) => trail_logging(sdk, trail, report).await,
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

/// Each notifier's health check, and the test message when asked.
async fn notifiers(config: &Config, options: Options, account: Option<&str>, report: &mut Report) {
    let built = match crate::notify::registry::build(config).await {
        Ok(built) => built,
        Err(error) => {
            report.fail(
                format!("notifiers: {error}"),
                "correct the notifier's section in the configuration",
            );
            return;
        }
    };
    if built.is_empty() {
        report.problem(
            Status::Warn,
            "notifiers: none configured — changes are recorded but nobody is told",
            "add an [smtp] or [sns] section",
        );
    }
    for notifier in built {
        let name = notifier.name().to_owned();
        if let Err(error) = notifier.healthcheck().await {
            report.fail(
                format!("notifier {name}: not reachable: {error}"),
                "check the notifier's settings and that this machine can reach it (firewall, \
                 DNS, credentials)",
            );
            continue;
        }
        report.ok(format!("notifier {name}: reachable"));
        if options.send_test {
            match notifier
                .send(&test_message(account.unwrap_or("unknown")))
                .await
            {
                Ok(()) => report.ok(format!("notifier {name}: test message sent")),
                Err(error) => report.fail(
                    format!("notifier {name}: the test message failed: {error}"),
                    "check the notifier's settings (sender and recipients, topic permissions)",
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checklist_shows_marks_and_fixes_and_fails_only_on_failures() {
        let mut report = Report::default();
        report.ok("credentials: account 1 as arn:aws:iam::1:user/a");
        report.problem(Status::Warn, "region: eu-west-1", "use us-east-1");
        assert!(report.ready());
        report.fail("stack iamwatchd: not found", "run `iamwatchd deploy`");
        assert!(!report.ready());
        assert_eq!(
            report.to_string(),
            "✓ credentials: account 1 as arn:aws:iam::1:user/a\n\
             ! region: eu-west-1\n    fix: use us-east-1\n\
             ✗ stack iamwatchd: not found\n    fix: run `iamwatchd deploy`\n"
        );
    }
}
