//! The daemon's configuration: a TOML file layered with `IAMWATCHD__*` environment variables,
//! checked in two stages so that an operator sees every mistake in one run.
//!
//! 1. **Raw parse** ([`Config::load`]): the file is parsed as TOML (a syntax error names file,
//!    line and column), the environment is layered on top through the `config` crate (double
//!    underscore = nesting: `IAMWATCHD__SMTP__PASSWORD` sets `smtp.password`), and every key is
//!    checked against the raw structs, which `#[serde(deny_unknown_fields)]`. Each field is
//!    deserialised on its own first, so one wrong type does not hide the next, and an unknown
//!    key is reported with its path and, when it is close to a real one, the key that was
//!    probably meant.
//! 2. **Validation** (`RawConfig::validate`): pure checks of ranges, shapes and combinations,
//!    no network. It reads only the local password file named by `smtp.password_file` (to refuse
//!    one that others can read). All problems are collected, each with its key path
//!    (`smtp.port: must be 1-65535, got 0`); warnings (things that work but deserve a second
//!    look) are returned apart from errors.
//!
//! The result is the typed [`Config`] the rest of the daemon uses. Defaults live in
//! [`defaults`], and only there.
//!
//! `iamwatchd deploy --config PATH` reads the same file through [`DeploySettings::load`]: both
//! stages run over the whole file (a typo anywhere is still a typo), but validation covers only
//! the sections `deploy` uses, `[aws]` and `[deploy]`. The daemon's own rules, above all "at
//! least one notifier", do not apply there: the stack is usually deployed from a workstation,
//! before the daemon's host (and its SMTP password file) exists. The example `config/iamwatchd.toml` documents every key and is
//! loaded by a test here.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Environment, File, FileFormat, Map, Value, ValueKind};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::Deserialize;

/// Where the daemon looks for its configuration when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/iamwatchd/iamwatchd.toml";

/// Environment variables starting with this prefix followed by `__` override the file; further
/// `__` separate nesting levels (`IAMWATCHD__POLLER__POLL_INTERVAL=30s`).
pub const ENV_PREFIX: &str = "IAMWATCHD";

/// The environment variable that carries the SMTP password (the preferred place for it).
pub const SMTP_PASSWORD_ENV: &str = "IAMWATCHD__SMTP__PASSWORD";

/// Every default value of the configuration, in one place.
pub mod defaults {
    use std::time::Duration;

    const DAY: u64 = 24 * 60 * 60;

    /// IAM events are recorded in us-east-1 only (see [`crate::aws::IAM_EVENTS_REGION`]).
    pub const REGION: &str = crate::aws::IAM_EVENTS_REGION;
    /// Name of the CloudFormation stack `deploy` creates and `check` inspects.
    pub const STACK_NAME: &str = "iamwatchd";
    /// Attempts per AWS call, the first one included.
    pub const MAX_ATTEMPTS: u32 = crate::aws::DEFAULT_MAX_ATTEMPTS;
    /// Upper bound for `aws.max_attempts`: beyond this, retries only hide an outage.
    pub const MAX_ATTEMPTS_LIMIT: u32 = 10;
    /// LookupEvents budget used by the poller, per account and region.
    pub const REQUESTS_PER_SECOND: f64 = 1.0;
    /// AWS allows LookupEvents 2 requests/s per account and region, shared with everyone else.
    pub const REQUESTS_PER_SECOND_CAP: f64 = 2.0;
    /// How often the short window is polled.
    pub const POLL_INTERVAL: Duration = Duration::from_secs(10);
    /// How far back each frequent poll looks.
    pub const SHORT_WINDOW: Duration = Duration::from_secs(2 * 60);
    /// How often the slower sweep re-reads the delivery-delay horizon.
    pub const SWEEP_INTERVAL: Duration = Duration::from_secs(5 * 60);
    /// How late CloudTrail may deliver an event to LookupEvents.
    pub const SWEEP_HORIZON: Duration = Duration::from_secs(15 * 60);
    /// LookupEvents keeps 90 days of events: nothing older can be read.
    pub const LOOKUP_RETENTION: Duration = Duration::from_secs(90 * DAY);
    /// Where durable state (cursor, seen events, outbox) lives.
    pub const STATE_DIRECTORY: &str = "/var/lib/iamwatchd";
    /// How long seen eventIDs are kept.
    pub const RETENTION: Duration = Duration::from_secs(90 * DAY);
    /// SMTP connection and command timeout.
    pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);
    /// How long after the poller reports a change the alarm path should confirm it.
    pub const CONFIRM_WITHIN: Duration = Duration::from_secs(30 * 60);
    /// How far the alarm path widens the alarm's window on both sides when it reads the log
    /// group: CloudTrail delivers to CloudWatch Logs minutes after the call, and the record's
    /// timestamp (the call's time) may precede the datapoint that set the alarm off.
    pub const LOOKBACK_MARGIN: Duration = Duration::from_secs(5 * 60);
    /// Log filter (tracing `EnvFilter` syntax).
    pub const LOG_LEVEL: &str = "info";
    /// The address suggested for `metrics.listen` (the listener is off unless set).
    pub const METRICS_LISTEN_SUGGESTION: &str = "127.0.0.1:9847";
    // `[deploy]` has no defaults of its own: a key left out keeps the stack's current value on
    // an update and takes the template's default (`crate::template::DEFAULT_*`) on a create,
    // so that a file that does not mention a setting never undoes an earlier change to it.

    /// After this long undelivered, a notification is given up (logged and counted).
    pub const DELIVERY_MAX_AGE: Duration = Duration::from_secs(DAY);
    /// First retry delay of a failed notification.
    pub const INITIAL_BACKOFF: Duration = Duration::from_secs(5);
    /// Longest delay between two retries of a notification.
    pub const MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);
}

// ---------------------------------------------------------------------------------------------
// The validated configuration
// ---------------------------------------------------------------------------------------------

/// The validated configuration: every value is in range and every combination makes sense.
#[derive(Debug, Clone)]
pub struct Config {
    /// AWS account and region settings.
    pub aws: AwsConfig,
    /// What `iamwatchd deploy --config` puts into the stack.
    pub deploy: DeployConfig,
    /// The LookupEvents poller.
    pub poller: PollerConfig,
    /// What is reported and what is not.
    pub rules: RulesConfig,
    /// Durable state.
    pub store: StoreConfig,
    /// The SMTP notifier, when configured.
    pub smtp: Option<SmtpConfig>,
    /// The SNS notifier, when configured.
    pub sns: Option<SnsConfig>,
    /// The alarm path (issue 5).
    pub alarm: AlarmConfig,
    /// Logging.
    pub log: LogConfig,
    /// The optional metrics and health listener.
    pub metrics: MetricsConfig,
    /// Notification retries.
    pub delivery: DeliveryConfig,
    /// Things that work but deserve a second look (e.g. a metrics listener on a public address).
    pub warnings: Vec<Problem>,
}

/// AWS account and region settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsConfig {
    /// Region polled for IAM events and where the stack lives.
    pub region: String,
    /// The operator consented to a region other than us-east-1 (`deploy` honours it for a
    /// `--region` given on the command line too).
    pub allow_non_us_east_1: bool,
    /// Regions whose CloudTrail / Logs / CloudWatch / SNS tampering events are watched.
    pub tampering_regions: Vec<String>,
    /// Name of the CloudFormation stack.
    pub stack_name: String,
    /// Attempts per AWS call, the first one included.
    pub max_attempts: u32,
}

/// The stack settings of `[deploy]`, each the counterpart of an `iamwatchd deploy` flag.
/// `None` (or an empty list) = not set here: a flag may still set it, and otherwise the
/// stack keeps its current value (update) or takes the template's default (create).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeployConfig {
    /// Addresses that receive the alarms (`--email`), at most three, each valid.
    pub emails: Vec<String>,
    /// Existing bucket for the trail (`--bucket`); `Some("")` = the stack creates its own.
    pub bucket: Option<String>,
    /// Log group retention (`--log-retention-days`), one CloudWatch Logs offers.
    pub log_retention_days: Option<u32>,
    /// Alarm period in seconds (`--alarm-period`), one the template offers.
    pub alarm_period_seconds: Option<u32>,
    /// Changes per period that set the alarm off (`--alarm-threshold`), at least 1.
    pub alarm_threshold: Option<u32>,
    /// The exact CIS 4.4 filter and alarm (`--cis-filter`).
    pub cis_filter: Option<bool>,
    /// The tampering filter and alarm (`--tampering-alarm`).
    pub tampering_alarm: Option<bool>,
    /// The SQS queue for the daemon (`--daemon-queue`).
    pub daemon_queue: Option<bool>,
}

/// What `iamwatchd deploy --config PATH` reads from the file: `[aws]` (region, consent to
/// another region, stack name) and `[deploy]`, validated without the daemon-only rules.
#[derive(Debug, Clone)]
pub struct DeploySettings {
    /// `[aws]`.
    pub aws: AwsConfig,
    /// `[deploy]`.
    pub deploy: DeployConfig,
    /// Warnings about `[aws]` and `[deploy]`.
    pub warnings: Vec<Problem>,
}

/// Where the poller starts when it has no stored cursor yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// Only events from start-up on.
    Now,
    /// Events from this long before the first start.
    Ago(Duration),
}

/// The LookupEvents poller.
#[derive(Debug, Clone, PartialEq)]
pub struct PollerConfig {
    /// Request budget per account and region, in (0, 2].
    pub requests_per_second: f64,
    /// How often the short window is polled.
    pub poll_interval: Duration,
    /// How far back each frequent poll looks (at least `poll_interval`).
    pub short_window: Duration,
    /// How often the delivery-delay horizon is swept.
    pub sweep_interval: Duration,
    /// How far back a sweep looks.
    pub sweep_horizon: Duration,
    /// Where the first start begins.
    pub start_from: StartFrom,
}

/// How failed calls (CloudTrail `errorCode` set, e.g. AccessDenied) are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum FailedCalls {
    /// Reported as attempted changes, at lower priority than changes.
    #[default]
    Report,
    /// Not reported at all.
    Ignore,
}

/// Severity levels come from the rule catalogue; `rules.min_severity` drops everything below.
pub use crate::rules::Severity;

/// One allow-list entry: an event matching every field that is set is not reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowEntry {
    /// Principal ARN; assumed-role sessions are matched by their role ARN.
    pub principal: Option<String>,
    /// Event name glob (`*` any run of characters, `?` one character).
    pub event: Option<String>,
    /// 12-digit account ID.
    pub account: Option<String>,
    /// Why the entry exists (for humans; logged when it suppresses an event).
    pub comment: Option<String>,
}

/// What is reported and what is not.
#[derive(Debug, Clone, PartialEq)]
pub struct RulesConfig {
    /// How failed calls are treated.
    pub failed_calls: FailedCalls,
    /// Events below this severity are not reported.
    pub min_severity: Severity,
    /// Events that are expected and not reported.
    pub allow: Vec<AllowEntry>,
}

/// Durable state.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// Directory of the SQLite database.
    pub state_directory: PathBuf,
    /// How long seen eventIDs are kept.
    pub retention: Duration,
}

/// Transport security of the SMTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No encryption at all; needs `allow_plaintext = true`.
    None,
}

impl SmtpTls {
    /// The conventional port for this kind of connection.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::Starttls => 587,
            SmtpTls::Implicit => 465,
            SmtpTls::None => 25,
        }
    }
}

/// A secret value (the SMTP password). Its `Debug` never shows the value, so a config logged
/// with `{:?}` cannot leak it; there is deliberately no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must hand it to a server.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// SMTP credentials; the password came from the environment or a private file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpAuth {
    /// SMTP AUTH user name.
    pub username: String,
    /// SMTP AUTH password.
    pub password: Secret,
}

