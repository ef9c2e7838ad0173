//! Following a stack operation: every new stack event printed as it happens, and, when the
//! operation fails, the first resource that failed and its reason.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use aws_sdk_cloudformation::types::{Stack, StackEvent};
use aws_sdk_cloudformation::Client;

use super::error::{sdk_error, DeployError, StackFailure};
use super::progress::Progress;
use super::{is_settled, status_of};

/// The AWS actions this file calls (see `src/aws/actions.rs`).
#[cfg(test)]
pub(crate) const ACTIONS: &[&str] = &[
    "cloudformation:DeleteStack",
    "cloudformation:DescribeStackEvents",
    "cloudformation:DescribeStacks",
];

/// Pause between two looks at the stack's events: CloudFormation's own console polls about
/// this often, and it keeps well below DescribeStackEvents' rate limit.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Tracks which stack events were already shown, so each is printed once.
pub(super) struct EventLog {
    stack_id: String,
    seen: HashSet<String>,
    /// Events of the current operation, oldest first.
    events: Vec<StackEvent>,
}

impl EventLog {
    /// Marks every event that exists now as old: only what happens from now on is shown.
    pub(super) async fn start(
        cfn: &Client,
        stack_id: &str,
        region: &str,
    ) -> Result<EventLog, DeployError> {
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
pub(super) async fn follow(
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

pub(super) fn failure(operation: &'static str, stack: &Stack, log: &EventLog) -> DeployError {
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
pub(super) async fn first_failure_of(
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

/// Deletes a stack, following its events, and returns how it ended.
pub(super) async fn delete_and_follow(
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
