//! The daemon's configuration: a TOML file layered with `IAMWATCHD__*` environment variables,
//! checked in two stages so that an operator sees every mistake in one run.
//!
//! 1. **Raw parse** ([`layer`]): TOML syntax (a syntax error names file, line and column), the
//!    environment layered on top, every key checked against the raw sections
//!    ([`raw`], each component's own), one field at a time so one wrong type does not hide the
//!    next, an unknown key reported with the key probably meant.
//! 2. **Validation** ([`validate`]): pure checks of ranges, shapes ([`shapes`]) and
//!    combinations, no network; each component validates its own section. Every problem is
//!    collected with its key path (`smtp.port: must be 1-65535, got 0`) ([`problem`]);
//!    warnings are returned apart from errors.
//!
//! The result is the typed [`Config`] the rest of the daemon uses. Defaults live in
//! [`defaults`], and only there; secrets (never in the file) in [`secret`]; how single values
//! are read in [`values`].
//!
//! `iamwatchd deploy` reads the same file with its flags laid over it ([`deploy`]): both stages
//! run over the whole file, but validation covers only `[aws]` and `[deploy]`. The example
//! `config/iamwatchd.toml` documents every key and is loaded by a test here.

pub mod defaults;
pub mod deploy;
pub(crate) mod fields;
pub(crate) mod keys;
mod layer;
pub mod problem;
mod raw;
pub mod secret;
pub(crate) mod shapes;
pub(crate) mod validate;
pub(crate) mod values;

use std::path::Path;

use crate::notify::config::{NotifierConfig, NotifierKind};
use crate::notify::smtp::SmtpConfig;
use crate::notify::sns::SnsConfig;
use crate::pipeline::delivery::DeliveryConfig;
use crate::rules::Ruleset;
use crate::source::alarm::AlarmConfig;
use crate::source::cloudtrail::PollerConfig;
use crate::store::StoreConfig;
use keys::fields_of;
use raw::RawConfig;

pub use deploy::{DeployConfig, DeployFlags, DeployTarget, RawDeploy};
pub use problem::{ConfigErrors, Problem};
pub use raw::LogFormat;
pub use secret::Secret;
pub use validate::{AwsConfig, LogConfig, MetricsConfig};

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
    pub rules: Ruleset,
    /// Durable state.
    pub store: StoreConfig,
    /// The notifiers, each with its name and route: `[smtp]` and `[sns]` (named `smtp` and
    /// `sns`), then each `[notifiers.NAME]`.
    pub notifiers: Vec<NotifierConfig>,
    /// The alarm path.
    pub alarm: AlarmConfig,
    /// Logging.
    pub log: LogConfig,
    /// The optional metrics and health listener.
    pub metrics: MetricsConfig,
    /// Notification retries.
    pub delivery: DeliveryConfig,
    /// The analysis of policy changes.
    pub analysis: crate::analysis::config::AnalysisConfig,
    /// The accounts watched besides the daemon's own (`[accounts]`).
    pub accounts: crate::accounts::config::AccountsConfig,
    /// Things that work but deserve a second look (e.g. a metrics listener on a public address).
    pub warnings: Vec<Problem>,
}

/// The configuration file's text, or an error naming it.
pub(crate) fn read_file(path: &Path) -> Result<String, ConfigErrors> {
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
    pub(crate) fn from_toml<I>(text: &str, path: &Path, env: I) -> Result<Config, ConfigErrors>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let (raw, parse_problems) = RawConfig::parse(text, path, env)?;
        settle_problems(parse_problems, raw.validate(), |c| c.warnings.clone()).map_err(
            |(problems, warnings)| ConfigErrors::Invalid {
                path: path.to_owned(),
                problems,
                warnings,
            },
        )
    }
}

impl Config {
    /// The notifier sections, for the one factory ([`crate::notify::registry`]).
    pub fn notifiers(&self) -> crate::notify::registry::Sections<'_> {
        crate::notify::registry::Sections {
            notifiers: &self.notifiers,
            max_attempts: self.aws.max_attempts,
        }
    }

    /// Each notifier's digest settings, by name.
    pub fn digests(
        &self,
    ) -> std::collections::BTreeMap<String, crate::notify::digest::DigestConfig> {
        self.notifiers
            .iter()
            .map(|n| (n.name.clone(), n.digest))
            .collect()
    }

    /// The notifier called `name`.
    pub fn notifier(&self, name: &str) -> Option<&NotifierConfig> {
        self.notifiers.iter().find(|n| n.name == name)
    }

    /// The SMTP settings of the notifier called `name`, if it is one.
    pub fn smtp(&self, name: &str) -> Option<&SmtpConfig> {
        match &self.notifier(name)?.kind {
            NotifierKind::Smtp(smtp) => Some(smtp),
            _ => None,
        }
    }

    /// The SNS settings of the notifier called `name`, if it is one.
    pub fn sns(&self, name: &str) -> Option<&SnsConfig> {
        match &self.notifier(name)?.kind {
            NotifierKind::Sns(sns) => Some(sns),
            _ => None,
        }
    }
}

