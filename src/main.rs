//! The `iamwatchd` command: parses arguments and calls into the library.

use std::process::ExitCode;
use std::time::Duration;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use iamwatchd::config::{self, Config, ConfigErrors, DeployFlags, LogFormat, RawDeploy};
use iamwatchd::scan::ScanOptions;
use iamwatchd::stack::deploy::{self, DeployRequest};
use iamwatchd::stack::template;

/// `iamwatchd --version`: the release, the git commit and the build date (see build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("IAMWATCHD_GIT_COMMIT"),
    ", built ",
    env!("IAMWATCHD_BUILD_DATE"),
    ")"
);

/// Tells you, fast and exactly once, whenever anyone changes IAM in your AWS account, and
/// whenever someone tampers with the monitoring itself.
#[derive(Debug, Parser)]
#[command(name = "iamwatchd", version = VERSION, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or update the alarm-path stack (trail, log group, metric filters, alarms, SNS
    /// topic, daemon queue) through a CloudFormation change set, or delete it.
    ///
    /// Settings come from the flags and, only when --config PATH is given, from that file's
    /// [aws] (region, allow_non_us_east_1, stack_name) and [deploy] sections; a flag given on
    /// the command line wins over the file. A setting neither gives keeps the stack's current
    /// value on an update and takes the template's default on a create. The daemon's sections
    /// of the file ([smtp], [sns], ...) are not checked here.
    ///
    /// Exit status: 0 done, 1 failed, 78 configuration file invalid.
    Deploy(DeployArgs),
    /// Print the CloudFormation template that `deploy` uses (with --member-role: the member
    /// role's, which `deploy --member-roles` puts in every member account).
    Template {
        /// The member-role template: the role the daemon assumes in a member account, allowed
        /// to read its event history and alias only.
        #[arg(long)]
        member_role: bool,
    },
    /// Run the daemon: poll CloudTrail for IAM changes and tampering, report each once.
    ///
    /// Stops on SIGTERM or SIGINT: polling ends, notifications in flight get 20 seconds,
    /// everything not yet sent is delivered after the next start.
    ///
    /// Exit status: 0 stopped by a signal, 1 failed, 65 state database corrupt (restore it
    /// from a backup or move it aside), 75 state database locked (another iamwatchd uses the
    /// state directory), 78 configuration invalid (EX_CONFIG).
    Run(ConfigArgs),
    /// Report the IAM changes and tampering in past records, with the daemon's rules.
    ///
    /// From CloudTrail's own history (`--since`, up to 90 days) or from CloudTrail log files
    /// (`--files`, as the trail writes them to S3). Prints a table on a terminal, JSON lines
    /// with `--json` or when piped; sends nothing unless `--notify`.
    Scan(ScanArgs),
    /// Ask a running daemon's health endpoint whether it is well (for container health checks).
    ///
    /// Exit status: 0 healthy, 1 unhealthy or unreachable.
    Health {
        /// The daemon's health URL (`[metrics] listen` plus /healthz) [default:
        /// http://$IAMWATCHD__METRICS__LISTEN/healthz when that variable is set, as it then
        /// moves the daemon's listener too; else http://127.0.0.1:9847/healthz].
        #[arg(long)]
        url: Option<String>,
    },
    /// Print a shell completion script, e.g. `iamwatchd completions bash >
    /// /etc/bash_completion.d/iamwatchd`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Check that the daemon can run here: the configuration (every problem at once, with its
    /// key path), then credentials (who am I), the region (IAM events are recorded in us-east-1
    /// only), the stack and its parts (trail logging, metric filter, alarms, e-mail subscription
    /// confirmed) and each notifier. Prints a checklist with the fix for every problem.
    ///
    /// Exit status: 0 ready, 78 configuration invalid (EX_CONFIG), 69 environment not ready
    /// (EX_UNAVAILABLE: credentials, stack or a notifier).
    Check(CheckArgs),
    /// Write the man pages (iamwatchd.1 and iamwatchd-SUBCOMMAND.1) into a directory, for
    /// packagers.
    #[command(hide = true)]
    Man {
        /// Where to write them (created if missing).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// The analysis of policy changes.
    #[command(subcommand)]
    Analysis(AnalysisCommand),
}