/// The SMTP notifier.
#[derive(Debug, Clone, PartialEq)]
pub struct SmtpConfig {
    /// Server host name.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Transport security.
    pub tls: SmtpTls,
    /// Credentials, when the server needs AUTH.
    pub auth: Option<SmtpAuth>,
    /// Sender mailbox (`alerts@example.com` or `iamwatchd <alerts@example.com>`).
    pub from: String,
    /// Recipient mailboxes, at least one.
    pub to: Vec<String>,
    /// Connection and command timeout.
    pub timeout: Duration,
    /// Extra CA certificate (PEM) to trust, for a private mail server.
    pub ca_file: Option<PathBuf>,
}

/// The SNS notifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsConfig {
    /// Topic to publish to.
    pub topic_arn: String,
    /// Region of the topic (taken from the ARN unless set).
    pub region: String,
}

/// The alarm path (issue 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmConfig {
    /// SQS queue subscribed to the alarm topic; `None` disables the alarm path in the daemon.
    pub queue_url: Option<String>,
    /// A change the poller reported must be confirmed by the alarm path within this long, or
    /// the alarm path is reported as unhealthy.
    pub confirm_within: Duration,
    /// The trail's log group (the stack's `LogGroupName` output), read in the aws region when
    /// an alarm fires; required with `queue_url`.
    pub log_group: Option<String>,
    /// Added before and after the alarm's own window when its records are read.
    pub lookback_margin: Duration,
    /// Whether an unhealthy pipeline (changes the alarm path never confirmed) is also sent as
    /// a message, not only logged.
    pub health_messages: bool,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum LogFormat {
    /// Readable lines for a terminal or the journal.
    #[default]
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Line format.
    pub format: LogFormat,
    /// Filter in tracing `EnvFilter` syntax; known to parse.
    pub level: String,
}

/// The optional metrics and health listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Address of the `/metrics` and `/healthz` listener; `None` = disabled.
    pub listen: Option<SocketAddr>,
}

/// Notification retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// A notification still undelivered after this long is given up, loudly.
    pub max_age: Duration,
    /// First retry delay; doubles on each failure.
    pub initial_backoff: Duration,
    /// Longest delay between retries.
    pub max_backoff: Duration,
}

impl TryFrom<String> for FailedCalls {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        choose(
            &text,
            &[
                ("report", FailedCalls::Report),
                ("ignore", FailedCalls::Ignore),
            ],
        )
    }
}

impl TryFrom<String> for SmtpTls {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        choose(
            &text,
            &[
                ("starttls", SmtpTls::Starttls),
                ("implicit", SmtpTls::Implicit),
                ("none", SmtpTls::None),
            ],
        )
    }
}

impl TryFrom<String> for LogFormat {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        choose(
            &text,
            &[("human", LogFormat::Human), ("json", LogFormat::Json)],
        )
    }
}

/// Reads one of a fixed set of lowercase words, naming all of them when the text is none.
/// (The `config` crate's own message for an unknown enum variant does not list the choices.)
fn choose<T: Copy>(text: &str, choices: &[(&str, T)]) -> Result<T, String> {
    choices
        .iter()
        .find(|(word, _)| *word == text)
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let words: Vec<String> = choices.iter().map(|(w, _)| format!("`{w}`")).collect();
            format!("expected one of {}, got {text:?}", words.join(", "))
        })
}

// ---------------------------------------------------------------------------------------------
// Problems and errors
// ---------------------------------------------------------------------------------------------

/// One problem (or warning) in the configuration, with the key it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path (`smtp.port`, `rules.allow[2].account`); for a problem that concerns
    /// several keys, the keys joined with `, `.
    pub path: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl Problem {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigErrors {
    /// The file could not be read.
    #[error(
        "cannot read configuration file {}: {source}; pass --config PATH or start from the \
         example config/iamwatchd.toml",
        path.display()
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{}:{line}:{column}: TOML syntax error: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What the TOML parser expected.
        message: String,
    },
    /// The file parsed but its content is wrong; every problem found is listed.
    #[error("{}", describe_invalid(path, problems, warnings))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every error found, in key order.
        problems: Vec<Problem>,
        /// Warnings found on the way (reported too, so that fixing errors shows no surprise).
        warnings: Vec<Problem>,
    },
}

impl ConfigErrors {
    /// The individual problems (empty for read and syntax errors, which stand alone).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigErrors::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

fn describe_invalid(path: &Path, problems: &[Problem], warnings: &[Problem]) -> String {
    let mut text = format!(
        "configuration {} has {} problem{}; fix them and run `iamwatchd check --offline` again:",
        path.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for problem in problems {
        text.push_str(&format!("\n  - {problem}"));
    }
    for warning in warnings {
        text.push_str(&format!("\n  - warning: {warning}"));
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

/// The configuration file's text, or an error naming it.
fn read_file(path: &Path) -> Result<String, ConfigErrors> {
    std::fs::read_to_string(path).map_err(|source| ConfigErrors::Read {
        path: path.to_owned(),
        source,
    })
}

impl Config {
    /// Loads `path` layered with the `IAMWATCHD__*` entries of `env`, and validates it.
    ///
    /// `env` is explicit so that tests (and `check`) never have to mutate the process
    /// environment; the daemon passes `std::env::vars()` (see [`check_offline`]). Entries
    /// without the prefix are ignored.
    pub fn load<I>(path: &Path, env: I) -> Result<Config, ConfigErrors>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        Self::from_toml(&read_file(path)?, path, env)
    }

    /// Like [`Config::load`], with the file's content given; `path` is used in messages.
    pub fn from_toml<I>(text: &str, path: &Path, env: I) -> Result<Config, ConfigErrors>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let (raw, parse_problems) = RawConfig::parse(text, path, env)?;
        settle(path, parse_problems, raw.validate(), |c| c.warnings.clone())
    }
}

impl DeploySettings {
    /// Loads `path` layered with the `IAMWATCHD__*` entries of `env` (as [`Config::load`]
    /// does) and validates what `deploy` uses: `[aws]` and `[deploy]`. Unknown keys and wrong
    /// types are reported in every section; the daemon's rules (a notifier, SMTP, …) are not.
    pub fn load<I>(path: &Path, env: I) -> Result<DeploySettings, ConfigErrors>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        Self::from_toml(&read_file(path)?, path, env)
    }

    /// Like [`DeploySettings::load`], with the file's content given; `path` is used in messages.
    pub fn from_toml<I>(text: &str, path: &Path, env: I) -> Result<DeploySettings, ConfigErrors>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let (raw, parse_problems) = RawConfig::parse(text, path, env)?;
        settle(path, parse_problems, raw.validate_for_deploy(), |s| {
            s.warnings.clone()
        })
    }
}

/// Joins the problems of both stages into one answer.
fn settle<T>(
    path: &Path,
    mut parse_problems: Vec<Problem>,
    validated: Result<T, (Vec<Problem>, Vec<Problem>)>,
    warnings_of: impl FnOnce(&T) -> Vec<Problem>,
) -> Result<T, ConfigErrors> {
    sort_by_section(&mut parse_problems);
    match validated {
        Ok(value) if parse_problems.is_empty() => Ok(value),
        Ok(value) => Err(ConfigErrors::Invalid {
            path: path.to_owned(),
            problems: parse_problems,
            warnings: warnings_of(&value),
        }),
        Err((problems, warnings)) => {
            // A key that failed to parse was left at its default; whatever validation
            // says about that default is noise next to the real problem.
            let mut all = parse_problems.clone();
            all.extend(
                problems
                    .into_iter()
                    .filter(|p| !parse_problems.iter().any(|q| covers(&q.path, &p.path))),
            );
            sort_by_section(&mut all);
            Err(ConfigErrors::Invalid {
                path: path.to_owned(),
                problems: all,
                warnings,
            })
        }
    }
}

/// Loads and validates the configuration at `path` with the process environment, without
/// touching the network: what `iamwatchd check --offline` (and systemd's `ExecStartPre`) runs.
pub fn check_offline(path: &Path) -> Result<Config, ConfigErrors> {
    Config::load(path, process_env())
}

/// Loads what `iamwatchd deploy --config PATH` needs, with the process environment.
pub fn load_deploy_settings(path: &Path) -> Result<DeploySettings, ConfigErrors> {
    DeploySettings::load(path, process_env())
}

/// The process environment, skipping entries that are not UTF-8 (none of ours can be).
fn process_env() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
}

/// Groups problems by section, in the order the example file documents them, so that the list
/// reads like the file; within a section, parse problems stay before validation problems.
fn sort_by_section(problems: &mut [Problem]) {
    let sections = fields_of::<RawConfig>();
    problems.sort_by_key(|p| {
        let section = p.path.split(['.', '[', ',']).next().unwrap_or("");
        sections
            .iter()
            .position(|s| *s == section)
            .map_or(0, |i| i + 1)
    });
}

/// Whether a problem at `outer` already explains one at `inner` (the same key or below it).
fn covers(outer: &str, inner: &str) -> bool {
    inner == outer
        || inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut column = 1;
    for (index, c) in text.char_indices() {
        if index >= offset {
            break;
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

// ---------------------------------------------------------------------------------------------
// Stage 1: the raw configuration, as written
// ---------------------------------------------------------------------------------------------

/// The configuration as written: the file's sections with the environment layered on top,
/// every field typed but not yet checked for range or consistency.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawConfig {
    /// AWS account and region settings.
    aws: RawAws,
    /// What `iamwatchd deploy` puts into the stack.
    deploy: RawDeploy,
    /// The LookupEvents poller.
    poller: RawPoller,
    /// What is reported and what is not.
    rules: RawRules,
    /// Durable state.
    store: RawStore,
    /// SMTP notifier; absent = not used.
    smtp: Option<RawSmtp>,
    /// SNS notifier; absent = not used.
    sns: Option<RawSns>,
    /// Alarm path.
    alarm: RawAlarm,
    /// Logging.
    log: RawLog,
    /// Metrics and health listener.
    metrics: RawMetrics,
    /// Notification retries.
    delivery: RawDelivery,
}

/// `[aws]`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawAws {
    /// Region polled for IAM events and where the stack lives.
    region: String,
    /// Permits a region other than us-east-1 (IAM events would not be seen there).
    allow_non_us_east_1: bool,
    /// Regions whose tampering events are watched; default: `region`.
    tampering_regions: Option<Vec<String>>,
    /// CloudFormation stack name.
    stack_name: String,
    /// Attempts per AWS call.
    max_attempts: i64,
}

impl Default for RawAws {
    fn default() -> Self {
        RawAws {
            region: defaults::REGION.to_owned(),
            allow_non_us_east_1: false,
            tampering_regions: None,
            stack_name: defaults::STACK_NAME.to_owned(),
            max_attempts: defaults::MAX_ATTEMPTS.into(),
        }
    }
}

/// `[deploy]`: every key optional, numbers as written (so a negative one is reported as such).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawDeploy {
    /// Alarm recipients.
    emails: Vec<String>,
    /// Existing trail bucket; `""` = the stack creates one.
    bucket: Option<String>,
    /// Log group retention in days.
    log_retention_days: Option<i64>,
    /// Alarm period in seconds.
    alarm_period: Option<i64>,
    /// Changes per period that set the alarm off.
    alarm_threshold: Option<i64>,
    /// The CIS 4.4 filter and alarm.
    cis_filter: Option<bool>,
    /// The tampering filter and alarm.
    tampering_alarm: Option<bool>,
    /// The daemon's SQS queue.
    daemon_queue: Option<bool>,
}

