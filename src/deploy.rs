//! `iamwatchd deploy`: creates, updates and deletes the alarm-path stack the way a careful
//! operator would.
//!
//! Every create or update goes through a change set, so the operator sees what will change
//! before it changes (and `--dry-run` stops there). While CloudFormation works, each new stack
//! event is printed as it happens; when it fails, the first failing resource and its reason are
//! what the operator needs, so that is what the error says. The usual first-day problems
//! (no credentials, a missing permission, a typo in an e-mail address, a wrong endpoint, a wrong
//! region) end in one paragraph that says what to do, not in an SDK error dump.

use std::collections::HashSet;
use std::fmt;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use aws_sdk_cloudformation::client::Waiters;
use aws_sdk_cloudformation::config::http::HttpResponse;
use aws_sdk_cloudformation::config::ProvideCredentials;
use aws_sdk_cloudformation::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudformation::types::{
    Capability, ChangeSetStatus, ChangeSetType, Parameter, Stack, StackEvent,
};
use aws_sdk_cloudformation::Client;

use crate::aws;
use crate::aws::errors::{root_cause, AwsError, Kind};
use crate::config::DeployTarget;
use crate::template::{self, output, param};

/// The AWS actions this module calls itself (the waiter polls DescribeChangeSet).
/// `deploy/iamwatchd-deploy-policy.json` must allow them, plus what CloudFormation does with the
/// caller's permissions to create the stack's resources; `check`'s tests enforce both.
pub const ACTIONS: &[&str] = &[
    "cloudformation:CreateChangeSet",
    "cloudformation:DeleteChangeSet",
    "cloudformation:DeleteStack",
    "cloudformation:DescribeChangeSet",
    "cloudformation:DescribeStackEvents",
    "cloudformation:DescribeStacks",
    "cloudformation:ExecuteChangeSet",
    "cloudformation:ListStackResources",
];

/// How long to wait for CloudFormation by default. Creating a trail, a bucket and a role takes
/// a few minutes; an hour means something is stuck.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// Pause between two looks at the stack's events: CloudFormation's own console polls about
/// this often, and it keeps well below DescribeStackEvents' rate limit.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// What `deploy` should make of the stack: a validated target (see
/// [`DeployFlags::resolve`](crate::config::DeployFlags::resolve)), and how to go about it.
/// `None` settings keep the stack's current value on an update and take the template's default
/// on a create.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    /// Which stack, where, with which settings.
    pub target: DeployTarget,
    /// Create the change set, show it, delete it.
    pub dry_run: bool,
    /// Give up waiting for CloudFormation after this long.
    pub timeout: Duration,
}

/// What `deploy --delete` should remove.
#[derive(Debug, Clone)]
pub struct DeleteRequest {
    /// The stack's name.
    pub stack_name: String,
    /// Its region.
    pub region: String,
    /// Give up waiting for CloudFormation after this long.
    pub timeout: Duration,
}

