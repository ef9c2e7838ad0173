//! Stage 2 of loading: pure checks of ranges, shapes and combinations, no network. Each
//! component validates its own section (`RawSmtp::validate`, `RawPoller::validate`, …); this
//! file validates `[aws]`, `[log]` and `[metrics]`, the checks that span sections, and puts
//! the typed [`Config`] together. Every problem is collected with its key path; warnings
//! (things that work but deserve a second look) are returned apart from errors.

use std::net::SocketAddr;

use super::deploy::DEPLOY_FILE_NAMES;
use super::problem::{Names, Problem, Problems};
use super::raw::{LogFormat, RawAws, RawConfig, RawLog, RawMetrics};
use super::shapes::{check_region, check_stack_name};
use super::{defaults, Config};
use crate::notify::config::validate_all;
use crate::notify::digest::DigestConfig;

/// AWS account and region settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsConfig {
    /// Region polled for IAM events and where the stack lives (another than us-east-1 only
    /// with `aws.allow_non_us_east_1`, which validation checks).
    pub region: String,
    /// Regions whose CloudTrail / Logs / CloudWatch / SNS tampering events are watched.
    pub tampering_regions: Vec<String>,
    /// Name of the CloudFormation stack.
    pub stack_name: String,
    /// Attempts per AWS call, the first one included.
    pub max_attempts: u32,
    /// Where IAM Identity Center records its events (`identity_center.region`, default
    /// `region`).
    pub identity_center_region: String,
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

/// What a region other than us-east-1 would cost, and how to consent to it, depends on the
/// command that reads `[aws]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// `run` and `check`: the poller would see no IAM change.
    Daemon,
    /// `deploy`: the stack's trail and alarm would see no IAM change.
    Deploy,
}

impl RawConfig {
    /// Stage 2: ranges, shapes and combinations. No network; the only I/O is reading secret
    /// files (and refusing them when others can read them). Returns every error at once, with
    /// the warnings found alongside.
    pub(crate) fn validate(&self) -> Result<Config, (Vec<Problem>, Vec<Problem>)> {
        let mut problems = Problems::default();
        let aws = validate_aws(
            &self.aws,
            &Names::file("aws"),
            Purpose::Daemon,
            &mut problems,
        );
        let mut aws = aws;
        if let Some(region) = &self.identity_center.region {
            if let Err(e) = check_region(region) {
                problems.error("identity_center.region", e);
            }
            aws.identity_center_region = region.clone();
        }
        let deploy = self.deploy.validate(&DEPLOY_FILE_NAMES, &mut problems);
        let poller = self.poller.validate(&mut problems);
        self.rules.check("rules", &mut problems);
        let store = self.store.validate(poller.sweep_horizon, &mut problems);
        let digest = self
            .digest
            .validate("digest", &DigestConfig::default(), &mut problems);
        let notifiers = validate_all(
            &digest,
            self.smtp.as_ref(),
            self.sns.as_ref(),
            &self.notifiers,
            self.credentials_directory.as_deref(),
            &mut problems,
        );
        if self.smtp.is_none() && self.sns.is_none() && self.notifiers.is_empty() {
            problems.error(
                "notifiers",
                "no notifier is configured, so no one would hear of a change: add a \
                 [notifiers.NAME] table (type smtp, sns, slack, teams, pagerduty or webhook), \
                 or an [smtp] or [sns] section",
            );
        }
        let alarm = self.alarm.validate(&mut problems);
        let log = validate_log(&self.log, &mut problems);
        let metrics = validate_metrics(&self.metrics, &mut problems);
        let delivery = self.delivery.validate(&mut problems);
        let analysis = self.analysis.validate(&mut problems);
        let accounts = self.accounts.validate(poller.sweep_interval, &mut problems);

        if !problems.errors.is_empty() {
            return Err((problems.errors, problems.warnings));
        }
        let mut rules = self.rules.clone();
        // What the configuration knows of our monitoring; the daemon adds the stack's outputs.
        rules.ours = crate::rules::Ours {
            stack_name: aws.stack_name.clone(),
            log_group: alarm.log_group.clone(),
            queue_url: alarm.queue_url.clone(),
            ..crate::rules::Ours::default()
        };
        Ok(Config {
            aws,
            deploy,
            poller,
            rules,
            store,
            notifiers,
            alarm,
            log,
            metrics,
            delivery,
            analysis,
            accounts,
            warnings: problems.warnings,
        })
    }
}