/// `[poller]`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawPoller {
    /// LookupEvents requests per second, shared by every query.
    requests_per_second: f64,
    /// How often the short window is polled.
    #[serde(deserialize_with = "duration")]
    poll_interval: Duration,
    /// How far back each frequent poll looks.
    #[serde(deserialize_with = "duration")]
    short_window: Duration,
    /// How often the delivery-delay horizon is swept.
    #[serde(deserialize_with = "duration")]
    sweep_interval: Duration,
    /// How far back a sweep looks.
    #[serde(deserialize_with = "duration")]
    sweep_horizon: Duration,
    /// `"now"` or a duration back from the first start.
    start_from: String,
}

impl Default for RawPoller {
    fn default() -> Self {
        RawPoller {
            requests_per_second: defaults::REQUESTS_PER_SECOND,
            poll_interval: defaults::POLL_INTERVAL,
            short_window: defaults::SHORT_WINDOW,
            sweep_interval: defaults::SWEEP_INTERVAL,
            sweep_horizon: defaults::SWEEP_HORIZON,
            start_from: "now".to_owned(),
        }
    }
}

/// `[rules]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawRules {
    /// `"report"` or `"ignore"`.
    failed_calls: FailedCalls,
    /// Lowest severity reported.
    min_severity: Severity,
    /// `[[rules.allow]]` entries.
    allow: Vec<RawAllow>,
}

/// One `[[rules.allow]]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawAllow {
    /// Principal ARN.
    principal: Option<String>,
    /// Event name glob.
    event: Option<String>,
    /// Account ID.
    account: Option<String>,
    /// Why the entry exists.
    comment: Option<String>,
}

/// `[store]`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawStore {
    /// Directory of the state database.
    state_directory: PathBuf,
    /// How long seen eventIDs are kept.
    #[serde(deserialize_with = "duration")]
    retention: Duration,
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            state_directory: PathBuf::from(defaults::STATE_DIRECTORY),
            retention: defaults::RETENTION,
        }
    }
}

/// `[smtp]`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSmtp {
    /// Server host name (required).
    host: Option<String>,
    /// Server port; default from `tls`.
    port: Option<i64>,
    /// `"starttls"`, `"implicit"` or `"none"`.
    tls: SmtpTls,
    /// Must be true for `tls = "none"`.
    allow_plaintext: bool,
    /// SMTP AUTH user name.
    username: Option<String>,
    /// Only from `IAMWATCHD__SMTP__PASSWORD`; refused in the file.
    password: Option<String>,
    /// File holding the password (mode 600).
    password_file: Option<PathBuf>,
    /// Sender mailbox (required).
    from: Option<String>,
    /// Recipient mailboxes (at least one).
    to: Vec<String>,
    /// Connection and command timeout.
    #[serde(deserialize_with = "duration")]
    timeout: Duration,
    /// Extra CA certificate to trust.
    ca_file: Option<PathBuf>,
}

impl Default for RawSmtp {
    fn default() -> Self {
        RawSmtp {
            host: None,
            port: None,
            tls: SmtpTls::default(),
            allow_plaintext: false,
            username: None,
            password: None,
            password_file: None,
            from: None,
            to: Vec::new(),
            timeout: defaults::SMTP_TIMEOUT,
            ca_file: None,
        }
    }
}

/// `[sns]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSns {
    /// Topic ARN (required).
    topic_arn: Option<String>,
    /// Topic region; default: the ARN's.
    region: Option<String>,
}

/// `[alarm]`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawAlarm {
    /// Alarm queue URL.
    queue_url: Option<String>,
    /// Time the alarm path has to confirm a change.
    #[serde(deserialize_with = "duration")]
    confirm_within: Duration,
    /// The trail's log group name.
    log_group: Option<String>,
    /// Margin around the alarm's window.
    #[serde(deserialize_with = "duration")]
    lookback_margin: Duration,
    /// Send pipeline-health findings as messages too.
    health_messages: bool,
}

impl Default for RawAlarm {
    fn default() -> Self {
        RawAlarm {
            queue_url: None,
            confirm_within: defaults::CONFIRM_WITHIN,
            log_group: None,
            lookback_margin: defaults::LOOKBACK_MARGIN,
            health_messages: true,
        }
    }
}

/// `[log]`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawLog {
    /// `"human"` or `"json"`.
    format: LogFormat,
    /// `EnvFilter` directives.
    level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            format: LogFormat::default(),
            level: defaults::LOG_LEVEL.to_owned(),
        }
    }
}

/// `[metrics]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawMetrics {
    /// Listener address; absent = disabled.
    listen: Option<String>,
}

/// `[delivery]`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawDelivery {
    /// Give up after this long.
    #[serde(deserialize_with = "duration")]
    max_age: Duration,
    /// First retry delay.
    #[serde(deserialize_with = "duration")]
    initial_backoff: Duration,
    /// Longest retry delay.
    #[serde(deserialize_with = "duration")]
    max_backoff: Duration,
}

impl Default for RawDelivery {
    fn default() -> Self {
        RawDelivery {
            max_age: defaults::DELIVERY_MAX_AGE,
            initial_backoff: defaults::INITIAL_BACKOFF,
            max_backoff: defaults::MAX_BACKOFF,
        }
    }
}

/// Reads a humantime duration (`"10s"`, `"15m"`, `"24h"`, `"90d"`). A bare number is refused:
/// seconds or minutes would be a guess.
fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a duration such as \"10s\", \"15m\", \"24h\" or \"90d\"")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
            humantime::parse_duration(text.trim()).map_err(|e| {
                E::custom(format!(
                    "invalid duration {text:?} ({e}); write it like \"10s\", \"15m\", \"24h\" or \"90d\""
                ))
            })
        }

        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "a bare number ({n}) is not a duration; add the unit, e.g. \"{n}s\" or \"{n}m\""
            )))
        }

        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Duration, E> {
            self.visit_i64(n as i64)
        }

        fn visit_f64<E: de::Error>(self, n: f64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "a bare number ({n}) is not a duration; write it with a unit, e.g. \"1500ms\""
            )))
        }
    }

    deserializer.deserialize_any(DurationVisitor)
}

/// The keys that may be written as a comma-separated list in an environment variable
/// (`IAMWATCHD__SMTP__TO=a@example.com,b@example.com`).
const ENV_LIST_KEYS: &[(&str, &str)] = &[
    ("smtp", "to"),
    ("aws", "tampering_regions"),
    ("deploy", "emails"),
];

impl RawConfig {
    /// Stage 1: TOML syntax, layering, unknown keys and field types. Returns the raw config
    /// (fields that failed left at their defaults) with the problems found so far.
    fn parse<I>(text: &str, path: &Path, env: I) -> Result<(RawConfig, Vec<Problem>), ConfigErrors>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        // The `config` crate would report a syntax error too, but only as text; parsing once
        // here gives the exact position.
        let file_table: toml::Table = toml::from_str(text).map_err(|e| {
            let (line, column) = line_column(text, e.span().map_or(0, |s| s.start));
            ConfigErrors::Syntax {
                path: path.to_owned(),
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        })?;

        let mut problems = Vec::new();
        let inline_password = file_table
            .get("smtp")
            .and_then(|s| s.as_table())
            .is_some_and(|s| s.contains_key("password"));
        if inline_password {
            problems.push(Problem::new(
                "smtp.password",
                format!(
                    "a password written in the configuration file is refused (config files are \
                     copied, backed up and read by many); move it to the {SMTP_PASSWORD_ENV} \
                     environment variable (e.g. a systemd EnvironmentFile) or to a file named by \
                     smtp.password_file with mode 600"
                ),
            ));
        }

        let prefix = format!("{ENV_PREFIX}__");
        let env: HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.to_ascii_uppercase().starts_with(&prefix))
            .collect();
        let from_env: Vec<String> = env
            .keys()
            .map(|k| k[prefix.len()..].to_lowercase().replace("__", "."))
            .collect();
        let layered = config::Config::builder()
            .add_source(File::from_str(text, FileFormat::Toml))
            .add_source(
                Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("__")
                    .separator("__")
                    .source(Some(env)),
            )
            .build()
            .and_then(|c| c.try_deserialize::<Map<String, Value>>());
        let mut root = match layered {
            Ok(root) => root,
            Err(e) => {
                // Only a clash between the file and an IAMWATCHD__ variable gets here (the
                // TOML already parsed), e.g. IAMWATCHD__SMTP=x against an [smtp] table.
                problems.push(Problem::new(
                    "(environment)",
                    format!("cannot layer the {prefix}* variables over the file: {e}"),
                ));
                return Ok((RawConfig::default(), problems));
            }
        };
        if inline_password {
            if let Some(Value {
                kind: ValueKind::Table(smtp),
                ..
            }) = root.get_mut("smtp")
            {
                smtp.remove("password");
            }
        }

        clean_root(&mut root, &from_env, &mut problems);
        let raw = Value::new(None, ValueKind::Table(root))
            .try_deserialize::<RawConfig>()
            .unwrap_or_else(|e| {
                // Every field was checked on its own above, so this is a combination serde
                // refuses that no single key shows; say so rather than guess a path.
                problems.push(Problem::new("(root)", describe_config_error(&e)));
                RawConfig::default()
            });
        Ok((raw, problems))
    }
}

/// Checks every key of the layered tree against the raw structs, reports unknown keys and
/// values of the wrong type (each on its own, with its path), and removes them so that the
/// rest can still be read and validated.
///
/// `from_env` lists the dotted keys set by environment variables: list keys among them are
/// split on commas.
fn clean_root(root: &mut Map<String, Value>, from_env: &[String], problems: &mut Vec<Problem>) {
    let sections = fields_of::<RawConfig>();
    for name in sorted_keys(root) {
        if !sections.contains(&name.as_str()) {
            let mut problem = unknown_key("", &name, sections);
            if !matches!(root[&name].kind, ValueKind::Table(_)) {
                // `region = …` above every section: a key, not a section.
                problem.message = problem.message.replace("unknown section", "unknown key");
            }
            problems.push(problem);
            root.remove(&name);
            continue;
        }
        let value = root.remove(&name).expect("key listed above");
        let mut table = match value.kind {
            ValueKind::Table(table) => table,
            ValueKind::Nil => continue,
            other => {
                problems.push(Problem::new(
                    name.as_str(),
                    format!("expected a table (a [{name}] section), got {other}"),
                ));
                continue;
            }
        };
        for (section, key) in ENV_LIST_KEYS {
            if *section == name && from_env.contains(&join(section, key)) {
                split_env_list(&mut table, key);
            }
        }
        match name.as_str() {
            "aws" => clean_table::<RawAws>("aws", &mut table, problems),
            "deploy" => clean_table::<RawDeploy>("deploy", &mut table, problems),
            "poller" => clean_table::<RawPoller>("poller", &mut table, problems),
            "rules" => {
                clean_allow_list(&mut table, problems);
                clean_table::<RawRules>("rules", &mut table, problems)
            }
            "store" => clean_table::<RawStore>("store", &mut table, problems),
            "smtp" => clean_table::<RawSmtp>("smtp", &mut table, problems),
            "sns" => clean_table::<RawSns>("sns", &mut table, problems),
            "alarm" => clean_table::<RawAlarm>("alarm", &mut table, problems),
            "log" => clean_table::<RawLog>("log", &mut table, problems),
            "metrics" => clean_table::<RawMetrics>("metrics", &mut table, problems),
            "delivery" => clean_table::<RawDelivery>("delivery", &mut table, problems),
            other => unreachable!("section {other} is a RawConfig field without a cleaner"),
        }
        root.insert(name, Value::new(None, ValueKind::Table(table)));
    }
}