/// Joins the problems of both stages into one answer: the parse problems first, then those
/// of validation that a parse problem does not already explain, grouped by section.
pub(crate) fn settle_problems<T>(
    mut parse_problems: Vec<Problem>,
    validated: Result<T, (Vec<Problem>, Vec<Problem>)>,
    warnings_of: impl FnOnce(&T) -> Vec<Problem>,
) -> Result<T, (Vec<Problem>, Vec<Problem>)> {
    sort_by_section(&mut parse_problems);
    match validated {
        Ok(value) if parse_problems.is_empty() => Ok(value),
        Ok(value) => {
            let warnings = warnings_of(&value);
            Err((parse_problems, warnings))
        }
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
            Err((all, warnings))
        }
    }
}

/// Loads and validates the configuration at `path` with the process environment, without
/// touching the network: what `iamwatchd check --offline` (and systemd's `ExecStartPre`) runs.
pub fn check_offline(path: &Path) -> Result<Config, ConfigErrors> {
    Config::load(path, process_env())
}

/// The process environment, skipping entries that are not UTF-8 (none of ours can be).
pub(crate) fn process_env() -> impl Iterator<Item = (String, String)> {
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

/// What the configuration's tests (and the sections' tests elsewhere) build on.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::{Path, PathBuf};

    use super::{Config, ConfigErrors, Problem};

    /// A minimal valid file: only a notifier is required.
    pub(crate) const MINIMAL: &str =
        "[sns]\ntopic_arn = \"arn:aws:sns:us-east-1:123456789012:t\"\n";

    pub(crate) fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    pub(crate) fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    pub(crate) fn load_str(text: &str, env_pairs: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
        Config::from_toml(text, Path::new("test.toml"), env(env_pairs))
    }

    pub(crate) fn problems(text: &str) -> Vec<Problem> {
        match load_str(text, &[]) {
            Err(ConfigErrors::Invalid { problems, .. }) => problems,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    pub(crate) fn problem_at<'a>(problems: &'a [Problem], path: &str) -> &'a Problem {
        problems
            .iter()
            .find(|p| p.path == path)
            .unwrap_or_else(|| panic!("no problem at {path} in {problems:#?}"))
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::testing::*;
    use super::*;
    use crate::config::keys::schema;
    use crate::notify::smtp::PASSWORD;
    use crate::rules::FailedCalls;
    use crate::source::cloudtrail::StartFrom;

    const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/iamwatchd.toml");

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
        let smtp = config
            .smtp("smtp")
            .expect("example configures smtp")
            .clone();
        let auth = smtp.auth.expect("username and env password");
        assert_eq!(auth.password.expose(), "s3cret");
        assert_eq!(smtp.to, ["security@example.com"]);
        assert_eq!(config.sns("sns").unwrap().region, "us-east-1");
        assert_eq!(config.rules.allow.len(), 1);
        assert_eq!(config.deploy.emails, ["security@example.com"]);
        assert_eq!(
            config.deploy.bucket, None,
            "the example leaves the bucket out"
        );
        assert_eq!(
            config.deploy.log_retention_days,
            Some(crate::stack::names::DEFAULT_LOG_RETENTION_DAYS)
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
        assert!(text.contains(&PASSWORD.env_var()));
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
                        || l.starts_with(&format!("[{section}.{field}]"))
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
        assert!(config.smtp("smtp").is_none());
    }

    /// The container image's `ENV IAMWATCHD__LOG__FORMAT=json` (see the Dockerfile) wins over
    /// the file's `[log] format = "human"`, and `human` turns it back.
    #[test]
    fn the_containers_log_format_variable_overrides_the_file() {
        let dockerfile = include_str!("../../Dockerfile");
        assert!(dockerfile.contains("ENV IAMWATCHD__LOG__FORMAT=json"));
        let text = format!("{MINIMAL}[log]\nformat = \"human\"\n");
        let json = load_str(&text, &[("IAMWATCHD__LOG__FORMAT", "json")]).unwrap();
        assert_eq!(json.log.format, LogFormat::Json);
        let human = load_str(MINIMAL, &[("IAMWATCHD__LOG__FORMAT", "human")]).unwrap();
        assert_eq!(human.log.format, LogFormat::Human);
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
    fn missing_file_says_what_to_do() {
        let e = Config::load(Path::new("/nonexistent/iamwatchd.toml"), env(&[])).unwrap_err();
        assert!(matches!(e, ConfigErrors::Read { .. }));
        assert!(e.to_string().contains("--config"), "{e}");
    }

    #[test]
    fn check_offline_reads_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "iamwatchd.toml", MINIMAL);
        check_offline(&path).unwrap_or_else(|e| panic!("{e}"));
    }
}