/// Why deploying (or deleting) did not work, and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(
        "stack {stack} does not exist yet, so at least one --email address (or deploy.emails \
         in the --config file) is needed: the alarms are sent there (the address must confirm \
         the subscription)"
    )]
    NoEmail { stack: String },
    #[error(
        "no AWS credentials found ({detail}). Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
         or AWS_PROFILE for a profile in ~/.aws/credentials or ~/.aws/config (run `aws sso \
         login` first for an SSO profile), or run where an instance or task role is available"
    )]
    NoCredentials { detail: String },
    #[error(
        "AWS rejected the credentials ({code}: {message}). Check that the access key is \
         active and belongs to this account, that the secret key matches it, and that a \
         session token, if any, has not expired"
    )]
    BadCredentials { code: String, message: String },
    #[error(
        "permission denied: the credentials in use may not call {action} ({message}). Grant \
         {action} to this user or role (deploying needs CloudFormation, and CloudFormation uses \
         the same credentials to create the trail, log group, role, alarms, topic and queue), \
         or deploy with credentials that have it"
    )]
    AccessDenied { action: String, message: String },
    #[error(
        "cannot reach the CloudFormation endpoint {endpoint} ({detail}). Check the network \
         (proxy, firewall, DNS), the region, and AWS_ENDPOINT_URL if it is set"
    )]
    Unreachable { endpoint: String, detail: String },
    #[error(
        "stack {stack} is busy ({status}): another operation is running on it. Wait until it \
         ends (see the CloudFormation console or `aws cloudformation describe-stack-events`), \
         then run this again"
    )]
    StackBusy { stack: String, status: String },
    #[error("stack {stack} is in {status} and CloudFormation cannot update it as it is. {advice}")]
    StackStuck {
        stack: String,
        status: String,
        advice: &'static str,
    },
    /// Boxed: the failure carries several strings and errors travel by value.
    #[error("{0}")]
    StackFailed(Box<StackFailure>),
    #[error(
        "gave up waiting after {waited:?}: stack {stack} is still {status}. CloudFormation \
         goes on by itself; run this again later to see the result"
    )]
    Timeout {
        stack: String,
        status: String,
        waited: Duration,
    },
    #[error("CloudFormation {operation} failed: {code}: {message}")]
    Aws {
        operation: &'static str,
        code: String,
        message: String,
    },
}

/// A stack operation that CloudFormation ended in failure, with the first resource that failed.
#[derive(Debug)]
pub struct StackFailure {
    pub operation: &'static str,
    pub stack: String,
    pub status: String,
    pub resource: String,
    pub resource_type: String,
    pub resource_status: String,
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

impl DeployRequest {
    /// The same stack, to be deleted instead.
    pub fn delete_request(&self) -> DeleteRequest {
        DeleteRequest {
            stack_name: self.target.stack_name.clone(),
            region: self.target.region.clone(),
            timeout: self.timeout,
        }
    }

    /// The stack parameters, every one with its value. On an update, a setting not given
    /// keeps the stack's current value (running `deploy` again must not silently undo an
    /// earlier `--alarm-threshold`); on a create it takes the template's default. Values are
    /// spelled out rather than sent as `UsePreviousValue`, so the change set says exactly what
    /// the stack will be.
    fn parameters(&self, existing: Option<&Stack>) -> Result<Vec<Parameter>, DeployError> {
        let settings = &self.target.settings;
        if settings.emails.is_empty() && existing.is_none() {
            return Err(DeployError::NoEmail {
                stack: self.target.stack_name.clone(),
            });
        }
        let template = template::template();
        let previous = |key: &str| -> Option<String> {
            existing?
                .parameters()
                .iter()
                .find(|p| p.parameter_key() == Some(key))
                .and_then(|p| p.parameter_value())
                .map(str::to_owned)
        };
        let default = |key: &str| -> String {
            match &template["Parameters"][key]["Default"] {
                serde_json::Value::String(text) => text.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            }
        };
        let mut parameters = Vec::new();
        let mut set = |key: &str, value: Option<String>| {
            let value = value
                .or_else(|| previous(key))
                .unwrap_or_else(|| default(key));
            parameters.push(
                Parameter::builder()
                    .parameter_key(key)
                    .parameter_value(value)
                    .build(),
            );
        };
        for (index, key) in param::EMAILS.iter().enumerate() {
            // Given addresses replace all of the old ones.
            let value = (!settings.emails.is_empty())
                .then(|| settings.emails.get(index).cloned().unwrap_or_default());
            set(key, value);
        }
        set(param::BUCKET, settings.bucket.clone());
        let number = |n: Option<u32>| n.map(|n| n.to_string());
        set(
            param::LOG_RETENTION_DAYS,
            number(settings.log_retention_days),
        );
        set(param::ALARM_PERIOD, number(settings.alarm_period_seconds));
        set(param::ALARM_THRESHOLD, number(settings.alarm_threshold));
        let flag = |b: Option<bool>| b.map(|b| b.to_string());
        set(param::CIS_FILTER, flag(settings.cis_filter));
        set(param::TAMPERING_ALARM, flag(settings.tampering_alarm));
        set(param::DAEMON_QUEUE, flag(settings.daemon_queue));
        Ok(parameters)
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
fn aws_failure(operation: &'static str, region: &str, error: AwsError) -> DeployError {
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

fn sdk_error<E>(
    operation: &'static str,
    region: &str,
    error: SdkError<E, HttpResponse>,
) -> DeployError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    aws_failure(operation, region, AwsError::read(&error))
}

/// Whether CloudFormation's answer means "the stack already is what you asked for".
fn is_no_changes(reason: &str) -> bool {
    reason.contains("didn't contain changes") || reason.contains("No updates are to be performed")
}

/// Statuses of a stack that no operation is working on.
fn is_settled(status: &str) -> bool {
    !status.ends_with("_IN_PROGRESS")
}

/// Progress output: plain lines where stdout is a file or a pipe (journald, CI logs), plus a
/// spinner line on a terminal.
struct Progress {
    tty: bool,
    started: Instant,
    frame: usize,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            tty: std::io::stdout().is_terminal(),
            started: Instant::now(),
            frame: 0,
        }
    }