/// `[[rules.allow]]` is an array of tables: each entry is checked with its index in the path.
/// A broken entry is kept (emptied) so that the indexes validation reports stay right.
fn clean_allow_list(rules: &mut Map<String, Value>, problems: &mut Vec<Problem>) {
    let Some(value) = rules.remove("allow") else {
        return;
    };
    let entries = match value.kind {
        ValueKind::Array(entries) => entries,
        other => {
            problems.push(Problem::new(
                "rules.allow",
                format!("expected an array of tables (write each entry as [[rules.allow]]), got {other}"),
            ));
            return;
        }
    };
    let mut cleaned = Vec::with_capacity(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        let path = format!("rules.allow[{index}]");
        let mut table = match entry.kind {
            ValueKind::Table(table) => table,
            other => {
                problems.push(Problem::new(
                    path.as_str(),
                    format!("expected a table with principal, event and/or account, got {other}"),
                ));
                Map::new()
            }
        };
        clean_table::<RawAllow>(&path, &mut table, problems);
        cleaned.push(Value::new(None, ValueKind::Table(table)));
    }
    rules.insert(
        "allow".to_owned(),
        Value::new(None, ValueKind::Array(cleaned)),
    );
}

/// A list key set from the environment arrives as one string: split it on commas.
fn split_env_list(table: &mut Map<String, Value>, key: &str) {
    let Some(value) = table.get_mut(key) else {
        return;
    };
    if let ValueKind::String(text) = &value.kind {
        let items = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Value::new(None, ValueKind::String(s.to_owned())))
            .collect();
        *value = Value::new(None, ValueKind::Array(items));
    }
}

/// Checks each key of `table` against `T`'s fields: unknown keys are reported with a
/// suggestion, and each known key is deserialised alone (every field of `T` has a default), so
/// that one bad value does not hide the next. Bad keys are removed.
fn clean_table<T: DeserializeOwned>(
    path: &str,
    table: &mut Map<String, Value>,
    problems: &mut Vec<Problem>,
) {
    let known = fields_of::<T>();
    for key in sorted_keys(table) {
        if !known.contains(&key.as_str()) {
            problems.push(unknown_key(path, &key, known));
            table.remove(&key);
            continue;
        }
        let mut single = Map::new();
        single.insert(key.clone(), table[&key].clone());
        if let Err(e) = Value::new(None, ValueKind::Table(single)).try_deserialize::<T>() {
            problems.push(Problem::new(join(path, &key), describe_config_error(&e)));
            table.remove(&key);
        }
    }
}

fn sorted_keys(table: &Map<String, Value>) -> Vec<String> {
    let mut keys: Vec<String> = table.keys().cloned().collect();
    keys.sort();
    keys
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A serde/`config` error as a message without the crate's own key decoration (our caller
/// puts the path in front).
fn describe_config_error(error: &config::ConfigError) -> String {
    match error {
        config::ConfigError::Type {
            unexpected,
            expected,
            ..
        } => format!("expected {expected}, got {unexpected}"),
        config::ConfigError::At { error, .. } => describe_config_error(error),
        other => other.to_string(),
    }
}

/// The problem for an unknown key, suggesting the key probably meant: a close spelling among
/// its siblings, or the same name in another section (`region` at the top → `aws.region`).
fn unknown_key(path: &str, key: &str, siblings: &[&str]) -> Problem {
    let full = join(path, key);
    let what = if path.is_empty() { "section" } else { "key" };
    let close = siblings
        .iter()
        .map(|s| (levenshtein(&key.to_lowercase(), s), *s))
        .filter(|(d, _)| *d <= 2)
        .min();
    let suggestion = match close {
        Some((_, sibling)) => Some(join(path, sibling)),
        None => schema()
            .into_iter()
            .find(|(section, fields)| {
                *section != path && fields.contains(&key.to_lowercase().as_str())
            })
            .map(|(section, _)| join(section, key)),
    };
    let message = match suggestion {
        Some(s) => format!("unknown {what}; did you mean `{s}`?"),
        None => format!(
            "unknown {what}; known {what}s here: {}",
            siblings.join(", ")
        ),
    };
    Problem::new(full, message)
}

/// Every table of the configuration and its keys, read from the raw structs themselves so the
/// list cannot drift from what serde accepts.
fn schema() -> Vec<(&'static str, &'static [&'static str])> {
    vec![
        ("aws", fields_of::<RawAws>()),
        ("deploy", fields_of::<RawDeploy>()),
        ("poller", fields_of::<RawPoller>()),
        ("rules", fields_of::<RawRules>()),
        ("store", fields_of::<RawStore>()),
        ("smtp", fields_of::<RawSmtp>()),
        ("sns", fields_of::<RawSns>()),
        ("alarm", fields_of::<RawAlarm>()),
        ("log", fields_of::<RawLog>()),
        ("metrics", fields_of::<RawMetrics>()),
        ("delivery", fields_of::<RawDelivery>()),
    ]
}

/// Edit distance between two keys (insertions, deletions, substitutions).
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// The field names serde accepts for struct `T`, asked from its derived `Deserialize`: it
/// calls `deserialize_struct(name, FIELDS, …)`, and this deserializer records FIELDS and stops.
fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    #[derive(Debug)]
    struct Stop;

    impl fmt::Display for Stop {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("field probe")
        }
    }

    impl std::error::Error for Stop {}

    impl de::Error for Stop {
        fn custom<M: fmt::Display>(_: M) -> Self {
            Stop
        }
    }

    struct Probe<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = Stop;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            *self.0 = fields;
            Err(Stop)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

// ---------------------------------------------------------------------------------------------
// Stage 2: validation
// ---------------------------------------------------------------------------------------------

/// Errors and warnings collected by validation.
#[derive(Default)]
struct Report {
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl Report {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Problem::new(path, message));
    }

    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem::new(path, message));
    }
}

impl RawConfig {
    /// Stage 2: ranges, shapes and combinations. No network; the only I/O is reading the
    /// SMTP password file (and refusing it when others can read it). Returns every error at
    /// once, with the warnings found alongside.
    fn validate(&self) -> Result<Config, (Vec<Problem>, Vec<Problem>)> {
        let mut report = Report::default();
        let aws = validate_aws(&self.aws, &mut report);
        let deploy = validate_deploy(&self.deploy, &mut report);
        let poller = validate_poller(&self.poller, &mut report);
        let rules = validate_rules(&self.rules, &mut report);
        let store = validate_store(&self.store, &poller, &mut report);
        let smtp = self.smtp.as_ref().map(|s| validate_smtp(s, &mut report));
        let sns = self.sns.as_ref().map(|s| validate_sns(s, &mut report));
        if self.smtp.is_none() && self.sns.is_none() {
            report.error(
                "smtp, sns",
                "no notifier is configured, so no one would hear of a change: add an [smtp] \
                 section (e-mail) or an [sns] section (topic), or both",
            );
        }
        let alarm = validate_alarm(&self.alarm, &mut report);
        let log = validate_log(&self.log, &mut report);
        let metrics = validate_metrics(&self.metrics, &mut report);
        let delivery = validate_delivery(&self.delivery, &mut report);

        if !report.errors.is_empty() {
            return Err((report.errors, report.warnings));
        }
        Ok(Config {
            aws,
            deploy,
            poller,
            rules,
            store,
            smtp,
            sns,
            alarm,
            log,
            metrics,
            delivery,
            warnings: report.warnings,
        })
    }
}

impl RawConfig {
    /// Stage 2 for `iamwatchd deploy --config`: only `[aws]` and `[deploy]`. The other
    /// sections configure the daemon, which may not even run on this machine; `check` and
    /// `run` validate them.
    fn validate_for_deploy(&self) -> Result<DeploySettings, (Vec<Problem>, Vec<Problem>)> {
        let mut report = Report::default();
        let aws = validate_aws(&self.aws, &mut report);
        let deploy = validate_deploy(&self.deploy, &mut report);
        if !report.errors.is_empty() {
            return Err((report.errors, report.warnings));
        }
        Ok(DeploySettings {
            aws,
            deploy,
            warnings: report.warnings,
        })
    }
}

fn validate_aws(raw: &RawAws, report: &mut Report) -> AwsConfig {
    if let Err(e) = check_region(&raw.region) {
        report.error("aws.region", e);
    } else if raw.region != crate::aws::IAM_EVENTS_REGION {
        let why = format!(
            "since November 2021 CloudTrail records IAM events in {} only, so polling {} would \
             never see an IAM change",
            crate::aws::IAM_EVENTS_REGION,
            raw.region
        );
        if raw.allow_non_us_east_1 {
            report.warn("aws.region", why);
        } else {
            report.error(
                "aws.region",
                format!(
                    "must be {}: {why}; set aws.allow_non_us_east_1 = true if you really mean it \
                     (e.g. an isolated partition)",
                    crate::aws::IAM_EVENTS_REGION
                ),
            );
        }
    }
    let tampering_regions = match &raw.tampering_regions {
        None => vec![raw.region.clone()],
        Some(regions) => {
            if regions.is_empty() {
                report.error(
                    "aws.tampering_regions",
                    "must name at least one region (tampering with the trail, filter, alarm or \
                     topic happens in the stack's region); remove the key to use aws.region",
                );
            }
            for (i, region) in regions.iter().enumerate() {
                if let Err(e) = check_region(region) {
                    report.error(format!("aws.tampering_regions[{i}]"), e);
                }
            }
            regions.clone()
        }
    };
    if let Err(e) = check_stack_name(&raw.stack_name) {
        report.error("aws.stack_name", e);
    }
    let max_attempts = match u32::try_from(raw.max_attempts) {
        Ok(n) if (1..=defaults::MAX_ATTEMPTS_LIMIT).contains(&n) => n,
        _ => {
            report.error(
                "aws.max_attempts",
                format!(
                    "must be 1-{} (attempts per AWS call, the first included), got {}",
                    defaults::MAX_ATTEMPTS_LIMIT,
                    raw.max_attempts
                ),
            );
            defaults::MAX_ATTEMPTS
        }
    };
    AwsConfig {
        region: raw.region.clone(),
        allow_non_us_east_1: raw.allow_non_us_east_1,
        tampering_regions,
        stack_name: raw.stack_name.clone(),
        max_attempts,
    }
}

/// The same limits the template (and so CloudFormation) puts on each parameter, checked here so
/// that the operator hears of them with the key's path, before any change set exists.
impl DeployConfig {
    /// These settings, each one this does not name taken from `fallback` (an empty `emails`
    /// list counts as not named: addresses replace each other as a whole).
    pub fn or(self, fallback: &DeployConfig) -> DeployConfig {
        DeployConfig {
            emails: if self.emails.is_empty() {
                fallback.emails.clone()
            } else {
                self.emails
            },
            bucket: self.bucket.or_else(|| fallback.bucket.clone()),
            log_retention_days: self.log_retention_days.or(fallback.log_retention_days),
            alarm_period_seconds: self.alarm_period_seconds.or(fallback.alarm_period_seconds),
            alarm_threshold: self.alarm_threshold.or(fallback.alarm_threshold),
            cis_filter: self.cis_filter.or(fallback.cis_filter),
            tampering_alarm: self.tampering_alarm.or(fallback.tampering_alarm),
            daemon_queue: self.daemon_queue.or(fallback.daemon_queue),
        }
    }
}