#[derive(Debug, Subcommand)]
enum AnalysisCommand {
    /// Record the account's inline policies, trust policies, permissions boundaries and
    /// managed policies' default versions (IAM GetAccountAuthorizationDetails, paged, within
    /// [analysis] seed_requests_per_second and seed_max_requests) as the previous versions the
    /// next changes are compared with. The daemon does this once on its first start.
    Seed(ConfigArgs),
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// The configuration file (TOML); IAMWATCHD__SECTION__KEY environment variables override it.
    #[arg(long, value_name = "PATH", default_value = config::defaults::CONFIG_FILE)]
    config: PathBuf,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["since", "files"])))]
struct ScanArgs {
    /// Look back this far in LookupEvents (e.g. 24h, 7d; at most 90d), or from this time
    /// (RFC 3339, e.g. 2026-12-02T10:00:00Z).
    #[arg(long, value_name = "DURATION|TIME", value_parser = parse_since)]
    since: Option<Duration>,
    /// Only events up to this time (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    until: Option<chrono::DateTime<chrono::Utc>>,
    /// Only events by this principal (an ARN or a glob of one; a role's sessions count as the
    /// role), e.g. the one a digest names.
    #[arg(long, value_name = "ARN")]
    principal: Option<String>,
    /// CloudTrail log files (.json, .json.gz) or directories of them.
    #[arg(long, value_name = "PATH", num_args = 1..)]
    files: Vec<PathBuf>,
    /// One JSON object per finding instead of the table.
    #[arg(long)]
    json: bool,
    /// Use this configuration's rules (allow-list, failed calls, minimum severity), region
    /// and, with --notify, its notifiers and store.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Region for --since (IAM events are recorded in us-east-1 only).
    #[arg(long, value_name = "R")]
    region: Option<String>,
    /// Send each finding the daemon has not already reported (needs --config).
    #[arg(long, requires = "config")]
    notify: bool,
}

impl ScanArgs {
    fn options(&self) -> ScanOptions {
        ScanOptions {
            since: self.since,
            until: self.until,
            principal: self.principal.clone(),
            files: self.files.clone(),
            json: self.json,
            region: self.region.clone(),
            notify: self.notify,
        }
    }
}

fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("not an RFC 3339 time ({e}); write e.g. 2026-12-02T10:00:00Z"))
}

fn parse_since(text: &str) -> Result<Duration, String> {
    let since = match parse_time(text) {
        Ok(time) => (chrono::Utc::now() - time)
            .to_std()
            .map_err(|_| format!("{text} is in the future"))?,
        Err(_) => humantime::parse_duration(text).map_err(|e| {
            format!("{e}; write a duration (24h, 7d) or an RFC 3339 time (2026-12-02T10:00:00Z)")
        })?,
    };
    if since > iamwatchd::aws::LOOKUP_EVENTS_RETENTION {
        return Err(
            "LookupEvents keeps 90 days: use at most 90d, or --files for older logs".into(),
        );
    }
    Ok(since)
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
    /// With [accounts]: try every member account's role, not a sample of 5.
    #[arg(long, conflicts_with = "offline")]
    all_accounts: bool,
}

