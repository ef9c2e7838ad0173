//! `iamwatchd check`: is this machine ready to run the daemon?
//!
//! The configuration is checked first (every problem at once, by [`crate::config`]); then the
//! environment, in the order an operator would fix it: credentials (who am I), the region (the
//! us-east-1 trap), the alarm-path stack and each of its parts (trail logging, the metric
//! filter's pattern, the alarm and its actions, a confirmed e-mail subscription, each part
//! encrypted with the stack's KMS key and a key policy every service can use), and each
//! notifier. Every problem comes with the fix, and one failing check never hides the others.
//!
//! Everything here only reads, except `--send-test`, which sends one clearly marked test
//! message through every notifier.

mod accounts;
pub(crate) mod encryption;
mod notifiers;
pub(crate) mod stack;

use std::fmt;

use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

use crate::aws::errors::AwsError;
use crate::config::Config;
use notifiers::notifiers;
use stack::stack;

/// The AWS actions this file calls itself (the stack's parts are checked in `stack`, with
/// its own list); `deploy/iamwatchd-policy.json` must allow them, which `src/aws/actions.rs`
/// enforces.
#[cfg(test)]
pub(crate) const ACTIONS: &[&str] = &["sts:GetCallerIdentity"];

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Nothing to fix.
    Ok,
    /// Worth reading, but the daemon can run.
    Warn,
    /// The environment is not ready: `check` exits with 69.
    Fail,
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// How the check came out.
    pub status: Status,
    /// What was checked and what was found.
    pub text: String,
    /// What to do about a warning or failure.
    pub fix: Option<String>,
}

/// The checklist, in the order the checks ran.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// One item per check result.
    pub items: Vec<Item>,
}

impl Report {
    pub(crate) fn ok(&mut self, text: impl Into<String>) {
        self.items.push(Item {
            status: Status::Ok,
            text: text.into(),
            fix: None,
        });
    }

    pub(crate) fn problem(
        &mut self,
        status: Status,
        text: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.items.push(Item {
            status,
            text: text.into(),
            fix: Some(fix.into()),
        });
    }

    pub(crate) fn fail(&mut self, text: impl Into<String>, fix: impl Into<String>) {
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
    /// Try every member account's role, not a sample (`[accounts]`).
    pub all_accounts: bool,
}

/// An AWS error in one line, with the service's code and message.
pub(crate) fn aws_error<E>(error: &SdkError<E, HttpResponse>) -> String
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

    if account.is_some() {
        accounts::accounts(
            &sdk,
            config,
            account.as_deref(),
            options.all_accounts,
            &mut report,
        )
        .await;
    }
    notifiers(config, options, account.as_deref(), &mut report).await;
    report
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