fn validate_deploy(raw: &RawDeploy, report: &mut Report) -> DeployConfig {
    use crate::template;

    if raw.emails.len() > template::MAX_EMAILS {
        report.error(
            "deploy.emails",
            format!(
                "at most {} addresses (the stack subscribes each one separately); for more, \
                 subscribe a mailing list; got {}",
                template::MAX_EMAILS,
                raw.emails.len()
            ),
        );
    }
    for (i, address) in raw.emails.iter().enumerate() {
        match crate::deploy::validate_email(address) {
            Ok(()) => {}
            Err(crate::deploy::DeployError::BadEmail { reason, .. }) => report.error(
                format!("deploy.emails[{i}]"),
                format!(
                    "{address:?} is not a usable e-mail address ({reason}); write one address \
                     per list item, like \"security@example.com\""
                ),
            ),
            Err(other) => report.error(format!("deploy.emails[{i}]"), other.to_string()),
        }
    }
    if let Some(bucket) = raw.bucket.as_deref().filter(|b| !b.is_empty()) {
        if let Err(e) = check_bucket_name(bucket) {
            report.error("deploy.bucket", e);
        }
    }
    let log_retention_days = raw.log_retention_days.and_then(|days| {
        let allowed = &template::LOG_RETENTION_DAYS_ALLOWED;
        let known = u32::try_from(days).ok().filter(|d| allowed.contains(d));
        if known.is_none() {
            report.error(
                "deploy.log_retention_days",
                format!(
                    "must be a retention CloudWatch Logs offers, one of {}; got {days}",
                    join_numbers(allowed)
                ),
            );
        }
        known
    });
    let alarm_period_seconds = raw.alarm_period.and_then(|seconds| {
        let allowed = &template::ALARM_PERIOD_SECONDS_ALLOWED;
        let known = u32::try_from(seconds).ok().filter(|s| allowed.contains(s));
        if known.is_none() {
            report.error(
                "deploy.alarm_period",
                format!(
                    "must be one of {} (seconds; CloudWatch takes 10, 30 or a multiple of 60, \
                     and the template offers these); got {seconds}",
                    join_numbers(allowed)
                ),
            );
        }
        known
    });
    let alarm_threshold = raw.alarm_threshold.and_then(|count| {
        let valid = u32::try_from(count)
            .ok()
            .filter(|n| *n >= template::MIN_ALARM_THRESHOLD);
        if valid.is_none() {
            report.error(
                "deploy.alarm_threshold",
                format!(
                    "must be {}-{} (changes within one period that set the alarm off; 0 would \
                     set it off in every period); got {count}",
                    template::MIN_ALARM_THRESHOLD,
                    u32::MAX
                ),
            );
        }
        valid
    });
    DeployConfig {
        emails: raw.emails.clone(),
        bucket: raw.bucket.clone(),
        log_retention_days,
        alarm_period_seconds,
        alarm_threshold,
        cis_filter: raw.cis_filter,
        tampering_alarm: raw.tampering_alarm,
        daemon_queue: raw.daemon_queue,
    }
}

/// `1, 3, 5` for messages.
fn join_numbers(values: &[u32]) -> String {
    values
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn validate_poller(raw: &RawPoller, report: &mut Report) -> PollerConfig {
    let rps = raw.requests_per_second;
    if !(rps > 0.0 && rps <= defaults::REQUESTS_PER_SECOND_CAP) {
        report.error(
            "poller.requests_per_second",
            format!(
                "must be greater than 0 and at most {} (AWS allows LookupEvents {} requests/s \
                 per account and region, shared with everyone else using it, the console \
                 included; going over means throttling), got {rps}",
                defaults::REQUESTS_PER_SECOND_CAP,
                defaults::REQUESTS_PER_SECOND_CAP
            ),
        );
    }
    if raw.poll_interval < Duration::from_secs(1) {
        report.error(
            "poller.poll_interval",
            format!(
                "must be at least 1s, got {}",
                humantime::format_duration(raw.poll_interval)
            ),
        );
    }
    if raw.short_window < raw.poll_interval {
        report.error(
            "poller.short_window",
            format!(
                "must be at least poller.poll_interval ({}), or events between two polls are \
                 never read; got {}",
                humantime::format_duration(raw.poll_interval),
                humantime::format_duration(raw.short_window)
            ),
        );
    }
    if raw.sweep_horizon < raw.short_window {
        report.error(
            "poller.sweep_horizon",
            format!(
                "must be at least poller.short_window ({}): the sweep catches what arrives \
                 later than the short window; got {}",
                humantime::format_duration(raw.short_window),
                humantime::format_duration(raw.sweep_horizon)
            ),
        );
    }
    if raw.sweep_horizon > defaults::LOOKUP_RETENTION {
        report.error(
            "poller.sweep_horizon",
            "must be at most 90d, LookupEvents' retention",
        );
    }
    if raw.sweep_interval.is_zero() || raw.sweep_interval > raw.sweep_horizon {
        report.error(
            "poller.sweep_interval",
            format!(
                "must be greater than 0 and at most poller.sweep_horizon ({}), or consecutive \
                 sweeps leave gaps; got {}",
                humantime::format_duration(raw.sweep_horizon),
                humantime::format_duration(raw.sweep_interval)
            ),
        );
    }
    let start_from = match raw.start_from.trim() {
        "now" => StartFrom::Now,
        text => match humantime::parse_duration(text) {
            Ok(d) if d <= defaults::LOOKUP_RETENTION => StartFrom::Ago(d),
            Ok(_) => {
                report.error(
                    "poller.start_from",
                    format!("must be at most 90d (LookupEvents keeps 90 days), got {text:?}"),
                );
                StartFrom::Now
            }
            Err(e) => {
                report.error(
                    "poller.start_from",
                    format!(
                        "must be \"now\" or a duration back such as \"1h\" or \"7d\", got \
                         {text:?} ({e})"
                    ),
                );
                StartFrom::Now
            }
        },
    };
    PollerConfig {
        requests_per_second: rps,
        poll_interval: raw.poll_interval,
        short_window: raw.short_window,
        sweep_interval: raw.sweep_interval,
        sweep_horizon: raw.sweep_horizon,
        start_from,
    }
}

fn validate_rules(raw: &RawRules, report: &mut Report) -> RulesConfig {
    let mut allow = Vec::with_capacity(raw.allow.len());
    for (i, entry) in raw.allow.iter().enumerate() {
        let path = format!("rules.allow[{i}]");
        if entry.principal.is_none() && entry.event.is_none() && entry.account.is_none() {
            report.error(
                path.as_str(),
                "an allow entry must set at least one of principal, event and account (an \
                 empty entry would silence everything)",
            );
        }
        if let Some(principal) = &entry.principal {
            if let Err(e) = check_principal(principal) {
                report.error(format!("{path}.principal"), e);
            }
        }
        if let Some(event) = &entry.event {
            let valid = !event.is_empty()
                && event
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?');
            if !valid {
                report.error(
                    format!("{path}.event"),
                    format!(
                        "must be an event name or a glob of one (letters and digits, `*` and \
                         `?`), e.g. \"Tag*\", got {event:?}"
                    ),
                );
            }
        }
        if let Some(account) = &entry.account {
            if !is_account_id(account) {
                report.error(
                    format!("{path}.account"),
                    format!(
                        "must be a 12-digit AWS account ID written as a quoted string (so \
                         leading zeros survive), got {account:?}"
                    ),
                );
            }
        }
        allow.push(AllowEntry {
            principal: entry.principal.clone(),
            event: entry.event.clone(),
            account: entry.account.clone(),
            comment: entry.comment.clone(),
        });
    }
    RulesConfig {
        failed_calls: raw.failed_calls,
        min_severity: raw.min_severity,
        allow,
    }
}

fn validate_store(raw: &RawStore, poller: &PollerConfig, report: &mut Report) -> StoreConfig {
    if raw.state_directory.as_os_str().is_empty() {
        report.error(
            "store.state_directory",
            format!(
                "must not be empty (the default is {})",
                defaults::STATE_DIRECTORY
            ),
        );
    }
    if raw.retention < poller.sweep_horizon {
        report.error(
            "store.retention",
            format!(
                "must be at least poller.sweep_horizon ({}): an event the sweep re-reads must \
                 still be remembered, or it is reported twice; got {}",
                humantime::format_duration(poller.sweep_horizon),
                humantime::format_duration(raw.retention)
            ),
        );
    }
    StoreConfig {
        state_directory: raw.state_directory.clone(),
        retention: raw.retention,
    }
}

fn validate_smtp(raw: &RawSmtp, report: &mut Report) -> SmtpConfig {
    let host = match raw.host.as_deref().map(str::trim) {
        Some(h) if !h.is_empty() && !h.contains(char::is_whitespace) => h.to_owned(),
        Some(h) => {
            report.error(
                "smtp.host",
                format!("must be a host name or address, got {h:?}"),
            );
            String::new()
        }
        None => {
            report.error("smtp.host", "is required when [smtp] is configured");
            String::new()
        }
    };
    let port = match raw.port {
        None => raw.tls.default_port(),
        Some(p) => match u16::try_from(p) {
            Ok(p) if p != 0 => p,
            _ => {
                report.error("smtp.port", format!("must be 1-65535, got {p}"));
                raw.tls.default_port()
            }
        },
    };
    if raw.tls == SmtpTls::None && !raw.allow_plaintext {
        report.error(
            "smtp.tls",
            "\"none\" sends mail (and any password) unencrypted; set smtp.allow_plaintext = \
             true to accept that, e.g. for a relay on localhost",
        );
    }

    let password = resolve_password(raw, report);
    let auth = match (&raw.username, password) {
        (Some(username), Some(password)) => Some(SmtpAuth {
            username: username.clone(),
            password,
        }),
        (Some(_), None) => {
            if raw.password_file.is_none() {
                report.error(
                    "smtp.password",
                    format!(
                        "smtp.username is set but no password: set {SMTP_PASSWORD_ENV} or \
                         smtp.password_file"
                    ),
                );
            }
            None
        }
        (None, Some(_)) => {
            report.error(
                "smtp.username",
                "a password is configured but no user name: set smtp.username",
            );
            None
        }
        (None, None) => None,
    };

    let from = match &raw.from {
        Some(from) => {
            if let Err(e) = check_mailbox(from) {
                report.error("smtp.from", e);
            }
            from.clone()
        }
        None => {
            report.error(
                "smtp.from",
                "is required when [smtp] is configured (the sender address)",
            );
            String::new()
        }
    };
    if raw.to.is_empty() {
        report.error(
            "smtp.to",
            "must list at least one recipient, e.g. to = [\"security@example.com\"]",
        );
    }
    for (i, to) in raw.to.iter().enumerate() {
        if let Err(e) = check_mailbox(to) {
            report.error(format!("smtp.to[{i}]"), e);
        }
    }
    if raw.timeout.is_zero() {
        report.error("smtp.timeout", "must be greater than 0");
    }
    if let Some(ca_file) = &raw.ca_file {
        if let Err(e) = std::fs::metadata(ca_file) {
            report.error(
                "smtp.ca_file",
                format!("cannot read {}: {e}", ca_file.display()),
            );
        }
    }
    SmtpConfig {
        host,
        port,
        tls: raw.tls,
        auth,
        from,
        to: raw.to.clone(),
        timeout: raw.timeout,
        ca_file: raw.ca_file.clone(),
    }
}

/// The SMTP password from the environment (`smtp.password` in the layered config; the file
/// itself was refused in stage 1) or from `smtp.password_file`, which others must not be able
/// to read.
fn resolve_password(raw: &RawSmtp, report: &mut Report) -> Option<Secret> {
    match (&raw.password, &raw.password_file) {
        (Some(_), Some(_)) => {
            report.error(
                "smtp.password_file",
                format!(
                    "both {SMTP_PASSWORD_ENV} and smtp.password_file are set; keep only one so \
                     it is clear which password is used"
                ),
            );
            None
        }
        (Some(password), None) => Some(Secret::new(password.clone())),
        (None, Some(path)) => match read_secret_file(path) {
            Ok(secret) => Some(secret),
            Err(e) => {
                report.error("smtp.password_file", e);
                None
            }
        },
        (None, None) => None,
    }
}

/// Reads a secret from a file, refusing a file that group or others can read.
fn read_secret_file(path: &Path) -> Result<Secret, String> {
    let metadata =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "{} is readable by group or others (mode {:o}); a password file must be \
                 private: run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let password = text.strip_suffix('\n').unwrap_or(&text);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(Secret::new(password))
}

fn validate_sns(raw: &RawSns, report: &mut Report) -> SnsConfig {
    let Some(arn) = &raw.topic_arn else {
        report.error(
            "sns.topic_arn",
            "is required when [sns] is configured, e.g. \
             \"arn:aws:sns:us-east-1:123456789012:iamwatchd\"",
        );
        return SnsConfig {
            topic_arn: String::new(),
            region: raw.region.clone().unwrap_or_default(),
        };
    };
    let arn_region = match sns_topic_region(arn) {
        Ok(region) => Some(region),
        Err(e) => {
            report.error("sns.topic_arn", e);
            None
        }
    };
    let region = match (&raw.region, arn_region) {
        (Some(region), arn_region) => {
            if let Err(e) = check_region(region) {
                report.error("sns.region", e);
            } else if arn_region.is_some_and(|a| a != region) {
                report.error(
                    "sns.region",
                    format!(
                        "is {region} but the topic ARN names {}; remove sns.region (it \
                         defaults to the ARN's region)",
                        arn_region.unwrap_or_default()
                    ),
                );
            }
            region.clone()
        }
        (None, arn_region) => arn_region.unwrap_or_default().to_owned(),
    };
    SnsConfig {
        topic_arn: arn.clone(),
        region,
    }
}

fn validate_alarm(raw: &RawAlarm, report: &mut Report) -> AlarmConfig {
    if let Some(url) = &raw.queue_url {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        let shaped = rest.is_some_and(|r| {
            r.split_once('/')
                .is_some_and(|(host, path)| !host.is_empty() && !path.is_empty())
        }) && !url.contains(char::is_whitespace);
        if !shaped {
            report.error(
                "alarm.queue_url",
                format!(
                    "must be an SQS queue URL such as \
                     \"https://sqs.us-east-1.amazonaws.com/123456789012/iamwatchd-alarms\" (the \
                     stack's AlarmQueueUrl output), got {url:?}"
                ),
            );
        }
    }
    if raw.confirm_within.is_zero() {
        report.error("alarm.confirm_within", "must be greater than 0");
    }
    match (&raw.queue_url, &raw.log_group) {
        (Some(_), None) => report.error(
            "alarm.log_group",
            "is required with alarm.queue_url: name the trail's log group (the stack's \
             LogGroupName output), which the daemon reads when an alarm fires",
        ),
        (_, Some(group)) if !valid_log_group_name(group) => report.error(
            "alarm.log_group",
            format!(
                "must be a CloudWatch Logs group name (1 to 512 characters of letters, digits \
                 and _ - / . #), got {group:?}"
            ),
        ),
        _ => {}
    }
    if raw.lookback_margin > Duration::from_secs(24 * 60 * 60) {
        report.error(
            "alarm.lookback_margin",
            "must be at most 1 day: CloudTrail delivers to CloudWatch Logs within minutes",
        );
    }
    AlarmConfig {
        queue_url: raw.queue_url.clone(),
        confirm_within: raw.confirm_within,
        log_group: raw.log_group.clone(),
        lookback_margin: raw.lookback_margin,
        health_messages: raw.health_messages,
    }
}

/// CloudWatch Logs' rule for group names (CreateLogGroup's `logGroupName` pattern).
fn valid_log_group_name(name: &str) -> bool {
    (1..=512).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-/.#".contains(c))
}

fn validate_log(raw: &RawLog, report: &mut Report) -> LogConfig {
    if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&raw.level) {
        report.error(
            "log.level",
            format!(
                "is not a valid tracing filter ({e}); use a level such as \"info\" or \
                 directives such as \"info,iamwatchd=debug\""
            ),
        );
    }
    LogConfig {
        format: raw.format,
        level: raw.level.clone(),
    }
}