    fn line(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        if self.tty {
            // Clear the spinner line first.
            let _ = write!(out, "\r\x1b[2K");
        }
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    fn event(&self, event: &StackEvent) {
        let time = event
            .timestamp()
            .and_then(|t| {
                chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
                    .map(|t| t.format("%H:%M:%S").to_string())
            })
            .unwrap_or_default();
        let mut text = format!(
            "  {time} {:<28} {:<32} {}",
            event.resource_status().map(|s| s.as_str()).unwrap_or("?"),
            event.logical_resource_id().unwrap_or("?"),
            event.resource_type().unwrap_or(""),
        );
        if let Some(reason) = event.resource_status_reason().filter(|r| !r.is_empty()) {
            text.push_str(&format!(": {reason}"));
        }
        self.line(&text);
    }

    /// Waits `duration`, animating the spinner on a terminal.
    async fn pause(&mut self, duration: Duration, status: &str) {
        if !self.tty {
            tokio::time::sleep(duration).await;
            return;
        }
        const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
        let until = Instant::now() + duration;
        while Instant::now() < until {
            self.frame = (self.frame + 1) % FRAMES.len();
            let mut out = std::io::stdout().lock();
            let _ = write!(
                out,
                "\r\x1b[2K{} {status} ({}s)",
                FRAMES[self.frame],
                self.started.elapsed().as_secs()
            );
            let _ = out.flush();
            drop(out);
            tokio::time::sleep(Duration::from_millis(120)).await;
        }
    }

    fn done(&self) {
        if self.tty {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[2K");
            let _ = out.flush();
        }
    }
}

/// A CloudFormation client with the region and endpoint of the request, after making sure
/// there are credentials at all (the SDK's own error for that is a "dispatch failure").
async fn client(region: &str) -> Result<Client, DeployError> {
    let config = aws::sdk_config(region).await;
    let provider = config
        .credentials_provider()
        .ok_or_else(|| DeployError::NoCredentials {
            detail: "no credentials provider configured".to_owned(),
        })?;
    if let Err(error) = provider.provide_credentials().await {
        // The chain lists every provider it tried; its first sentence is the useful part.
        let detail = root_cause(&error);
        let detail = detail
            .split(". Attempted:")
            .next()
            .unwrap_or(&detail)
            .to_owned();
        return Err(DeployError::NoCredentials { detail });
    }
    Ok(Client::new(&config))
}

/// The stack by name, `None` when it does not exist (CloudFormation says so with a
/// ValidationError).
async fn find_stack(cfn: &Client, name: &str, region: &str) -> Result<Option<Stack>, DeployError> {
    match cfn.describe_stacks().stack_name(name).send().await {
        Ok(answer) => Ok(answer.stacks().first().cloned()),
        Err(error) => match AwsError::read(&error) {
            missing if missing.kind == Kind::NotFound => Ok(None),
            error => Err(aws_failure("DescribeStacks", region, error)),
        },
    }
}

fn status_of(stack: &Stack) -> String {
    stack
        .stack_status()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default()
}

/// Tracks which stack events were already shown, so each is printed once.
struct EventLog {
    stack_id: String,
    seen: HashSet<String>,
    /// Events of the current operation, oldest first.
    events: Vec<StackEvent>,
}

impl EventLog {
    /// Marks every event that exists now as old: only what happens from now on is shown.
    async fn start(cfn: &Client, stack_id: &str, region: &str) -> Result<EventLog, DeployError> {
        let mut log = EventLog {
            stack_id: stack_id.to_owned(),
            seen: HashSet::new(),
            events: Vec::new(),
        };
        log.fetch(cfn, region).await?;
        log.events.clear();
        Ok(log)
    }

    /// Reads events newest first until one already seen; returns the new ones oldest first.
    async fn fetch(&mut self, cfn: &Client, region: &str) -> Result<Vec<StackEvent>, DeployError> {
        let mut fresh = Vec::new();
        let mut token = None;
        'pages: loop {
            let page = cfn
                .describe_stack_events()
                .stack_name(&self.stack_id)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error("DescribeStackEvents", region, e))?;
            for event in page.stack_events() {
                let id = event.event_id().unwrap_or_default().to_owned();
                if self.seen.contains(&id) {
                    break 'pages;
                }
                fresh.push(event.clone());
            }
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        fresh.reverse();
        for event in &fresh {
            self.seen
                .insert(event.event_id().unwrap_or_default().to_owned());
        }
        self.events.extend(fresh.iter().cloned());
        Ok(fresh)
    }

    /// The first resource of this operation that failed, as CloudFormation reported it.
    fn first_failure(&self) -> Option<&StackEvent> {
        let failed = |e: &&StackEvent| {
            e.resource_status()
                .is_some_and(|s| s.as_str().ends_with("_FAILED"))
        };
        self.events
            .iter()
            .filter(failed)
            .find(|e| e.physical_resource_id() != Some(self.stack_id.as_str()))
            .or_else(|| self.events.iter().find(failed))
    }
}

/// Polls the stack until no operation runs on it, printing each new event; returns the stack
/// as it ended.
async fn follow(
    cfn: &Client,
    log: &mut EventLog,
    region: &str,
    stack_name: &str,
    timeout: Duration,
) -> Result<Stack, DeployError> {
    let mut progress = Progress::new();
    let started = Instant::now();
    loop {
        let stack = cfn
            .describe_stacks()
            .stack_name(&log.stack_id)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeStacks", region, e))?
            .stacks()
            .first()
            .cloned();
        // Events after the status: when the status is final, every event is already written.
        for event in log.fetch(cfn, region).await? {
            progress.event(&event);
        }
        let Some(stack) = stack else {
            return Err(DeployError::Aws {
                operation: "DescribeStacks",
                code: "NotFound".to_owned(),
                message: format!("stack {stack_name} disappeared while being watched"),
            });
        };
        let status = status_of(&stack);
        // REVIEW_IN_PROGRESS is how a new stack looks until CloudFormation starts executing.
        if is_settled(&status) {
            progress.done();
            return Ok(stack);
        }
        if started.elapsed() >= timeout {
            progress.done();
            return Err(DeployError::Timeout {
                stack: stack_name.to_owned(),
                status,
                waited: timeout,
            });
        }
        progress
            .pause(POLL_INTERVAL, &format!("{stack_name}: {status}"))
            .await;
    }
}

fn failure(operation: &'static str, stack: &Stack, log: &EventLog) -> DeployError {
    let status = status_of(stack);
    let failure = match log.first_failure() {
        Some(event) => StackFailure {
            operation,
            stack: stack.stack_name().unwrap_or_default().to_owned(),
            status,
            resource: event.logical_resource_id().unwrap_or("?").to_owned(),
            resource_type: event.resource_type().unwrap_or("?").to_owned(),
            resource_status: event
                .resource_status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            reason: event
                .resource_status_reason()
                .unwrap_or("no reason given")
                .to_owned(),
        },
        None => StackFailure {
            operation,
            stack: stack.stack_name().unwrap_or_default().to_owned(),
            status: status.clone(),
            resource: stack.stack_name().unwrap_or_default().to_owned(),
            resource_type: "AWS::CloudFormation::Stack".to_owned(),
            resource_status: status,
            reason: stack
                .stack_status_reason()
                .unwrap_or("no reason given")
                .to_owned(),
        },
    };
    DeployError::StackFailed(Box::new(failure))
}

/// The first failure in a stack's whole history (for a stack that failed before this run).
async fn first_failure_of(
    cfn: &Client,
    stack: &Stack,
    region: &str,
) -> Result<Option<StackEvent>, DeployError> {
    let stack_id = stack.stack_id().or(stack.stack_name()).unwrap_or_default();
    let mut log = EventLog {
        stack_id: stack_id.to_owned(),
        seen: HashSet::new(),
        events: Vec::new(),
    };
    log.fetch(cfn, region).await?;
    Ok(log.first_failure().cloned())
}

fn print_outputs(stack: &Stack) {
    println!(
        "Outputs of stack {}:",
        stack.stack_name().unwrap_or_default()
    );
    for item in stack.outputs() {
        println!(
            "  {:<20} {}",
            item.output_key().unwrap_or_default(),
            item.output_value().unwrap_or_default()
        );
    }
}

fn output_value<'a>(stack: &'a Stack, key: &str) -> Option<&'a str> {
    stack
        .outputs()
        .iter()
        .find(|o| o.output_key() == Some(key))
        .and_then(|o| o.output_value())
}

