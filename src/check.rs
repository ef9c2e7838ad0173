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

use aws_smithy_types::error::display::DisplayErrorContext;

use crate::config::Config;
use crate::notify::Message;
use crate::template::output;

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
fn aws_error(error: &(impl std::error::Error + 'static)) -> String {
    DisplayErrorContext(error).to_string()
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
            // CloudFormation answers a missing stack with a ValidationError.
            let missing = error.as_service_error().is_some_and(|e| {
                e.meta().code() == Some("ValidationError")
                    && e.meta()
                        .message()
                        .is_some_and(|m| m.contains("does not exist"))
            });
            if missing {
                report.fail(format!("stack {name}: not found in {region}"), deploy_fix);
            } else {
                report.fail(
                    format!("stack {name}: cannot describe it: {}", aws_error(&error)),
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
    let built = match crate::service::build_notifiers(config).await {
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

/// A message every reader recognises as a test, never as a change.
pub fn test_message(account: &str) -> Message {
    let now = chrono::Utc::now();
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "this machine".to_owned());
    let text = format!(
        "TEST MESSAGE — nothing changed.\n\n\
         This is a test message sent by `iamwatchd check --send-test` on {host} at {now} \
         for AWS account {account}.\n\
         If you received it, iamwatchd can reach you through this notifier.\n"
    );
    let html = format!(
        "<p><strong>TEST MESSAGE — nothing changed.</strong></p><p>{}</p>",
        crate::notify::render::html_escape(text.lines().nth(2).unwrap_or_default())
    );
    Message {
        subject: "[iamwatchd TEST] test message from iamwatchd check".to_owned(),
        text,
        html,
        event_id: format!("iamwatchd-check-test-{}", now.timestamp_millis()),
        severity: "INFO".to_owned(),
        category: "test".to_owned(),
        attempt: false,
        event_name: "iamwatchd-check-test".to_owned(),
        account: account.to_owned(),
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

    #[test]
    fn the_test_message_says_it_is_a_test() {
        let message = test_message("123456789012");
        assert!(message.subject.contains("TEST"));
        assert!(message.sns_subject().contains("TEST"));
        assert!(message.text.starts_with("TEST MESSAGE"));
        assert!(message.text.contains("123456789012"));
        assert!(message.html.contains("TEST MESSAGE"));
    }
}

/// The IAM policies in `deploy/` against what the code calls.
#[cfg(test)]
mod policy {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    use serde_json::Value;

    /// Every module that calls AWS, with its `ACTIONS`, relative to `src/`.
    fn modules() -> BTreeMap<&'static str, &'static [&'static str]> {
        BTreeMap::from([
            ("check.rs", super::ACTIONS),
            ("deploy.rs", crate::deploy::ACTIONS),
            ("notify/sns.rs", crate::notify::sns::ACTIONS),
            ("source/alarm.rs", crate::source::alarm::ACTIONS),
            ("source/lookup.rs", crate::source::lookup::ACTIONS),
        ])
    }

    /// The modules whose calls the daemon's policy covers (`run` and `check`).
    const DAEMON_MODULES: [&str; 4] = [
        "check.rs",
        "notify/sns.rs",
        "source/alarm.rs",
        "source/lookup.rs",
    ];

    fn policy_actions(file: &str) -> BTreeSet<String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy")
            .join(file);
        let policy: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut actions = BTreeSet::new();
        for statement in policy["Statement"].as_array().expect("Statement list") {
            assert_eq!(statement["Effect"], "Allow", "{statement}");
            assert!(statement["Resource"].is_string(), "{statement}");
            for action in statement["Action"].as_array().expect("Action list") {
                let action = action.as_str().unwrap();
                assert!(!action.contains('*'), "no wildcard actions: {action}");
                assert!(
                    actions.insert(action.to_owned()),
                    "{action} twice in {file}"
                );
            }
        }
        actions
    }

    /// `lookup_events` → `LookupEvents`.
    fn pascal(snake: &str) -> String {
        snake
            .split('_')
            .map(|word| {
                let mut chars = word.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect()
    }

    fn is_ident(byte: u8) -> bool {
        byte.is_ascii_alphanumeric() || byte == b'_'
    }

    /// The SDK operations called in `code`: the fluent builder's entry point (the chain's
    /// zero-argument method call nearest before each `.send()`; setters take arguments),
    /// following a builder held in a `let` binding back to where it was made.
    pub(super) fn sdk_operations(code: &str) -> BTreeSet<String> {
        let mut operations = BTreeSet::new();
        for (at, _) in code.match_indices(".send()") {
            if let Some(op) = operation_before(code, at) {
                operations.insert(op);
            } else {
                panic!(
                    "cannot tell which operation the .send() at byte {at} calls: {:?}",
                    &code[at.saturating_sub(80)..at]
                );
            }
        }
        operations
    }

    fn operation_before(code: &str, mut pos: usize) -> Option<String> {
        let bytes = code.as_bytes();
        loop {
            while pos > 0 && bytes[pos - 1].is_ascii_whitespace() {
                pos -= 1;
            }
            if pos == 0 {
                return None;
            }
            if bytes[pos - 1] == b')' {
                let close = pos - 1;
                let mut depth = 0usize;
                let mut open = close;
                loop {
                    match bytes[open] {
                        b')' => depth += 1,
                        b'(' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    open = open.checked_sub(1)?;
                }
                let mut start = open;
                while start > 0 && is_ident(bytes[start - 1]) {
                    start -= 1;
                }
                if start == 0 || bytes[start - 1] != b'.' {
                    return None;
                }
                // `.into_paginator()` wraps the operation's builder: the operation comes before.
                if code[open + 1..close].trim().is_empty() && &code[start..open] != "into_paginator"
                {
                    return Some(code[start..open].to_owned());
                }
                pos = start - 1;
            } else if is_ident(bytes[pos - 1]) {
                let end = pos;
                let mut start = end;
                while start > 0 && is_ident(bytes[start - 1]) {
                    start -= 1;
                }
                if start > 0 && bytes[start - 1] == b'.' {
                    // A field (`self.client`): the chain goes on before it.
                    pos = start - 1;
                    continue;
                }
                // A builder in a variable: continue from the end of its `let`.
                let name = &code[start..end];
                let before = &code[..start];
                let binding = before
                    .rfind(&format!("let mut {name} ="))
                    .or_else(|| before.rfind(&format!("let {name} =")))?;
                pos = binding + code[binding..start].find(';')?;
            } else {
                return None;
            }
        }
    }

    /// The non-test code of every `.rs` file under `dir`, by path relative to `root`.
    fn sources(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let code = match text.find("#[cfg(test)]\nmod ") {
                    Some(at) => text[..at].to_owned(),
                    None => text,
                };
                let relative = path.strip_prefix(root).unwrap().to_string_lossy();
                out.insert(relative.replace('\\', "/"), code);
            }
        }
    }

    #[test]
    fn the_scanner_finds_chained_and_bound_builders() {
        let code = r#"
            let x = self.client
                .publish()
                .subject(message.sns_subject())
                .send()
                .await;
            let mut request = client.lookup_events().max_results(PAGE_SIZE);
            match request.send().await {}
            sts.get_caller_identity().send().await;
        "#;
        assert_eq!(
            sdk_operations(code),
            BTreeSet::from([
                "publish".into(),
                "lookup_events".into(),
                "get_caller_identity".into()
            ])
        );
        assert_eq!(
            pascal("list_subscriptions_by_topic"),
            "ListSubscriptionsByTopic"
        );
    }

    /// A new SDK call without its action in the module's `ACTIONS` (or a module calling AWS
    /// without `ACTIONS`) fails here, and so does an action nobody calls any more.
    #[test]
    fn every_sdk_call_is_in_its_modules_actions_and_every_action_is_called() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = BTreeMap::new();
        sources(&root, &root, &mut files);
        let modules = modules();
        for (file, code) in &files {
            let called: BTreeSet<String> =
                sdk_operations(code).iter().map(|op| pascal(op)).collect();
            let Some(actions) = modules.get(file.as_str()) else {
                assert!(
                    called.is_empty(),
                    "{file} calls AWS ({called:?}): give it `pub const ACTIONS` and list it in \
                     check.rs's policy tests and deploy/*.json"
                );
                continue;
            };
            let listed: BTreeSet<String> = actions
                .iter()
                .map(|a| a.split_once(':').expect("service:Action").1.to_owned())
                .collect();
            assert_eq!(called, listed, "{file}: SDK calls vs its ACTIONS");
        }
    }

    #[test]
    fn the_daemon_policy_allows_exactly_what_run_and_check_call() {
        let wanted: BTreeSet<String> = DAEMON_MODULES
            .iter()
            .flat_map(|m| modules()[m].iter().map(|a| (*a).to_owned()))
            .collect();
        assert_eq!(policy_actions("iamwatchd-policy.json"), wanted);
    }

    /// `deploy` needs its own calls plus, because CloudFormation acts with the caller's
    /// permissions, the services of every resource type in the template (and no others).
    #[test]
    fn the_deploy_policy_covers_deploy_and_every_resource_type() {
        let allowed = policy_actions("iamwatchd-deploy-policy.json");
        for action in crate::deploy::ACTIONS {
            assert!(allowed.contains(*action), "deploy calls {action}");
        }
        let template = crate::template::template();
        let mut services: BTreeSet<String> = template["Resources"]
            .as_object()
            .unwrap()
            .values()
            .map(|r| {
                let kind = r["Type"].as_str().unwrap();
                kind.split("::").nth(1).unwrap().to_ascii_lowercase()
            })
            .collect();
        services.insert("cloudformation".into());
        let used: BTreeSet<String> = allowed
            .iter()
            .map(|a| a.split_once(':').unwrap().0.to_owned())
            .collect();
        assert_eq!(used, services);
    }
}
