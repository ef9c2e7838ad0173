//! The `iamwatchd` command: parses arguments and calls into the library.

use std::process::ExitCode;
use std::time::Duration;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use iamwatchd::config::{self, Config, ConfigErrors, LogFormat};
use iamwatchd::deploy::{self, DeleteRequest, DeployRequest};
use iamwatchd::template;

/// Tells you, fast and exactly once, whenever anyone changes IAM in your AWS account, and
/// whenever someone tampers with the monitoring itself.
#[derive(Debug, Parser)]
#[command(name = "iamwatchd", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or update the alarm-path stack (trail, log group, metric filters, alarms, SNS
    /// topic, daemon queue) through a CloudFormation change set, or delete it.
    Deploy(DeployArgs),
    /// Print the CloudFormation template that `deploy` uses.
    Template,
    /// Run the daemon: poll CloudTrail for IAM changes and tampering, report each once.
    ///
    /// Stops on SIGTERM or SIGINT: polling ends, notifications in flight get 20 seconds,
    /// everything not yet sent is delivered after the next start.
    Run(ConfigArgs),
    /// Check that the daemon can run here: the configuration (every problem at once, with its
    /// key path), then credentials (who am I), the region (IAM events are recorded in us-east-1
    /// only), the stack and its parts (trail logging, metric filter, alarms, e-mail subscription
    /// confirmed) and each notifier. Prints a checklist with the fix for every problem.
    ///
    /// Exit status: 0 ready, 78 configuration invalid (EX_CONFIG), 69 environment not ready
    /// (EX_UNAVAILABLE: credentials, stack or a notifier).
    Check(CheckArgs),
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// The configuration file (TOML); IAMWATCHD__SECTION__KEY environment variables override it.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CONFIG)]
    config: PathBuf,
}

#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Check the file only, without touching the network (for systemd's ExecStartPre).
    #[arg(long, conflicts_with = "send_test")]
    offline: bool,
    /// Also send a clearly marked test message through every notifier.
    #[arg(long)]
    send_test: bool,
}

#[derive(Debug, Args)]
struct DeployArgs {
    /// E-mail address that receives the alarms (repeat for up to three). Required when the
    /// stack is created; on an update, omitting it keeps the current addresses.
    #[arg(long = "email", value_name = "ADDR")]
    emails: Vec<String>,
    /// Existing S3 bucket for the trail's log files (its policy must let CloudTrail write).
    /// Without it, the stack creates a private, encrypted bucket that is kept on deletion.
    #[arg(long, value_name = "NAME")]
    bucket: Option<String>,
    /// Name of the CloudFormation stack.
    #[arg(long, value_name = "NAME", default_value = deploy::DEFAULT_STACK_NAME)]
    stack_name: String,
    /// Region of the stack. IAM events are recorded in us-east-1 only.
    #[arg(long, value_name = "R", default_value = iamwatchd::aws::IAM_EVENTS_REGION)]
    region: String,
    /// Deploy to a region other than us-east-1 anyway.
    #[arg(long)]
    allow_region: bool,
    /// Create the change set, show what would change, delete it again.
    #[arg(long, conflicts_with = "delete")]
    dry_run: bool,
    /// Delete the stack (the S3 bucket it created, if any, is kept).
    #[arg(long)]
    delete: bool,
    /// Days CloudTrail records stay in the log group (default 365).
    #[arg(long, value_name = "DAYS")]
    log_retention_days: Option<u32>,
    /// Seconds over which the alarms count changes (default 300).
    #[arg(long, value_name = "SECONDS")]
    alarm_period: Option<u32>,
    /// Changes within one period that set off the alarm (default 1).
    #[arg(long, value_name = "COUNT")]
    alarm_threshold: Option<u32>,
    /// Add the exact CIS 4.4 / Security Hub CloudWatch.4 filter and alarm (default false).
    #[arg(long, value_name = "BOOL")]
    cis_filter: Option<bool>,
    /// Add the alarm on tampering with the monitoring (default true).
    #[arg(long, value_name = "BOOL")]
    tampering_alarm: Option<bool>,
    /// Add the SQS queue through which the daemon hears the alarms (default true).
    #[arg(long, value_name = "BOOL")]
    daemon_queue: Option<bool>,
    /// Give up waiting for CloudFormation after this many minutes.
    #[arg(long, value_name = "MINUTES", default_value_t = 60)]
    timeout_minutes: u64,
}