#[derive(Debug, Args)]
struct DeployArgs {
    /// Read the settings from this configuration file ([aws] and [deploy]); flags override it.
    /// Without --config no file is read, not even /etc/iamwatchd/iamwatchd.toml, so that the
    /// same command does the same thing on every machine.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// E-mail address that receives the alarms (repeat for up to three); replaces the file's
    /// deploy.emails. Required when the stack is created; on an update, omitting it keeps the
    /// current addresses.
    #[arg(long = "email", value_name = "ADDR")]
    emails: Vec<String>,
    /// Existing S3 bucket for the trail's log files (its policy must let CloudTrail write).
    /// Without it, the stack creates a private, encrypted bucket that is kept on deletion.
    #[arg(long, value_name = "NAME")]
    bucket: Option<String>,
    /// ARN of an existing customer-managed KMS key (in the stack's region) for the trail's log
    /// files, the log group, the topics and the queue; its key policy must grant what the
    /// created key's does (see `iamwatchd template`). Without it, the stack creates a key with
    /// rotation on; "" goes back to that key.
    #[arg(long, value_name = "ARN")]
    kms_key: Option<String>,
    /// Name of the CloudFormation stack [default: aws.stack_name from --config, else
    /// iamwatchd].
    #[arg(long, value_name = "NAME")]
    stack_name: Option<String>,
    /// Region of the stack [default: aws.region from --config, else us-east-1]. IAM events are
    /// recorded in us-east-1 only.
    #[arg(long, value_name = "R")]
    region: Option<String>,
    /// Deploy to a region other than us-east-1 anyway (as aws.allow_non_us_east_1 = true).
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
    /// Make the trail an organization trail (as deploy.organization = true): run in the
    /// organization's management account, after `aws organizations
    /// enable-aws-service-access --service-principal cloudtrail.amazonaws.com`; every member
    /// account's records then reach the one log group and alarms. `--organization false`
    /// makes it the account's own trail again.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    organization: Option<bool>,
    /// Instead of the stack: the member role in every account of the organization (or of
    /// --member-role-ous), as the service-managed StackSet iamwatchd-member-roles with
    /// automatic deployment; with --delete, remove it from every account.
    #[arg(long, conflicts_with_all = ["dry_run", "organization"])]
    member_roles: bool,
    /// With --member-roles: the OUs (or the root r-…) whose accounts get the role,
    /// comma-separated [default: the organization's root: every account].
    #[arg(
        long,
        value_name = "OU,...",
        value_delimiter = ',',
        requires = "member_roles"
    )]
    member_role_ous: Vec<String>,
    /// With --member-roles: the IAM role or user ARN the daemon runs as, the one principal
    /// the member role trusts [default: the StackSet's current one, else these credentials'
    /// role or user].
    #[arg(long, value_name = "ARN", requires = "member_roles")]
    member_role_principal: Option<String>,
    /// With --member-roles: the external ID the member role requires; "" for none [default:
    /// accounts.external_id of --config, else the StackSet's current one, else none]. The
    /// role's name is accounts.member_role of --config [default: iamwatchd-member].
    #[arg(long, value_name = "ID", requires = "member_roles")]
    member_role_external_id: Option<String>,
    /// Give up waiting for CloudFormation after this many minutes.
    #[arg(long, value_name = "MINUTES", default_value_t = deploy::DEFAULT_TIMEOUT.as_secs() / 60)]
    timeout_minutes: u64,
}

impl DeployArgs {
    /// The settings the command line gave, each `None` when its flag was absent: they fill
    /// the same raw sections as the file, and one validation covers both.
    fn flags(&self) -> DeployFlags {
        DeployFlags {
            stack_name: self.stack_name.clone(),
            region: self.region.clone(),
            allow_region: self.allow_region,
            settings: RawDeploy {
                emails: self.emails.clone(),
                bucket: self.bucket.clone(),
                kms_key: self.kms_key.clone(),
                log_retention_days: self.log_retention_days.map(i64::from),
                alarm_period: self.alarm_period.map(i64::from),
                alarm_threshold: self.alarm_threshold.map(i64::from),
                cis_filter: self.cis_filter,
                tampering_alarm: self.tampering_alarm,
                daemon_queue: self.daemon_queue,
                organization: self.organization,
            },
        }
    }

