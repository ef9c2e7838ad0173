//! A create or update through a change set: the parameters spelled out, the change set made
//! and described, shown to the operator, then discarded (`--dry-run`, no changes) or executed
//! and followed to its end.

use aws_sdk_cloudformation::client::Waiters;
use aws_sdk_cloudformation::types::{Capability, ChangeSetStatus, ChangeSetType, Parameter, Stack};
use aws_sdk_cloudformation::Client;

use super::error::{aws_failure, sdk_error, DeployError};
use super::follow::{failure, follow, EventLog};
use super::{is_no_changes, status_of, DeployRequest};
use crate::aws::errors::AwsError;
use crate::stack::names::{output, param};
use crate::stack::template;

/// The AWS actions this file calls (see `src/aws/actions.rs`; the waiter polls
/// DescribeChangeSet).
#[cfg(test)]
pub(crate) const ACTIONS: &[&str] = &[
    "cloudformation:CreateChangeSet",
    "cloudformation:DeleteChangeSet",
    "cloudformation:DeleteStack",
    "cloudformation:DescribeChangeSet",
    "cloudformation:ExecuteChangeSet",
];

impl DeployRequest {
    /// The stack parameters, every one with its value. On an update, a setting not given
    /// keeps the stack's current value (running `deploy` again must not silently undo an
    /// earlier `--alarm-threshold`); on a create it takes the template's default. Values are
    /// spelled out rather than sent as `UsePreviousValue`, so the change set says exactly what
    /// the stack will be.
    ///
    /// `organization_id` is the organization's, when the trail is (or stays) an organization
    /// trail.
    pub(super) fn parameters(
        &self,
        existing: Option<&Stack>,
        organization_id: Option<&str>,
    ) -> Result<Vec<Parameter>, DeployError> {
        let settings = &self.target.settings;
        if settings.emails.is_empty() && existing.is_none() {
            return Err(DeployError::NoEmail {
                stack: self.target.stack_name.clone(),
            });
        }
        let declared = template::parameters();
        let previous = |key: &str| -> Option<String> {
            existing?
                .parameters()
                .iter()
                .find(|p| p.parameter_key() == Some(key))
                .and_then(|p| p.parameter_value())
                .map(str::to_owned)
        };
        let default = |key: &str| -> String {
            match &declared[key]["Default"] {
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
        set(param::KMS_KEY, settings.kms_key.clone());
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
        set(param::ORGANIZATION_TRAIL, flag(settings.organization));
        set(
            param::ORGANIZATION_ID,
            Some(organization_id.unwrap_or_default().to_owned()),
        );
        Ok(parameters)
    }
}

/// Creates the change set for `request` (a CREATE when `creating`), shows it, and discards or
/// executes it; `existing` is the stack as it is (its outputs are shown when nothing changes).
pub(super) async fn apply(
    cfn: &Client,
    request: &DeployRequest,
    existing: Option<&Stack>,
    creating: bool,
    organization_id: Option<&str>,
) -> Result<(), DeployError> {
    let region = request.target.region.as_str();
    let name = request.target.stack_name.as_str();
    let previous = if creating { None } else { existing };
    let parameters = request.parameters(previous, organization_id)?;

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
                crate::outln!("No changes: stack {name} is up to date.");
                if let Some(stack) = existing {
                    print_outputs(stack);
                }
                return Ok(());
            }
            return Err(aws_failure("CreateChangeSet", region, error));
        }
    };
    let change_set_id = created.id().unwrap_or(&change_set_name).to_owned();
    let stack_id = created.stack_id().unwrap_or(name).to_owned();
    crate::outln!(
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
            crate::outln!("No changes: stack {name} is up to date.");
            if let Some(stack) = existing {
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

    crate::outln!("Changes:");
    if changes.is_empty() {
        crate::outln!("  (no resource changes; parameters or outputs only)");
    }
    for change in &changes {
        let action = change.action().map(|a| a.as_str()).unwrap_or("?");
        let replacement = match change.replacement().map(|r| r.as_str()) {
            Some("True") => " (replaced)",
            Some("Conditional") => " (may be replaced)",
            _ => "",
        };
        crate::outln!(
            "  {action:<8} {:<28} {}{replacement}",
            change.logical_resource_id().unwrap_or("?"),
            change.resource_type().unwrap_or("")
        );
    }

    if request.dry_run {
        discard().await?;
        crate::outln!("Dry run: change set deleted, nothing changed.");
        return Ok(());
    }

    let mut log = EventLog::start(cfn, &stack_id, region).await?;
    cfn.execute_change_set()
        .change_set_name(&change_set_id)
        .stack_name(&stack_id)
        .send()
        .await
        .map_err(|e| sdk_error("ExecuteChangeSet", region, e))?;
    let ended = follow(cfn, &mut log, region, name, request.timeout).await?;
    let status = status_of(&ended);
    if status != "CREATE_COMPLETE" && status != "UPDATE_COMPLETE" {
        let operation = if creating { "creation" } else { "update" };
        let error = failure(operation, &ended, &log);
        if status == "ROLLBACK_COMPLETE" {
            crate::outln!(
                "The stack was rolled back and is now empty; fix the cause and run deploy again \
                 (it replaces the failed stack)."
            );
        }
        return Err(error);
    }
    crate::outln!("Stack {name} is {status}.");
    print_outputs(&ended);
    print_next_steps(&ended, region);
    Ok(())
}

fn print_outputs(stack: &Stack) {
    crate::outln!(
        "Outputs of stack {}:",
        stack.stack_name().unwrap_or_default()
    );
    for item in stack.outputs() {
        crate::outln!(
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
    crate::outln!();
    crate::outln!("Next steps:");
    crate::outln!(
        "  1. Each e-mail address receives \"AWS Notification - Subscription Confirmation\": \
         open its link, or no alarm e-mail will ever arrive."
    );
    match output_value(stack, output::QUEUE_URL) {
        Some(queue) => crate::outln!(
            "  2. Start the daemon (`iamwatchd run`) with region {region}, [alarm] queue_url = \
             {queue} and log_group = {}, and [sns] topic_arn = {} (the e-mail addresses \
             subscribe to that topic, not to the alarm topic) or [smtp]. If the daemon stops \
             reading the queue, alarm {} e-mails the addresses directly.",
            output_value(stack, output::LOG_GROUP_NAME).unwrap_or("?"),
            output_value(stack, output::NOTIFICATION_TOPIC_ARN).unwrap_or("?"),
            output_value(stack, output::DEAD_MANS_SWITCH_ALARM_NAME).unwrap_or("?"),
        ),
        None => crate::outln!(
            "  2. The daemon queue is disabled (--daemon-queue false): the alarms go by e-mail \
             only; deploy with --daemon-queue true to let `iamwatchd run` hear them."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DeployTarget;

    fn request() -> DeployRequest {
        DeployRequest {
            target: DeployTarget {
                stack_name: crate::config::defaults::STACK_NAME.to_owned(),
                region: crate::aws::IAM_EVENTS_REGION.to_owned(),
                settings: crate::config::DeployConfig {
                    emails: vec!["admin@example.com".to_owned()],
                    ..crate::config::DeployConfig::default()
                },
                accounts: crate::accounts::config::AccountsConfig::default(),
                warnings: Vec::new(),
            },
            dry_run: false,
            timeout: super::super::DEFAULT_TIMEOUT,
        }
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
        let parameters = r.parameters(Some(&stack), None).unwrap();
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
        // An old stack has no key parameter: the update creates the stack's key.
        assert_eq!(value(param::KMS_KEY), "");
        assert_eq!(value(param::ORGANIZATION_TRAIL), "false");
        assert_eq!(value(param::ORGANIZATION_ID), "");
        assert_eq!(parameters.len(), 13, "every parameter is spelled out");
        // An organization trail names its organization.
        r.target.settings.organization = Some(true);
        let parameters = r.parameters(Some(&stack), Some("o-abcdefghij")).unwrap();
        let org = |key: &str| {
            parameters
                .iter()
                .find(|p| p.parameter_key() == Some(key))
                .and_then(|p| p.parameter_value())
                .map(str::to_owned)
        };
        assert_eq!(org(param::ORGANIZATION_TRAIL).as_deref(), Some("true"));
        assert_eq!(org(param::ORGANIZATION_ID).as_deref(), Some("o-abcdefghij"));
        // Creating needs an address.
        assert!(matches!(
            r.parameters(None, None),
            Err(DeployError::NoEmail { .. })
        ));
    }

    #[test]
    fn given_addresses_replace_all_three() {
        let mut r = request();
        r.target.settings.emails = vec!["a@example.com".to_owned(), "b@example.com".to_owned()];
        let parameters = r.parameters(None, None).unwrap();
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