fn print_next_steps(stack: &Stack, region: &str) {
    println!();
    println!("Next steps:");
    println!(
        "  1. Each e-mail address receives \"AWS Notification - Subscription Confirmation\": \
         open its link, or no alarm e-mail will ever arrive."
    );
    match output_value(stack, output::QUEUE_URL) {
        Some(queue) => println!(
            "  2. Start the daemon (`iamwatchd run`) with region {region}, [alarm] queue_url = \
             {queue} and log_group = {}, and [sns] topic_arn = {} (the e-mail addresses \
             subscribe to that topic, not to the alarm topic) or [smtp]. If the daemon stops \
             reading the queue, alarm {} e-mails the addresses directly.",
            output_value(stack, output::LOG_GROUP_NAME).unwrap_or("?"),
            output_value(stack, output::NOTIFICATION_TOPIC_ARN).unwrap_or("?"),
            output_value(stack, output::DEAD_MANS_SWITCH_ALARM_NAME).unwrap_or("?"),
        ),
        None => println!(
            "  2. The daemon queue is disabled (--daemon-queue false): the alarms go by e-mail \
             only; deploy with --daemon-queue true to let `iamwatchd run` hear them."
        ),
    }
}

/// Deletes a stack, following its events, and returns how it ended.
async fn delete_and_follow(
    cfn: &Client,
    stack: &Stack,
    region: &str,
    timeout: Duration,
) -> Result<(), DeployError> {
    let name = stack.stack_name().unwrap_or_default().to_owned();
    let stack_id = stack.stack_id().unwrap_or(&name).to_owned();
    let mut log = EventLog::start(cfn, &stack_id, region).await?;
    cfn.delete_stack()
        .stack_name(&stack_id)
        .send()
        .await
        .map_err(|e| sdk_error("DeleteStack", region, e))?;
    let ended = follow(cfn, &mut log, region, &name, timeout).await?;
    if status_of(&ended) != "DELETE_COMPLETE" {
        return Err(failure("deletion", &ended, &log));
    }
    Ok(())
}