    /// How long to wait for CloudFormation.
    fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_minutes.saturating_mul(60))
    }
}

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

/// How the daemon's log lines look where they go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LogStyle {
    /// One JSON object per line (`log.format = "json"`, the container's default).
    json: bool,
    /// ANSI colours: only on a terminal, and never with `NO_COLOR` set (no-color.org).
    ansi: bool,
    /// A timestamp on every line; the journal adds its own (`JOURNAL_STREAM` names stderr).
    timestamps: bool,
}

impl LogStyle {
    /// The style for `format`, with stderr a terminal or not, `NO_COLOR`'s value and whether
    /// stderr is the journal's stream.
    fn new(
        format: LogFormat,
        stderr_is_terminal: bool,
        no_color: Option<&str>,
        journal: bool,
    ) -> LogStyle {
        let json = format == LogFormat::Json;
        LogStyle {
            json,
            ansi: !json && stderr_is_terminal && no_color.is_none_or(str::is_empty),
            timestamps: !journal,
        }
    }
}

/// Whether stderr is the journal's stream: systemd sets `JOURNAL_STREAM` to its device and
/// inode (`DEV:INODE`), which a child whose stderr was redirected inherits too, so compare.
fn stderr_is_journal(journal_stream: Option<&str>) -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some((dev, ino)) = journal_stream.and_then(|v| v.split_once(':')) else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    let Ok(meta) = std::fs::File::from(fd).metadata() else {
        return false;
    };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

/// The configured filter, with tokio's and the SDK's chatter where `log.level` says nothing
/// about them: the HTTP stacks at warn (their INFO lines are per request).
fn log_filter(level: &str) -> tracing_subscriber::EnvFilter {
    let mut directives = level.to_owned();
    for (target, quiet) in QUIET_TARGETS {
        if !level.contains(target) {
            directives.push_str(&format!(",{target}={quiet}"));
        }
    }
    tracing_subscriber::EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
}

/// Dependencies whose INFO lines are noise in a daemon's log, and the level they keep unless
/// `log.level` names them.
const QUIET_TARGETS: [(&str, &str); 2] = [("aws_smithy_runtime", "warn"), ("aws_config", "warn")];