/// Where `run` and `check` look for the configuration unless told otherwise.
const DEFAULT_CONFIG: &str = "/etc/iamwatchd/iamwatchd.toml";

/// sysexits' EX_CONFIG: the configuration is wrong (as opposed to the environment not ready).
const EXIT_CONFIG: u8 = 78;

/// sysexits' EX_UNAVAILABLE: the configuration is fine but the environment is not ready
/// (credentials, the stack, a notifier).
const EXIT_UNAVAILABLE: u8 = 69;

/// The configuration, or a failure that has already been printed with every problem.
fn load_config(path: &std::path::Path) -> Result<Config, ConfigErrors> {
    let config = config::check_offline(path)?;
    for warning in &config.warnings {
        eprintln!("iamwatchd: warning: {warning}");
    }
    Ok(config)
}

fn init_logging(log: &config::LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_new(&log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}

/// Resolves on the first SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(args) => {
            let config = load_config(&args.config)?;
            init_logging(&config.log);
            iamwatchd::service::run(config, stop_signal())
                .await
                .context("iamwatchd run")?;
        }
        Command::Check(args) => {
            let config = load_config(&args.config.config)?;
            println!("✓ configuration {}: valid", args.config.config.display());
            if args.offline {
                return Ok(ExitCode::SUCCESS);
            }
            let options = iamwatchd::check::Options {
                send_test: args.send_test,
            };
            let report = iamwatchd::check::check(&config, options).await;
            print!("{report}");
            if !report.ready() {
                println!("not ready: fix the ✗ lines above and run `iamwatchd check` again");
                return Ok(ExitCode::from(EXIT_UNAVAILABLE));
            }
            println!("ready");
        }
        Command::Template => {
            print!("{}", template::template_json());
        }
        Command::Deploy(args) => {
            let timeout = Duration::from_secs(args.timeout_minutes.saturating_mul(60));
            if args.delete {
                deploy::delete(&DeleteRequest {
                    stack_name: args.stack_name,
                    region: args.region,
                    allow_region: args.allow_region,
                    timeout,
                })
                .await?;
            } else {
                deploy::deploy(&DeployRequest {
                    stack_name: args.stack_name,
                    region: args.region,
                    allow_region: args.allow_region,
                    emails: args.emails,
                    bucket: args.bucket,
                    log_retention_days: args.log_retention_days,
                    alarm_period_seconds: args.alarm_period,
                    alarm_threshold: args.alarm_threshold,
                    cis_filter: args.cis_filter,
                    tampering_alarm: args.tampering_alarm,
                    daemon_queue: args.daemon_queue,
                    dry_run: args.dry_run,
                    timeout,
                })
                .await?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("iamwatchd: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(error) if error.downcast_ref::<ConfigErrors>().is_some() => {
            eprintln!("iamwatchd: {error:#}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(error) => {
            eprintln!("iamwatchd: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn deploy_flags_parse() {
        let cli = Cli::try_parse_from([
            "iamwatchd",
            "deploy",
            "--email",
            "a@example.com",
            "--email",
            "b@example.com",
            "--bucket",
            "logs",
            "--stack-name",
            "s",
            "--region",
            "eu-west-1",
            "--allow-region",
            "--dry-run",
            "--cis-filter",
            "true",
        ])
        .unwrap();
        let Command::Deploy(args) = cli.command else {
            panic!("deploy")
        };
        assert_eq!(args.emails, ["a@example.com", "b@example.com"]);
        assert!(args.dry_run && args.allow_region && !args.delete);
        assert_eq!(args.cis_filter, Some(true));
        assert!(Cli::try_parse_from(["iamwatchd", "deploy", "--dry-run", "--delete"]).is_err());
    }

    #[test]
    fn check_flags_parse_and_offline_sends_nothing() {
        let cli = Cli::try_parse_from(["iamwatchd", "check", "--send-test"]).unwrap();
        let Command::Check(args) = cli.command else {
            panic!("check")
        };
        assert!(args.send_test && !args.offline);
        assert!(Cli::try_parse_from(["iamwatchd", "check", "--offline", "--send-test"]).is_err());
    }
}