/// `iamwatchd deploy`: create or update the stack through a change set.
pub async fn deploy(request: &DeployRequest) -> Result<(), DeployError> {
    let region = request.target.region.as_str();
    let name = request.target.stack_name.as_str();
    let cfn = client(region).await?;

    let mut existing = find_stack(&cfn, name, region).await?;
    if let Some(stack) = &existing {
        let status = status_of(stack);
        match status.as_str() {
            "ROLLBACK_COMPLETE" => {
                // No flag needed: a stack whose first creation rolled back holds nothing (a
                // bucket it created is retained outside it), CloudFormation can only delete it,
                // and the operator asked for the stack to exist.
                let reason = match first_failure_of(&cfn, stack, region).await? {
                    Some(event) => format!(
                        "{} {}: {}",
                        event.logical_resource_id().unwrap_or("?"),
                        event.resource_status().map(|s| s.as_str()).unwrap_or("?"),
                        event.resource_status_reason().unwrap_or("no reason given")
                    ),
                    None => stack
                        .stack_status_reason()
                        .unwrap_or("no reason recorded")
                        .to_owned(),
                };
                println!(
                    "Stack {name} is in ROLLBACK_COMPLETE: its first creation failed ({reason}) \
                     and was rolled back, so none of its resources exist and CloudFormation can \
                     only delete it. {} it and creating it again; no flag is needed because \
                     nothing is lost.",
                    if request.dry_run {
                        "A real run would delete"
                    } else {
                        "Deleting"
                    }
                );
                if request.dry_run {
                    println!(
                        "Dry run: nothing changed. The new stack would create every resource \
                         of the template."
                    );
                    return Ok(());
                }
                delete_and_follow(&cfn, stack, region, request.timeout).await?;
                existing = None;
            }
            "REVIEW_IN_PROGRESS" => {}
            "ROLLBACK_FAILED" | "DELETE_FAILED" => {
                return Err(DeployError::StackStuck {
                    stack: name.to_owned(),
                    status,
                    advice: "Look at its events for the resource that could not be deleted, \
                             remove that resource by hand, then run `iamwatchd deploy --delete` \
                             and deploy again",
                })
            }
            "UPDATE_ROLLBACK_FAILED" => {
                return Err(DeployError::StackStuck {
                    stack: name.to_owned(),
                    status,
                    advice: "Fix the resource its events name, then run `aws cloudformation \
                             continue-update-rollback --stack-name` with this stack's name and \
                             deploy again",
                })
            }
            other if !is_settled(other) => {
                return Err(DeployError::StackBusy {
                    stack: name.to_owned(),
                    status,
                })
            }
            _ => {}
        }
    }
    // A stack in REVIEW_IN_PROGRESS was made by a change set never executed (an interrupted
    // run): it has no resources and takes CREATE change sets only.
    let creating = existing
        .as_ref()
        .is_none_or(|s| status_of(s) == "REVIEW_IN_PROGRESS");
    let previous = if creating { None } else { existing.as_ref() };
    let parameters = request.parameters(previous)?;

    let change_set_name = format!(
        "iamwatchd-{}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S-%3f")
    );
    let created = cfn
        .create_change_set()
        .stack_name(name)
        .change_set_name(&change_set_name)
        .change_set_type(if creating {
            ChangeSetType::Create
        } else {
            ChangeSetType::Update
        })
        .template_body(template::template_json())
        .set_parameters(Some(parameters))
        .capabilities(Capability::CapabilityIam)
        .description("iamwatchd deploy")
        .send()
        .await;
    let created = match created {
        Ok(created) => created,
        Err(error) => {
            let error = AwsError::read(&error);
            // Some CloudFormation implementations refuse an unchanged update at once instead
            // of failing the change set; it means the same.
            if error.code.is_some() && is_no_changes(&error.message) {
                println!("No changes: stack {name} is up to date.");
                if let Some(stack) = &existing {
                    print_outputs(stack);
                }
                return Ok(());
            }
            return Err(aws_failure("CreateChangeSet", region, error));
        }
    };
    let change_set_id = created.id().unwrap_or(&change_set_name).to_owned();
    let stack_id = created.stack_id().unwrap_or(name).to_owned();
    println!(
        "{} stack {name} in {region}: change set {change_set_name}",
        if creating { "Creating" } else { "Updating" }
    );

    // FAILED is a normal outcome here ("no changes"), so the waiter's verdict is not the
    // answer: the change set's own status and reason are.
    let _ = cfn
        .wait_until_change_set_create_complete()
        .change_set_name(&change_set_id)
        .stack_name(&stack_id)
        .wait(request.timeout)
        .await;
    let mut changes = Vec::new();
    let mut token = None;
    let (status, reason) = loop {
        let page = cfn
            .describe_change_set()
            .change_set_name(&change_set_id)
            .stack_name(&stack_id)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeChangeSet", region, e))?;
        changes.extend(
            page.changes()
                .iter()
                .filter_map(|c| c.resource_change().cloned()),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break (
                page.status().cloned(),
                page.status_reason().unwrap_or_default().to_owned(),
            );
        }
    };

    let delete_change_set = || async {
        cfn.delete_change_set()
            .change_set_name(&change_set_id)
            .stack_name(&stack_id)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteChangeSet", region, e))
    };
    // A stack made by this change set (a CREATE) must go with it when nothing is executed.
    let discard = || async {
        delete_change_set().await?;
        if creating {
            cfn.delete_stack()
                .stack_name(&stack_id)
                .send()
                .await
                .map_err(|e| sdk_error("DeleteStack", region, e))?;
        }
        Ok::<(), DeployError>(())
    };

    match status {
        Some(ChangeSetStatus::CreateComplete) => {}
        Some(ChangeSetStatus::Failed) if is_no_changes(&reason) => {
            delete_change_set().await?;
            println!("No changes: stack {name} is up to date.");
            if let Some(stack) = &existing {
                print_outputs(stack);
            }
            return Ok(());
        }
        other => {
            discard().await?;
            return Err(DeployError::Aws {
                operation: "CreateChangeSet",
                code: other
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_else(|| "no status".to_owned()),
                message: if reason.is_empty() {
                    "the change set did not complete".to_owned()
                } else {
                    reason
                },
            });
        }
    }

    println!("Changes:");
    if changes.is_empty() {
        println!("  (no resource changes; parameters or outputs only)");
    }
    for change in &changes {
        let action = change.action().map(|a| a.as_str()).unwrap_or("?");
        let replacement = match change.replacement().map(|r| r.as_str()) {
            Some("True") => " (replaced)",
            Some("Conditional") => " (may be replaced)",
            _ => "",
        };
        println!(
            "  {action:<8} {:<28} {}{replacement}",
            change.logical_resource_id().unwrap_or("?"),
            change.resource_type().unwrap_or("")
        );
    }

    if request.dry_run {
        discard().await?;
        println!("Dry run: change set deleted, nothing changed.");
        return Ok(());
    }

    let mut log = EventLog::start(&cfn, &stack_id, region).await?;
    cfn.execute_change_set()
        .change_set_name(&change_set_id)
        .stack_name(&stack_id)
        .send()
        .await
        .map_err(|e| sdk_error("ExecuteChangeSet", region, e))?;
    let ended = follow(&cfn, &mut log, region, name, request.timeout).await?;
    let status = status_of(&ended);
    if status != "CREATE_COMPLETE" && status != "UPDATE_COMPLETE" {
        let operation = if creating { "creation" } else { "update" };
        let error = failure(operation, &ended, &log);
        if status == "ROLLBACK_COMPLETE" {
            println!(
                "The stack was rolled back and is now empty; fix the cause and run deploy again \
                 (it replaces the failed stack)."
            );
        }
        return Err(error);
    }
    println!("Stack {name} is {status}.");
    print_outputs(&ended);
    print_next_steps(&ended, region);
    Ok(())
}