fn validate_metrics(raw: &RawMetrics, report: &mut Report) -> MetricsConfig {
    let listen = raw
        .listen
        .as_ref()
        .and_then(|text| match text.parse::<SocketAddr>() {
            Ok(addr) => {
                if !addr.ip().is_loopback() {
                    report.warn(
                        "metrics.listen",
                        format!(
                            "{addr} is reachable from other machines; /metrics has no \
                         authentication, so prefer {} unless a firewall or proxy guards it",
                            defaults::METRICS_LISTEN_SUGGESTION
                        ),
                    );
                }
                Some(addr)
            }
            Err(e) => {
                report.error(
                    "metrics.listen",
                    format!(
                        "must be an IP address and port such as \"{}\", got {text:?} ({e})",
                        defaults::METRICS_LISTEN_SUGGESTION
                    ),
                );
                None
            }
        });
    MetricsConfig { listen }
}

fn validate_delivery(raw: &RawDelivery, report: &mut Report) -> DeliveryConfig {
    if raw.initial_backoff.is_zero() {
        report.error(
            "delivery.initial_backoff",
            "must be greater than 0 (retrying at once only hammers a server that is down)",
        );
    }
    if raw.max_backoff < raw.initial_backoff {
        report.error(
            "delivery.max_backoff",
            format!(
                "must be at least delivery.initial_backoff ({}), got {}",
                humantime::format_duration(raw.initial_backoff),
                humantime::format_duration(raw.max_backoff)
            ),
        );
    }
    if raw.max_age < raw.max_backoff {
        report.error(
            "delivery.max_age",
            format!(
                "must be at least delivery.max_backoff ({}), or a notification is given up \
                 before its next retry; got {}",
                humantime::format_duration(raw.max_backoff),
                humantime::format_duration(raw.max_age)
            ),
        );
    }
    DeliveryConfig {
        max_age: raw.max_age,
        initial_backoff: raw.initial_backoff,
        max_backoff: raw.max_backoff,
    }
}

// ---------------------------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------------------------

/// An AWS region name: `us-east-1`, `eu-central-2`, `us-gov-west-1`, `ap-southeast-4`.
fn check_region(region: &str) -> Result<(), String> {
    let parts: Vec<&str> = region.split('-').collect();
    let shaped = parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty();
    if shaped {
        Ok(())
    } else {
        Err(format!(
            "must be an AWS region name such as \"us-east-1\", got {region:?}"
        ))
    }
}

/// CloudFormation stack names: a letter, then letters, digits and hyphens, at most 128.
fn check_stack_name(name: &str) -> Result<(), String> {
    let shaped = name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if shaped {
        Ok(())
    } else {
        Err(format!(
            "must start with a letter and contain only letters, digits and hyphens (at most \
             128), as CloudFormation requires; got {name:?}"
        ))
    }
}