/// Validates `[aws]`, naming each key as `names` says (a flag of `deploy`, or the file's key).
pub(crate) fn validate_aws(
    raw: &RawAws,
    names: &Names<'_>,
    purpose: Purpose,
    problems: &mut Problems,
) -> AwsConfig {
    let region_key = names.key("region");
    if let Err(e) = check_region(&raw.region) {
        problems.error(&region_key, e);
    } else if raw.region != crate::aws::IAM_EVENTS_REGION {
        let (what, consent) = match purpose {
            Purpose::Daemon => (
                format!("polling {}", raw.region),
                "set aws.allow_non_us_east_1 = true if you really mean it (e.g. an isolated \
                 partition)",
            ),
            Purpose::Deploy => (
                format!("a trail and alarm deployed in {}", raw.region),
                "pass --allow-region (or set aws.allow_non_us_east_1 = true) if you really \
                 mean it (for example to watch tampering there)",
            ),
        };
        let why = format!(
            "since November 2021 CloudTrail records IAM events in {} only, so {what} would \
             never see an IAM change",
            crate::aws::IAM_EVENTS_REGION,
        );
        if raw.allow_non_us_east_1 {
            problems.warn(&region_key, why);
        } else {
            problems.error(
                &region_key,
                format!(
                    "must be {}: {why}; {consent}",
                    crate::aws::IAM_EVENTS_REGION
                ),
            );
        }
    }
    let tampering_regions = match &raw.tampering_regions {
        None => vec![raw.region.clone()],
        Some(regions) => {
            if regions.is_empty() {
                problems.error(
                    names.key("tampering_regions"),
                    "must name at least one region (tampering with the trail, filter, alarm or \
                     topic happens in the stack's region); remove the key to use aws.region",
                );
            }
            for (i, region) in regions.iter().enumerate() {
                if let Err(e) = check_region(region) {
                    problems.error(names.item("tampering_regions", i), e);
                }
            }
            regions.clone()
        }
    };
    if let Err(e) = check_stack_name(&raw.stack_name) {
        problems.error(names.key("stack_name"), e);
    } else if purpose == Purpose::Deploy {
        // The names of the stack's resources, derived from its name, must be valid too, or
        // the stack fails inside CloudFormation after it has started.
        if let Some(e) = crate::stack::names::stack_name_problem(&raw.stack_name) {
            problems.error(names.key("stack_name"), e);
        }
    }
    let max_attempts = match u32::try_from(raw.max_attempts) {
        Ok(n) if (1..=defaults::MAX_ATTEMPTS_LIMIT).contains(&n) => n,
        _ => {
            problems.error(
                names.key("max_attempts"),
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
        tampering_regions,
        stack_name: raw.stack_name.clone(),
        max_attempts,
        identity_center_region: raw.region.clone(),
    }
}

fn validate_log(raw: &RawLog, problems: &mut Problems) -> LogConfig {
    if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&raw.level) {
        problems.error(
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

fn validate_metrics(raw: &RawMetrics, problems: &mut Problems) -> MetricsConfig {
    let listen = raw
        .listen
        .as_ref()
        .and_then(|text| match text.parse::<SocketAddr>() {
            Ok(addr) => {
                if !addr.ip().is_loopback() {
                    problems.warn(
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
                problems.error(
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

#[cfg(test)]
mod tests {
    use crate::config::defaults;
    use crate::config::testing::*;

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
    fn a_notifier_is_required() {
        let found = problems("[log]\nformat = \"json\"\n");
        let message = &problem_at(&found, "notifiers").message;
        assert!(message.contains("[notifiers.NAME]") && message.contains("slack"));
    }

    #[test]
    fn identity_center_is_read_in_aws_region_unless_told_otherwise() {
        let config = load_str(MINIMAL, &[]).unwrap();
        assert_eq!(config.aws.identity_center_region, "us-east-1");
        let told = load_str(
            &format!("{MINIMAL}[identity_center]\nregion = \"eu-west-1\"\n"),
            &[],
        )
        .unwrap();
        assert_eq!(told.aws.identity_center_region, "eu-west-1");
        let wrong = load_str(
            &format!("{MINIMAL}[identity_center]\nregion = \"Frankfurt\"\n"),
            &[],
        );
        let errors = wrong.unwrap_err().to_string();
        assert!(errors.contains("identity_center.region"), "{errors}");
    }
}
