//! The configuration as written: the file's sections with the environment layered on top,
//! every field typed but not yet checked for range or consistency. Each component's section
//! is its own raw struct, kept beside the component (`notify::smtp`, `source::cloudtrail`, …);
//! this aggregate collects them, as vector's configuration collects each sink's.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::defaults;
use super::deploy::RawDeploy;
use super::values;
use crate::notify::config::RawInstance;
use crate::notify::digest::RawDigest;
use crate::notify::smtp::RawSmtp;
use crate::notify::sns::RawSns;
use crate::pipeline::delivery::RawDelivery;
use crate::rules::Ruleset;
use crate::source::alarm::RawAlarm;
use crate::source::cloudtrail::RawPoller;
use crate::store::RawStore;

/// The whole file, section by section.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawConfig {
    /// AWS account and region settings.
    pub(crate) aws: RawAws,
    /// What `iamwatchd deploy` puts into the stack.
    pub(crate) deploy: RawDeploy,
    /// The LookupEvents poller.
    pub(crate) poller: RawPoller,
    /// What is reported and what is not (raw and validated have one shape).
    pub(crate) rules: Ruleset,
    /// Durable state.
    pub(crate) store: RawStore,
    /// The analysis of policy changes.
    pub(crate) analysis: crate::analysis::config::RawAnalysis,
    /// SMTP notifier; absent = not used.
    pub(crate) smtp: Option<RawSmtp>,
    /// SNS notifier; absent = not used.
    pub(crate) sns: Option<RawSns>,
    /// Alarm path.
    pub(crate) alarm: RawAlarm,
    /// Logging.
    pub(crate) log: RawLog,
    /// Metrics and health listener.
    pub(crate) metrics: RawMetrics,
    /// Notification retries.
    pub(crate) delivery: RawDelivery,
    /// Burst digests, for every notifier (each may override).
    pub(crate) digest: RawDigest,
    /// `[notifiers.NAME]`: any number of notifiers of any type.
    pub(crate) notifiers: BTreeMap<String, RawInstance>,
    /// systemd's `$CREDENTIALS_DIRECTORY`, where `LoadCredential=` puts secrets (from the
    /// environment, not the file).
    #[serde(skip)]
    pub(crate) credentials_directory: Option<PathBuf>,
    /// Where IAM Identity Center records its events.
    pub(crate) identity_center: RawIdentityCenter,
    /// The accounts watched besides the daemon's own.
    pub(crate) accounts: crate::accounts::config::RawAccounts,
}

/// `[identity_center]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawIdentityCenter {
    /// The Identity Center instance's region; default: `aws.region`.
    pub(crate) region: Option<String>,
}

/// `[aws]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawAws {
    /// Region polled for IAM events and where the stack lives.
    pub(crate) region: String,
    /// Permits a region other than us-east-1 (IAM events would not be seen there).
    pub(crate) allow_non_us_east_1: bool,
    /// Regions whose tampering events are watched; default: `region`.
    pub(crate) tampering_regions: Option<Vec<String>>,
    /// CloudFormation stack name.
    pub(crate) stack_name: String,
    /// Attempts per AWS call.
    pub(crate) max_attempts: i64,
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

/// `[log]`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawLog {
    /// `"human"` or `"json"`.
    pub(crate) format: LogFormat,
    /// `EnvFilter` directives.
    pub(crate) level: String,
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
pub(crate) struct RawMetrics {
    /// Listener address; absent = disabled.
    pub(crate) listen: Option<String>,
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

impl TryFrom<String> for LogFormat {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        values::choose(
            &text,
            &[("human", LogFormat::Human), ("json", LogFormat::Json)],
        )
    }
}