/// S3 bucket names, as the template's `TrailBucketName` pattern takes them: 3-63 lowercase
/// letters, digits, dots and hyphens, starting and ending with a letter or digit.
fn check_bucket_name(name: &str) -> Result<(), String> {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let shaped = (3..=63).contains(&name.len())
        && edge(name.chars().next())
        && edge(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    if shaped {
        Ok(())
    } else {
        Err(format!(
            "must be an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens, \
             starting and ending with a letter or digit), or \"\" for a bucket the stack \
             creates; got {name:?}"
        ))
    }
}

fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// Allow-list principals are ARNs; an assumed-role session ARN would never match because
/// sessions are normalised to their role before matching.
fn check_principal(principal: &str) -> Result<(), String> {
    let Some(arn) = crate::aws::arn::Arn::parse(principal) else {
        return Err(format!(
            "must be a principal ARN such as \"arn:aws:iam::123456789012:role/ci-deployer\", \
             got {principal:?}"
        ));
    };
    if arn.service == "sts" {
        if let Some(role) = arn.role_of_session() {
            return Err(format!(
                "assumed-role sessions are matched by their role, so a session ARN never \
                 matches; write the role ARN instead: \"{role}\""
            ));
        }
    }
    Ok(())
}

/// `arn:<partition>:sns:<region>:<account>:<topic>`; returns the region.
fn sns_topic_region(topic_arn: &str) -> Result<&str, String> {
    let bad = || {
        format!(
            "must be an SNS topic ARN such as \"arn:aws:sns:us-east-1:123456789012:iamwatchd\", \
             got {topic_arn:?}"
        )
    };
    let arn = crate::aws::arn::Arn::parse(topic_arn).ok_or_else(bad)?;
    if !arn.partition.starts_with("aws") || arn.service != "sns" {
        return Err(bad());
    }
    check_region(arn.region).map_err(|_| bad())?;
    if !is_account_id(arn.account) {
        return Err(bad());
    }
    let name = arn.resource.strip_suffix(".fifo").unwrap_or(arn.resource);
    let name_ok = !name.is_empty()
        && arn.resource.len() <= 256
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !name_ok {
        return Err(bad());
    }
    Ok(arn.region)
}

/// A mailbox as lettre accepts it: `user@domain` or `Name <user@domain>`. Addresses come
/// from the operator, but a CR or LF here would still inject mail headers, so they are refused.
fn check_mailbox(mailbox: &str) -> Result<(), String> {
    let address = match (mailbox.find('<'), mailbox.strip_suffix('>')) {
        (Some(open), Some(inner)) => &inner[open + 1..],
        _ => mailbox.trim(),
    };
    let shaped = address.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            && !local
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c))
    }) && !mailbox.chars().any(char::is_control);
    if shaped {
        Ok(())
    } else {
        Err(format!(
            "must be an e-mail address such as \"security@example.com\" or \
             \"Security <security@example.com>\", got {mailbox:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/iamwatchd.toml");

    /// A minimal valid file: only a notifier is required.
    const MINIMAL: &str = "[sns]\ntopic_arn = \"arn:aws:sns:us-east-1:123456789012:t\"\n";

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn load_str(text: &str, env_pairs: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
        Config::from_toml(text, Path::new("test.toml"), env(env_pairs))
    }

    fn problems(text: &str) -> Vec<Problem> {
        match load_str(text, &[]) {
            Err(ConfigErrors::Invalid { problems, .. }) => problems,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    fn problem_at<'a>(problems: &'a [Problem], path: &str) -> &'a Problem {
        problems
            .iter()
            .find(|p| p.path == path)
            .unwrap_or_else(|| panic!("no problem at {path} in {problems:#?}"))
    }

    #[test]
    fn example_loads_and_validates() {
        let config = Config::load(
            Path::new(EXAMPLE),
            env(&[("IAMWATCHD__SMTP__PASSWORD", "s3cret")]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        assert_eq!(config.aws.region, "us-east-1");
        assert_eq!(config.poller.poll_interval, Duration::from_secs(10));
        assert_eq!(config.poller.sweep_horizon, Duration::from_secs(15 * 60));
        assert_eq!(config.poller.start_from, StartFrom::Now);
        let smtp = config.smtp.expect("example configures smtp");
        let auth = smtp.auth.expect("username and env password");
        assert_eq!(auth.password.expose(), "s3cret");
        assert_eq!(smtp.to, ["security@example.com"]);
        assert_eq!(config.sns.unwrap().region, "us-east-1");
        assert_eq!(config.rules.allow.len(), 1);
        assert_eq!(config.deploy.emails, ["security@example.com"]);
        assert_eq!(
            config.deploy.bucket, None,
            "the example leaves the bucket out"
        );
        assert_eq!(
            config.deploy.log_retention_days,
            Some(crate::template::DEFAULT_LOG_RETENTION_DAYS)
        );
        assert_eq!(
            config.metrics.listen,
            Some(defaults::METRICS_LISTEN_SUGGESTION.parse().unwrap())
        );
    }

    #[test]
    fn example_documents_every_key() {
        let text = std::fs::read_to_string(EXAMPLE).unwrap();
        // The password is the one key that must not appear as `key =` in a file.
        assert!(text.contains(SMTP_PASSWORD_ENV));
        for (section, fields) in schema() {
            assert!(
                text.contains(&format!("[{section}]")),
                "[{section}] missing"
            );
            for field in fields
                .iter()
                .filter(|f| (section, **f) != ("smtp", "password"))
            {
                let documented = text.lines().any(|l| {
                    let l = l.trim_start_matches(['#', ' ']);
                    l.starts_with(&format!("{field} ="))
                        || l.starts_with(&format!("[[{section}.{field}]]"))
                });
                assert!(documented, "{section}.{field} is not in the example");
            }
        }
    }

    #[test]
    fn defaults_apply_to_a_minimal_file() {
        let config = load_str(MINIMAL, &[]).unwrap();
        assert_eq!(config.aws.region, defaults::REGION);
        assert_eq!(config.aws.tampering_regions, [defaults::REGION]);
        assert_eq!(config.aws.stack_name, defaults::STACK_NAME);
        assert_eq!(
            config.poller.requests_per_second,
            defaults::REQUESTS_PER_SECOND
        );
        assert_eq!(config.store.retention, defaults::RETENTION);
        assert_eq!(config.metrics.listen, None);
        assert_eq!(config.log.format, LogFormat::Human);
        assert_eq!(config.rules.failed_calls, FailedCalls::Report);
        assert!(config.smtp.is_none());
    }

    #[test]
    fn env_overrides_nested_keys_and_splits_lists() {
        let text = format!(
            "{MINIMAL}[poller]\npoll_interval = \"10s\"\n[smtp]\nhost = \"mail\"\nfrom = \"a@b.example\"\nto = [\"x@y.example\"]\n"
        );
        let config = load_str(
            &text,
            &[
                ("IAMWATCHD__POLLER__POLL_INTERVAL", "30s"),
                ("IAMWATCHD__POLLER__REQUESTS_PER_SECOND", "0.5"),
                ("IAMWATCHD__SMTP__TO", "a@example.com, b@example.com"),
                ("IAMWATCHD__SMTP__PORT", "2525"),
                ("UNRELATED", "ignored"),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.poller.poll_interval, Duration::from_secs(30));
        assert_eq!(config.poller.requests_per_second, 0.5);
        let smtp = config.smtp.unwrap();
        assert_eq!(smtp.to, ["a@example.com", "b@example.com"]);
        assert_eq!(smtp.port, 2525);
    }

    #[test]
    fn env_password_keeps_its_exact_text() {
        // Numeric-looking secrets must not be reinterpreted as numbers ("007" → 7).
        let text = format!(
            "{MINIMAL}[smtp]\nhost = \"mail\"\nusername = \"u\"\nfrom = \"a@b.example\"\nto = [\"x@y.example\"]\n"
        );
        let config = load_str(&text, &[("IAMWATCHD__SMTP__PASSWORD", "007")]).unwrap();
        assert_eq!(config.smtp.unwrap().auth.unwrap().password.expose(), "007");
    }

    #[test]
    fn several_problems_are_reported_at_once_with_paths() {
        let text = r#"
[aws]
region = "eu-west-1"
[poller]
requests_per_second = 5
poll_intervall = "10s"
[smtp]
host = "mail.example.com"
port = 0
from = "not an address"
to = []
[log]
level = "info,iamwatchd=loud"
[metrics]
listen = "localhost"
"#;
        let found = problems(text);
        assert!(problem_at(&found, "aws.region")
            .message
            .contains("us-east-1"));
        assert!(problem_at(&found, "poller.requests_per_second")
            .message
            .contains("at most 2"));
        assert!(problem_at(&found, "poller.poll_intervall")
            .message
            .contains("poll_interval"));
        assert_eq!(
            problem_at(&found, "smtp.port").to_string(),
            "smtp.port: must be 1-65535, got 0"
        );
        problem_at(&found, "smtp.from");
        problem_at(&found, "smtp.to");
        problem_at(&found, "log.level");
        problem_at(&found, "metrics.listen");
        assert_eq!(found.len(), 8, "{found:#?}");
        let shown = load_str(text, &[]).unwrap_err().to_string();
        assert!(shown.contains("8 problems"), "{shown}");
    }

    #[test]
    fn wrong_types_are_each_reported_without_hiding_others() {
        let text = format!(
            "{MINIMAL}[poller]\npoll_interval = 10\nshort_window = \"2 fortnights\"\nrequests_per_second = \"fast\"\n[rules]\nfailed_calls = \"maybe\"\n"
        );
        let found = problems(&text);
        assert!(problem_at(&found, "poller.poll_interval")
            .message
            .contains("\"10s\""));
        assert!(problem_at(&found, "poller.short_window")
            .message
            .contains("invalid duration"));
        problem_at(&found, "poller.requests_per_second");
        let failed_calls = &problem_at(&found, "rules.failed_calls").message;
        assert!(failed_calls.contains("`report`"), "{failed_calls}");
        assert_eq!(found.len(), 4, "{found:#?}");
    }

    #[test]
    fn unknown_keys_get_a_suggestion() {
        let text = format!("region = \"us-east-1\"\n{MINIMAL}[Log]\nLevel = \"info\"\n[poler]\nx = 1\n[store]\nretension = \"1d\"\ncolour = \"blue\"\n");
        let found = problems(&text);
        assert_eq!(
            problem_at(&found, "store.retension").message,
            "unknown key; did you mean `store.retention`?"
        );
        assert!(problem_at(&found, "poler").message.contains("`poller`"));
        // Keys are case-sensitive (as in TOML); the suggestion shows the right spelling.
        assert!(problem_at(&found, "Log").message.contains("`log`"));
        assert_eq!(
            problem_at(&found, "region").message,
            "unknown key; did you mean `aws.region`?"
        );
        let colour = &problem_at(&found, "store.colour").message;
        assert!(colour.contains("state_directory, retention"), "{colour}");
    }

    #[test]
    fn unknown_key_from_the_environment_is_reported() {
        let found = match load_str(MINIMAL, &[("IAMWATCHD__POLLER__POLL_INTERVALL", "5s")]) {
            Err(e) => e.problems().to_vec(),
            Ok(_) => panic!("misspelt variable accepted"),
        };
        assert!(problem_at(&found, "poller.poll_intervall")
            .message
            .contains("poll_interval"));
    }

    #[test]
    fn syntax_error_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "broken.toml",
            "[aws]\nregion = \"us-east-1\"\nstack_name = \n",
        );
        match Config::load(&path, env(&[])) {
            Err(ConfigErrors::Syntax {
                line,
                column,
                path: p,
                ..
            }) => {
                assert_eq!((line, column), (3, 14));
                assert_eq!(p, path);
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
        let shown = Config::load(&path, env(&[])).unwrap_err().to_string();
        assert!(
            shown.starts_with(&format!("{}:3:14: TOML syntax error", path.display())),
            "{shown}"
        );
    }

    #[test]
    fn missing_file_says_what_to_do() {
        let e = Config::load(Path::new("/nonexistent/iamwatchd.toml"), env(&[])).unwrap_err();
        assert!(matches!(e, ConfigErrors::Read { .. }));
        assert!(e.to_string().contains("--config"), "{e}");
    }

    #[test]
    fn inline_password_is_refused_even_with_env_set() {
        let text = format!("{MINIMAL}[smtp]\nhost = \"mail\"\nusername = \"u\"\npassword = \"hunter2\"\nfrom = \"a@b.example\"\nto = [\"x@y.example\"]\n");
        for env_pairs in [&[][..], &[("IAMWATCHD__SMTP__PASSWORD", "other")][..]] {
            let e = load_str(&text, env_pairs).unwrap_err();
            let found = e.problems();
            let message = &problem_at(found, "smtp.password").message;
            assert!(message.contains(SMTP_PASSWORD_ENV) && message.contains("password_file"));
            assert!(!e.to_string().contains("hunter2"));
        }
    }

    #[cfg(unix)]
    #[test]
    fn password_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let secret = write(&dir, "smtp-password", "from-file\n");
        let text = format!(
            "{MINIMAL}[smtp]\nhost = \"mail\"\nusername = \"u\"\npassword_file = \"{}\"\nfrom = \"a@b.example\"\nto = [\"x@y.example\"]\n",
            secret.display()
        );

        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
        let found = problems(&text);
        let message = &problem_at(&found, "smtp.password_file").message;
        assert!(message.contains(&secret.display().to_string()), "{message}");
        assert!(
            message.contains(&format!("chmod 600 {}", secret.display())),
            "{message}"
        );

        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = load_str(&text, &[]).unwrap_or_else(|e| panic!("{e}"));
        let auth = config.smtp.unwrap().auth.unwrap();
        assert_eq!(auth.password.expose(), "from-file");
    }

    #[test]
    fn password_from_env_and_file_is_ambiguous() {
        let dir = tempfile::tempdir().unwrap();
        let secret = write(&dir, "pw", "x");
        let text = format!(
            "{MINIMAL}[smtp]\nhost = \"mail\"\nusername = \"u\"\npassword_file = \"{}\"\nfrom = \"a@b.example\"\nto = [\"x@y.example\"]\n",
            secret.display()
        );
        let found = match load_str(&text, &[("IAMWATCHD__SMTP__PASSWORD", "y")]) {
            Err(e) => e.problems().to_vec(),
            Ok(_) => panic!("two passwords accepted"),
        };
        assert!(problem_at(&found, "smtp.password_file")
            .message
            .contains("only one"));
    }

    #[test]
    fn secret_debug_is_redacted() {
        let config = load_str(
            &format!("{MINIMAL}[smtp]\nhost = \"mail\"\nusername = \"u\"\nfrom = \"a@b.example\"\nto = [\"x@y.example\"]\n"),
            &[("IAMWATCHD__SMTP__PASSWORD", "hunter2")],
        )
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("Secret(<redacted>)"));
    }

    #[test]
    fn region_other_than_us_east_1_needs_explicit_consent() {
        let refused = problems(&format!("{MINIMAL}[aws]\nregion = \"eu-west-1\"\n"));
        let message = &problem_at(&refused, "aws.region").message;
        assert!(message.contains("us-east-1 only") && message.contains("allow_non_us_east_1"));

        let config = load_str(
            &format!("{MINIMAL}[aws]\nregion = \"eu-west-1\"\nallow_non_us_east_1 = true\n"),
            &[],
        )
        .unwrap();
        assert_eq!(config.aws.tampering_regions, ["eu-west-1"]);
        assert_eq!(config.warnings[0].path, "aws.region");

        let bad = problems(&format!("{MINIMAL}[aws]\ntampering_regions = [\"mars\"]\n"));
        problem_at(&bad, "aws.tampering_regions[0]");
    }

    #[test]
    fn durations_parse_and_are_checked_against_each_other() {
        let config = load_str(
            &format!("{MINIMAL}[poller]\npoll_interval = \"1m 30s\"\nshort_window = \"5m\"\nsweep_horizon = \"1h\"\nstart_from = \"7d\"\n[delivery]\nmax_age = \"2days\"\n"),
            &[],
        )
        .unwrap();
        assert_eq!(config.poller.poll_interval, Duration::from_secs(90));
        assert_eq!(config.poller.sweep_horizon, Duration::from_secs(3600));
        assert_eq!(
            config.poller.start_from,
            StartFrom::Ago(Duration::from_secs(7 * 86400))
        );
        assert_eq!(config.delivery.max_age, Duration::from_secs(2 * 86400));

        let found = problems(&format!("{MINIMAL}[poller]\npoll_interval = \"1m\"\nshort_window = \"30s\"\nstart_from = \"91d\"\n"));
        assert!(problem_at(&found, "poller.short_window")
            .message
            .contains("poll_interval"));
        assert!(problem_at(&found, "poller.start_from")
            .message
            .contains("90d"));
    }

    #[test]
    fn allow_entries_need_a_field() {
        let text = format!(
            "{MINIMAL}[[rules.allow]]\ncomment = \"nothing else\"\n[[rules.allow]]\nevent = \"Tag*\"\n[[rules.allow]]\nprincipal = \"arn:aws:sts::123456789012:assumed-role/ci/session-1\"\naccount = \"12345\"\nevnt = \"x\"\n"
        );
        let found = problems(&text);
        assert!(problem_at(&found, "rules.allow[0]")
            .message
            .contains("at least one"));
        assert!(
            !found.iter().any(|p| p.path.starts_with("rules.allow[1]")),
            "{found:#?}"
        );
        assert!(problem_at(&found, "rules.allow[2].principal")
            .message
            .contains("arn:aws:iam::123456789012:role/ci"));
        problem_at(&found, "rules.allow[2].account");
        assert!(problem_at(&found, "rules.allow[2].evnt")
            .message
            .contains("`rules.allow[2].event`"));
    }

    #[test]
    fn deploy_section_reads_every_flag_counterpart() {
        let config = load_str(
            &format!(
                "{MINIMAL}[deploy]\nemails = [\"a@example.com\", \"b@example.com\"]\nbucket = \"my-trail-logs\"\nlog_retention_days = 30\nalarm_period = 60\nalarm_threshold = 4\ncis_filter = true\ntampering_alarm = false\ndaemon_queue = false\n"
            ),
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.deploy,
            DeployConfig {
                emails: vec!["a@example.com".to_owned(), "b@example.com".to_owned()],
                bucket: Some("my-trail-logs".to_owned()),
                log_retention_days: Some(30),
                alarm_period_seconds: Some(60),
                alarm_threshold: Some(4),
                cis_filter: Some(true),
                tampering_alarm: Some(false),
                daemon_queue: Some(false),
            }
        );
        // Left out: nothing is set, so the stack keeps (or the template gives) its values.
        assert_eq!(
            load_str(MINIMAL, &[]).unwrap().deploy,
            DeployConfig::default()
        );
        // "" is a choice of its own: the stack creates its bucket.
        let created = load_str(&format!("{MINIMAL}[deploy]\nbucket = \"\"\n"), &[]).unwrap();
        assert_eq!(created.deploy.bucket.as_deref(), Some(""));
    }

    #[test]
    fn deploy_problems_are_all_reported_with_their_paths() {
        let text = format!(
            "{MINIMAL}[deploy]\nemails = [\"ok@example.com\", \"admin\", \"a@b\"]\nbucket = \"Trail_Logs\"\nlog_retention_days = 100\nalarm_period = 90\nalarm_threshold = 0\ncis_filter = \"maybe\"\nalarm_treshold = 2\n"
        );
        let found = problems(&text);
        assert!(
            !found.iter().any(|p| p.path == "deploy.emails[0]"),
            "{found:#?}"
        );
        assert!(problem_at(&found, "deploy.emails[1]")
            .message
            .contains("no @"));
        assert!(problem_at(&found, "deploy.emails[2]")
            .message
            .contains("example.com"));
        problem_at(&found, "deploy.bucket");
        assert!(problem_at(&found, "deploy.log_retention_days")
            .message
            .contains("365"));
        let period = &problem_at(&found, "deploy.alarm_period").message;
        assert!(
            period.contains("got 90") && period.contains("3600"),
            "{period}"
        );
        problem_at(&found, "deploy.alarm_threshold");
        problem_at(&found, "deploy.cis_filter");
        assert_eq!(
            problem_at(&found, "deploy.alarm_treshold").message,
            "unknown key; did you mean `deploy.alarm_threshold`?"
        );
        assert_eq!(found.len(), 8, "{found:#?}");
    }

    #[test]
    fn deploy_numbers_out_of_range_and_too_many_addresses() {
        let emails: Vec<String> = (0..4).map(|i| format!("\"a{i}@example.com\"")).collect();
        let found = problems(&format!(
            "{MINIMAL}[deploy]\nemails = [{}]\nalarm_threshold = -1\nlog_retention_days = -30\nalarm_period = 4294967356\n",
            emails.join(", ")
        ));
        assert!(problem_at(&found, "deploy.emails")
            .message
            .contains("at most 3"));
        assert!(problem_at(&found, "deploy.alarm_threshold")
            .message
            .contains("got -1"));
        problem_at(&found, "deploy.log_retention_days");
        problem_at(&found, "deploy.alarm_period");
        assert_eq!(found.len(), 4, "{found:#?}");
    }

    #[test]
    fn deploy_settings_come_from_the_environment_too() {
        let config = load_str(
            MINIMAL,
            &[
                ("IAMWATCHD__DEPLOY__EMAILS", "a@example.com, b@example.com"),
                ("IAMWATCHD__DEPLOY__ALARM_THRESHOLD", "5"),
                ("IAMWATCHD__DEPLOY__CIS_FILTER", "true"),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.deploy.emails, ["a@example.com", "b@example.com"]);
        assert_eq!(config.deploy.alarm_threshold, Some(5));
        assert_eq!(config.deploy.cis_filter, Some(true));
    }

    #[test]
    fn deploy_needs_no_notifier_but_the_daemon_does() {
        let text = "[aws]\nstack_name = \"watch\"\n[deploy]\nemails = [\"a@example.com\"]\n";
        let settings = DeploySettings::from_toml(text, Path::new("t.toml"), env(&[]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings.aws.stack_name, "watch");
        assert_eq!(settings.deploy.emails, ["a@example.com"]);
        problem_at(&problems(text), "smtp, sns");
    }

    #[test]
    fn deploy_settings_check_aws_and_deploy_and_typos_anywhere() {
        // An [smtp] section whose password file lives on the daemon's host only, a typo in
        // [poller], and mistakes in the two sections deploy reads.
        let text = "[aws]\nregion = \"eu-west-1\"\n[deploy]\nalarm_period = 7\n[poller]\npoll_intervall = \"5s\"\n[smtp]\nhost = \"mail\"\nusername = \"u\"\npassword_file = \"/nonexistent/pw\"\nfrom = \"a@b.example\"\nto = [\"x@y.example\"]\n";
        let found = match DeploySettings::from_toml(text, Path::new("t.toml"), env(&[])) {
            Err(e) => e.problems().to_vec(),
            Ok(s) => panic!("accepted: {s:?}"),
        };
        let paths: Vec<&str> = found.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            ["aws.region", "deploy.alarm_period", "poller.poll_intervall"],
            "{found:#?}"
        );
        // The same file for the daemon: the password file is a problem too.
        problem_at(&problems(text), "smtp.password_file");

        let allowed = DeploySettings::from_toml(
            "[aws]\nregion = \"eu-west-1\"\nallow_non_us_east_1 = true\n",
            Path::new("t.toml"),
            env(&[]),
        )
        .unwrap();
        assert!(allowed.aws.allow_non_us_east_1);
        assert_eq!(allowed.warnings[0].path, "aws.region");
    }

    #[test]
    fn bucket_names() {
        for good in ["abc", "my-trail.logs-2", &"a".repeat(63)] {
            assert!(check_bucket_name(good).is_ok(), "{good}");
        }
        for bad in ["ab", "-abc", "abc-", "ABC", "a_b_c", &"a".repeat(64)] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_notifier_is_required() {
        let found = problems("[log]\nformat = \"json\"\n");
        let message = &problem_at(&found, "smtp, sns").message;
        assert!(message.contains("[smtp]") && message.contains("[sns]"));
    }

    #[test]
    fn sns_topic_arn_shape_and_region() {
        let found = problems("[sns]\ntopic_arn = \"arn:aws:sqs:us-east-1:123456789012:q\"\n");
        problem_at(&found, "sns.topic_arn");
        let found = problems(
            "[sns]\ntopic_arn = \"arn:aws:sns:us-east-1:123456789012:t\"\nregion = \"eu-west-1\"\n",
        );
        problem_at(&found, "sns.region");
        let config = load_str(
            "[sns]\ntopic_arn = \"arn:aws:sns:eu-west-1:123456789012:t.fifo\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(config.sns.unwrap().region, "eu-west-1");
    }

    #[test]
    fn plaintext_smtp_needs_consent_and_gets_port_25() {
        let base = format!("{MINIMAL}[smtp]\nhost = \"localhost\"\ntls = \"none\"\nfrom = \"a@b.example\"\nto = [\"x@y.example\"]\n");
        problem_at(&problems(&base), "smtp.tls");
        let config = load_str(&format!("{base}allow_plaintext = true\n"), &[]).unwrap();
        assert_eq!(config.smtp.unwrap().port, 25);
    }

    #[test]
    fn public_metrics_listener_is_a_warning_not_an_error() {
        let config = load_str(
            &format!("{MINIMAL}[metrics]\nlisten = \"0.0.0.0:9847\"\n"),
            &[],
        )
        .unwrap();
        assert_eq!(config.metrics.listen, Some("0.0.0.0:9847".parse().unwrap()));
        assert_eq!(config.warnings.len(), 1);
        assert!(config.warnings[0]
            .message
            .contains(defaults::METRICS_LISTEN_SUGGESTION));
    }

    #[test]
    fn check_offline_reads_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "iamwatchd.toml", MINIMAL);
        check_offline(&path).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn field_probe_lists_serde_fields() {
        assert_eq!(fields_of::<RawStore>(), ["state_directory", "retention"]);
        assert!(fields_of::<RawConfig>().contains(&"smtp"));
    }

    #[test]
    fn levenshtein_counts_edits() {
        assert_eq!(levenshtein("poll_intervall", "poll_interval"), 1);
        assert_eq!(levenshtein("retension", "retention"), 1);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }

    #[test]
    fn mailbox_shapes() {
        assert!(check_mailbox("a@example.com").is_ok());
        assert!(check_mailbox("Security Team <sec@example.com>").is_ok());
        assert!(check_mailbox("a@b.example\r\nBcc: evil@x").is_err());
        assert!(check_mailbox("no-at-sign").is_err());
        assert!(check_mailbox("a@@b").is_err());
    }

    #[test]
    fn the_alarm_path_needs_its_log_group() {
        let text =
            format!("{MINIMAL}[alarm]\nqueue_url = \"https://sqs.us-east-1.amazonaws.com/1/q\"\n");
        let found = problems(&text);
        assert!(problem_at(&found, "alarm.log_group")
            .message
            .contains("LogGroupName"));
        let bad = format!("{text}log_group = \"no spaces allowed\"\nlookback_margin = \"2d\"\n");
        let found = problems(&bad);
        problem_at(&found, "alarm.log_group");
        problem_at(&found, "alarm.lookback_margin");
        let good = format!("{text}log_group = \"iamwatchd-LogGroup-1\"\n");
        let config = load_str(&good, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.alarm.log_group.as_deref(),
            Some("iamwatchd-LogGroup-1")
        );
        assert_eq!(config.alarm.lookback_margin, defaults::LOOKBACK_MARGIN);
        assert!(config.alarm.health_messages);
    }
}