/// The bucket the stack created for the trail, if it did (it is retained on deletion).
async fn created_bucket(
    cfn: &Client,
    stack: &Stack,
    region: &str,
) -> Result<Option<String>, DeployError> {
    let stack_id = stack.stack_id().or(stack.stack_name()).unwrap_or_default();
    let mut token = None;
    loop {
        let page = cfn
            .list_stack_resources()
            .stack_name(stack_id)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| sdk_error("ListStackResources", region, e))?;
        let found = page.stack_resource_summaries().iter().find(|r| {
            r.logical_resource_id() == Some(template::CREATED_BUCKET_LOGICAL_ID)
                && r.resource_status()
                    .is_some_and(|s| s.as_str() != "DELETE_COMPLETE")
        });
        if let Some(bucket) = found {
            return Ok(bucket.physical_resource_id().map(str::to_owned));
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(None);
        }
    }
}

/// `iamwatchd deploy --delete`: delete the stack, following its events.
pub async fn delete(request: &DeleteRequest) -> Result<(), DeployError> {
    let region = request.region.as_str();
    let name = request.stack_name.as_str();
    let cfn = client(region).await?;
    let Some(stack) = find_stack(&cfn, name, region).await? else {
        println!("Stack {name} does not exist in {region}: nothing to delete.");
        return Ok(());
    };
    let status = status_of(&stack);
    if !is_settled(&status) && status != "REVIEW_IN_PROGRESS" {
        return Err(DeployError::StackBusy {
            stack: name.to_owned(),
            status,
        });
    }
    // The bucket the stack created is retained (DeletionPolicy Retain): say so and name it.
    let retained_bucket = created_bucket(&cfn, &stack, region).await?;
    println!("Deleting stack {name} in {region}");
    delete_and_follow(&cfn, &stack, region, request.timeout).await?;
    println!("Stack {name} is deleted.");
    if let Some(bucket) = retained_bucket {
        println!(
            "The S3 bucket {bucket} with the trail's log files was retained (it is the audit \
             record); empty and delete it yourself once you no longer need those logs."
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> DeployRequest {
        DeployRequest {
            target: DeployTarget {
                stack_name: crate::config::defaults::STACK_NAME.to_owned(),
                region: crate::aws::IAM_EVENTS_REGION.to_owned(),
                allow_region: false,
                settings: crate::config::DeployConfig {
                    emails: vec!["admin@example.com".to_owned()],
                    ..crate::config::DeployConfig::default()
                },
                warnings: Vec::new(),
            },
            dry_run: false,
            timeout: DEFAULT_TIMEOUT,
        }
    }

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

    #[test]
    fn update_keeps_settings_not_given() {
        let stack = Stack::builder()
            .stack_name("iamwatchd")
            .parameters(
                Parameter::builder()
                    .parameter_key(param::ALARM_THRESHOLD)
                    .parameter_value("5")
                    .build(),
            )
            .parameters(
                Parameter::builder()
                    .parameter_key(param::EMAILS[0])
                    .parameter_value("old@example.com")
                    .build(),
            )
            .build();
        let mut r = request();
        r.target.settings.emails.clear();
        r.target.settings.log_retention_days = Some(30);
        let parameters = r.parameters(Some(&stack)).unwrap();
        let value = |key: &str| {
            parameters
                .iter()
                .find(|p| p.parameter_key() == Some(key))
                .and_then(|p| p.parameter_value())
                .unwrap_or_else(|| panic!("{key} is set"))
                .to_owned()
        };
        assert_eq!(value(param::ALARM_THRESHOLD), "5");
        assert_eq!(value(param::EMAILS[0]), "old@example.com");
        assert_eq!(value(param::LOG_RETENTION_DAYS), "30");
        // Not in the old stack and not given: the template's default.
        assert_eq!(value(param::CIS_FILTER), "false");
        assert_eq!(value(param::ALARM_PERIOD), "300");
        assert_eq!(value(param::BUCKET), "");
        assert_eq!(parameters.len(), 10, "every parameter is spelled out");
        // Creating needs an address.
        assert!(matches!(
            r.parameters(None),
            Err(DeployError::NoEmail { .. })
        ));
    }

    #[test]
    fn given_addresses_replace_all_three() {
        let mut r = request();
        r.target.settings.emails = vec!["a@example.com".to_owned(), "b@example.com".to_owned()];
        let parameters = r.parameters(None).unwrap();
        let values: Vec<_> = param::EMAILS
            .iter()
            .map(|key| {
                parameters
                    .iter()
                    .find(|p| p.parameter_key() == Some(*key))
                    .and_then(|p| p.parameter_value())
                    .unwrap()
            })
            .collect();
        assert_eq!(values, ["a@example.com", "b@example.com", ""]);
    }
}