fn init_logging(log: &config::LogConfig) {
    use std::io::IsTerminal;
    let style = LogStyle::new(
        log.format,
        std::io::stderr().is_terminal(),
        std::env::var("NO_COLOR").ok().as_deref(),
        stderr_is_journal(std::env::var("JOURNAL_STREAM").ok().as_deref()),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(log_filter(&log.level))
        .with_writer(std::io::stderr)
        .with_ansi(style.ansi);
    match (style.json, style.timestamps) {
        (true, _) => builder.json().init(),
        (false, true) => builder.init(),
        (false, false) => builder.without_time().init(),
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
            iamwatchd::daemon::run(config, stop_signal())
                .await
                .context("iamwatchd run")?;
        }
        Command::Scan(args) => {
            let config = args.config.as_deref().map(load_config).transpose()?;
            iamwatchd::scan::run(args.options(), config.as_ref()).await?;
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "iamwatchd", &mut script);
            iamwatchd::out!("{}", String::from_utf8_lossy(&script));
        }
        Command::Man { dir } => {
            for path in write_man_pages(&dir)? {
                iamwatchd::outln!("{}", path.display());
            }
        }
        Command::Health { url } => {
            let url = url.unwrap_or_else(|| {
                health_url(std::env::var("IAMWATCHD__METRICS__LISTEN").ok().as_deref())
            });
            let body = iamwatchd::probe::probe(&url, Duration::from_secs(5))?;
            iamwatchd::outln!("{body}");
        }
        Command::Check(args) => {
            let config = load_config(&args.config.config)?;
            iamwatchd::outln!("✓ configuration {}: valid", args.config.config.display());
            if args.offline {
                return Ok(ExitCode::SUCCESS);
            }
            let options = iamwatchd::check::Options {
                send_test: args.send_test,
                all_accounts: args.all_accounts,
            };
            let report = iamwatchd::check::check(&config, options).await;
            iamwatchd::out!("{report}");
            if !report.ready() {
                iamwatchd::outln!(
                    "not ready: fix the ✗ lines above and run `iamwatchd check` again"
                );
                return Ok(ExitCode::from(EXIT_UNAVAILABLE));
            }
            iamwatchd::outln!("ready");
        }
        Command::Analysis(AnalysisCommand::Seed(args)) => {
            let config = load_config(&args.config)?;
            init_logging(&config.log);
            let done = iamwatchd::daemon::seed_analysis(&config)
                .await
                .context("iamwatchd analysis seed")?;
            println!("{done}");
        }
        Command::Template { member_role } => {
            let text = if member_role {
                template::member_role_template_json()
            } else {
                template::template_json()
            };
            iamwatchd::out!("{text}");
        }
        Command::Deploy(args) => {
            let target = args.flags().resolve(args.config.as_deref())?;
            for warning in &target.warnings {
                eprintln!("iamwatchd: warning: {warning}");
            }
            if args.member_roles {
                if args.delete {
                    deploy::delete_member_roles(&target.region, args.timeout()).await?;
                } else {
                    // The role the daemon will assume, as its configuration names it.
                    let accounts = args.config.as_ref().map(|_| &target.accounts);
                    deploy::deploy_member_roles(&deploy::MemberRolesRequest {
                        region: target.region.clone(),
                        ous: args.member_role_ous.clone(),
                        principal: args.member_role_principal.clone(),
                        external_id: args
                            .member_role_external_id
                            .clone()
                            .or_else(|| accounts?.external_id.clone()),
                        role_name: accounts.map(|a| a.member_role.clone()),
                        timeout: args.timeout(),
                    })
                    .await?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            let request = DeployRequest {
                target,
                dry_run: args.dry_run,
                timeout: args.timeout(),
            };
            if args.delete {
                deploy::delete(&request.delete_request()).await?;
            } else {
                deploy::deploy(&request).await?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `iamwatchd health`'s URL without `--url`: on the listener an `IAMWATCHD__METRICS__LISTEN`
/// override gives the daemon (a container's one knob for both), else the suggested one.
fn health_url(listen_override: Option<&str>) -> String {
    match listen_override.map(str::trim).filter(|l| !l.is_empty()) {
        Some(listen) => format!("http://{listen}/healthz"),
        None => config::defaults::HEALTH_URL.to_owned(),
    }
}

/// Writes `iamwatchd.1` and one `iamwatchd-NAME.1` per visible subcommand; returns their paths.
/// The pages carry the release only (not the commit), so the same release gives the same pages.
fn write_man_pages(dir: &std::path::Path) -> anyhow::Result<Vec<PathBuf>> {
    use clap::CommandFactory;
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let source = concat!("iamwatchd ", env!("CARGO_PKG_VERSION"));
    let root = Cli::command().version(env!("CARGO_PKG_VERSION"));
    let mut pages = vec![(String::from("iamwatchd"), root.clone())];
    for sub in root.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("iamwatchd-{}", sub.get_name());
        // clap names are 'static; a one-shot command can leak the handful it makes.
        let command = sub
            .clone()
            .name(&*name.clone().leak())
            .bin_name(format!("iamwatchd {}", sub.get_name()));
        pages.push((name, command));
    }
    let mut written = Vec::new();
    for (name, command) in pages {
        let mut page = Vec::new();
        clap_mangen::Man::new(command)
            .source(source)
            .manual("iamwatchd manual")
            .render(&mut page)?;
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, page).with_context(|| format!("write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Tokio worker threads (see `main`).
const RUNTIME_WORKERS: usize = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    iamwatchd::daemon::memory::limit_arenas();
    // The daemon waits on the network nearly all the time: two worker threads are plenty, and
    // a fixed number keeps its memory the same on a 2-core VM and a 64-core host.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(RUNTIME_WORKERS)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("iamwatchd: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("iamwatchd: {error:#}");
            ExitCode::from(exit_status(&error))
        }
    }
}

/// sysexits' EX_DATAERR: the state database is damaged (restore it or move it aside).
const EXIT_STORE_CORRUPT: u8 = 65;

/// sysexits' EX_TEMPFAIL: the state database is locked (another iamwatchd on the same state
/// directory); trying again once it has stopped can succeed.
const EXIT_STORE_LOCKED: u8 = 75;

/// The exit status for a failed command (the README's table): a configuration file at fault
/// is EX_CONFIG (a flag alone is a failed command, 1), a corrupt or locked state database has
/// its own, anything else is 1.
fn exit_status(error: &anyhow::Error) -> u8 {
    use iamwatchd::daemon::DaemonError;
    use iamwatchd::scan::ScanFailed;
    use iamwatchd::store::StoreError;
    let store = error
        .downcast_ref::<StoreError>()
        .or_else(|| match error.downcast_ref::<DaemonError>() {
            Some(DaemonError::Store(store)) => Some(store),
            _ => None,
        })
        .or_else(|| match error.downcast_ref::<ScanFailed>() {
            Some(ScanFailed::Notify(DaemonError::Store(store))) => Some(store),
            _ => None,
        });
    match (error.downcast_ref::<ConfigErrors>(), store) {
        (Some(config), _) if config.names_a_file() => EXIT_CONFIG,
        (_, Some(StoreError::Corrupt { .. })) => EXIT_STORE_CORRUPT,
        (_, Some(StoreError::Locked { .. })) => EXIT_STORE_LOCKED,
        _ => 1,
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
    fn completions_cover_every_subcommand() {
        let mut script = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut Cli::command(),
            "iamwatchd",
            &mut script,
        );
        let script = String::from_utf8(script).unwrap();
        for sub in [
            "deploy",
            "template",
            "run",
            "scan",
            "check",
            "health",
            "completions",
        ] {
            assert!(
                script.contains(sub),
                "{sub} missing from the bash completions"
            );
        }
    }

    #[test]
    fn version_names_the_commit_and_the_build_date() {
        let version = Cli::command().render_version();
        assert!(version.starts_with(concat!(
            "iamwatchd ",
            env!("CARGO_PKG_VERSION"),
            " (commit "
        )));
        assert!(version.contains(", built 2"), "{version}");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color_and_no_timestamps_in_the_journal() {
        let human =
            |tty, no_color, journal| LogStyle::new(LogFormat::Human, tty, no_color, journal);
        assert!(human(true, None, false).ansi);
        assert!(
            !human(false, None, false).ansi,
            "a file or a pipe: no escape codes"
        );
        assert!(!human(true, Some("1"), false).ansi, "NO_COLOR");
        assert!(
            human(true, Some(""), false).ansi,
            "an empty NO_COLOR does not count"
        );
        assert!(human(false, None, false).timestamps);
        assert!(
            !human(false, None, true).timestamps,
            "journald stamps every line itself"
        );
        let json = LogStyle::new(LogFormat::Json, true, None, false);
        assert!(json.json && !json.ansi);
    }

    #[test]
    fn journal_stream_must_name_stderr_itself() {
        assert!(!stderr_is_journal(None));
        assert!(!stderr_is_journal(Some("garbage")));
        // A JOURNAL_STREAM inherited by a process whose stderr went elsewhere.
        assert!(!stderr_is_journal(Some("0:0")));
    }

    #[test]
    fn the_sdks_info_chatter_stays_at_warn_unless_asked_for() {
        let quiet = log_filter("info").to_string();
        assert!(quiet.contains("aws_config=warn"), "{quiet}");
        assert!(quiet.contains("aws_smithy_runtime=warn"), "{quiet}");
        let asked = log_filter("info,aws_config=debug").to_string();
        assert!(
            asked.contains("aws_config=debug") && !asked.contains("aws_config=warn"),
            "{asked}"
        );
    }

    #[test]
    fn corrupt_and_locked_stores_have_their_own_exit_status() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("iamwatchd.sqlite3"), vec![7u8; 4096]).unwrap();
        let corrupt = iamwatchd::store::Store::open(dir.path()).unwrap_err();
        let as_daemon = anyhow::Error::from(iamwatchd::daemon::DaemonError::Store(corrupt))
            .context("iamwatchd run");
        assert_eq!(exit_status(&as_daemon), EXIT_STORE_CORRUPT);
        assert_eq!(exit_status(&anyhow::anyhow!("other")), 1);
    }

    #[test]
    fn health_follows_the_listener_override() {
        assert_eq!(health_url(None), config::defaults::HEALTH_URL);
        assert_eq!(health_url(Some(" ")), config::defaults::HEALTH_URL);
        assert_eq!(
            health_url(Some("127.0.0.1:40001")),
            "http://127.0.0.1:40001/healthz"
        );
    }

    #[test]
    fn man_pages_cover_every_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_man_pages(dir.path()).unwrap();
        let names: Vec<_> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        let expected: Vec<String> = std::iter::once("iamwatchd.1".to_owned())
            .chain(
                Cli::command()
                    .get_subcommands()
                    .filter(|s| !s.is_hide_set())
                    .map(|s| format!("iamwatchd-{}.1", s.get_name())),
            )
            .collect();
        assert_eq!(names, expected);
        assert!(names.contains(&"iamwatchd-run.1".to_owned()));
        let run = std::fs::read_to_string(dir.path().join("iamwatchd-run.1")).unwrap();
        assert!(run.contains(".TH iamwatchd-run 1"), "{run}");
        assert!(run.contains("SIGTERM"), "the long help is in the page");
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
            "--kms-key",
            "arn:aws:kms:eu-west-1:123456789012:key/k",
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
        assert_eq!(args.config, None, "no file unless --config is given");
        assert_eq!(
            args.alarm_threshold, None,
            "unset flags leave room for the file"
        );

        let cli = Cli::try_parse_from([
            "iamwatchd",
            "deploy",
            "--config",
            "/etc/x.toml",
            "--alarm-threshold",
            "2",
        ])
        .unwrap();
        let Command::Deploy(args) = cli.command else {
            panic!("deploy")
        };
        let flags = args.flags();
        assert_eq!(
            args.config.as_deref(),
            Some(std::path::Path::new("/etc/x.toml"))
        );
        assert_eq!((flags.stack_name, flags.region), (None, None));
        assert_eq!(flags.settings.alarm_threshold, Some(2));
        assert_eq!(args.timeout(), Duration::from_secs(3600));
        assert!(Cli::try_parse_from(["iamwatchd", "deploy", "--dry-run", "--delete"]).is_err());

        let cli = Cli::try_parse_from(["iamwatchd", "deploy", "--organization"]).unwrap();
        let Command::Deploy(args) = cli.command else {
            panic!("deploy")
        };
        assert_eq!(args.flags().settings.organization, Some(true));
        let cli = Cli::try_parse_from([
            "iamwatchd",
            "deploy",
            "--member-roles",
            "--member-role-ous",
            "ou-ab12-cd34ef56,r-ab12",
            "--member-role-external-id",
            "x1",
        ])
        .unwrap();
        let Command::Deploy(args) = cli.command else {
            panic!("deploy")
        };
        assert!(args.member_roles);
        assert_eq!(args.member_role_ous, ["ou-ab12-cd34ef56", "r-ab12"]);
        assert!(
            Cli::try_parse_from(["iamwatchd", "deploy", "--member-role-ous", "r-ab12"]).is_err(),
            "the member-role flags need --member-roles"
        );
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
