//! `iamwatchd deploy`'s settings: where the stack goes (`[aws]` region, consent to another
//! region, stack name) and its parameters (`[deploy]`), from the configuration file and the
//! command line through one validation.
//!
//! The flags fill the same raw sections the file does (as ripgrep's flags and config file fill
//! one `LowArgs`), a flag winning over the file; then one pass validates the result and reports
//! every problem at once, each named by the flag or the key it came from. A setting neither
//! gives is left unset: on an update the stack keeps its current value, on a create it takes
//! the template's default, so a file that does not mention a setting never undoes an earlier
//! change to it.
//!
//! The whole file is still parsed (a typo anywhere is still a typo), but only `[aws]` and
//! `[deploy]` are validated: the daemon's own rules, above all "at least one notifier", do not
//! apply here; the stack is usually deployed from a workstation, before the daemon's host (and
//! its secret files) exists.

use serde::Deserialize;

mod flags;

use super::problem::{Names, Problems};
use super::shapes::{check_bucket_name, check_kms_key_arn, email_address};
use super::values::join_numbers;
use crate::stack::names;

pub use flags::{DeployFlags, DeployTarget};

/// The stack settings of `[deploy]`, validated, each the counterpart of an `iamwatchd deploy`
/// flag. `None` (or an empty list) = not set: the stack keeps its current value (update) or
/// takes the template's default (create).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeployConfig {
    /// Addresses that receive the alarms (`--email`), at most three, each valid.
    pub emails: Vec<String>,
    /// Existing bucket for the trail (`--bucket`); `Some("")` = the stack creates its own.
    pub bucket: Option<String>,
    /// Existing KMS key's ARN (`--kms-key`), in the stack's region; `Some("")` = the stack
    /// creates its own.
    pub kms_key: Option<String>,
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
    /// An organization trail (`--organization`): the stack is in the organization's
    /// management account and its trail records every member account.
    pub organization: Option<bool>,
}

/// `[deploy]` as written (or as the flags give it): every key optional, numbers as written, so
/// a negative one is reported as such.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawDeploy {
    /// Alarm recipients.
    pub emails: Vec<String>,
    /// Existing trail bucket; `""` = the stack creates one.
    pub bucket: Option<String>,
    /// Existing KMS key's ARN; `""` = the stack creates one.
    pub kms_key: Option<String>,
    /// Log group retention in days.
    pub log_retention_days: Option<i64>,
    /// Alarm period in seconds.
    pub alarm_period: Option<i64>,
    /// Changes per period that set the alarm off.
    pub alarm_threshold: Option<i64>,
    /// The CIS 4.4 filter and alarm.
    pub cis_filter: Option<bool>,
    /// The tampering filter and alarm.
    pub tampering_alarm: Option<bool>,
    /// The daemon's SQS queue.
    pub daemon_queue: Option<bool>,
    /// An organization trail.
    pub organization: Option<bool>,
}

/// `[deploy]`'s keys named as the file's.
pub(crate) const DEPLOY_FILE_NAMES: Names<'static> = Names::file("deploy");

/// The flag of each `[deploy]` key.
const DEPLOY_FLAGS: [(&str, &str); 10] = [
    ("emails", "--email"),
    ("bucket", "--bucket"),
    ("kms_key", "--kms-key"),
    ("log_retention_days", "--log-retention-days"),
    ("alarm_period", "--alarm-period"),
    ("alarm_threshold", "--alarm-threshold"),
    ("cis_filter", "--cis-filter"),
    ("tampering_alarm", "--tampering-alarm"),
    ("daemon_queue", "--daemon-queue"),
    ("organization", "--organization"),
];

impl RawDeploy {
    /// The limits the template (and so CloudFormation) puts on each parameter, checked here so
    /// that the operator hears of them with the key's (or flag's) name before any change set
    /// exists.
    pub(crate) fn validate(&self, names: &Names<'_>, problems: &mut Problems) -> DeployConfig {
        if self.emails.len() > names::MAX_EMAILS {
            problems.error(
                names.key("emails"),
                format!(
                    "at most {} addresses (the stack subscribes each one separately); for more, \
                     subscribe a mailing list; got {}",
                    names::MAX_EMAILS,
                    self.emails.len()
                ),
            );
        }
        for (i, address) in self.emails.iter().enumerate() {
            if let Err(reason) = email_address(address, true) {
                problems.error(
                    names.item("emails", i),
                    format!(
                        "{address:?} is not a usable e-mail address ({reason}); each address \
                         receives the alarms and must confirm its subscription, so give \
                         addresses like \"security@example.com\""
                    ),
                );
            }
        }
        if let Some(bucket) = self.bucket.as_deref().filter(|b| !b.is_empty()) {
            if let Err(e) = check_bucket_name(bucket) {
                problems.error(names.key("bucket"), e);
            }
        }
        if let Some(key) = self.kms_key.as_deref().filter(|k| !k.is_empty()) {
            if let Err(e) = check_kms_key_arn(key) {
                problems.error(names.key("kms_key"), e);
            }
        }
        let log_retention_days = self.log_retention_days.and_then(|days| {
            let allowed = &names::LOG_RETENTION_DAYS_ALLOWED;
            let known = u32::try_from(days).ok().filter(|d| allowed.contains(d));
            if known.is_none() {
                problems.error(
                    names.key("log_retention_days"),
                    format!(
                        "must be a retention CloudWatch Logs offers, one of {}; got {days}",
                        join_numbers(allowed)
                    ),
                );
            }
            known
        });
        let alarm_period_seconds = self.alarm_period.and_then(|seconds| {
            let allowed = &names::ALARM_PERIOD_SECONDS_ALLOWED;
            let known = u32::try_from(seconds).ok().filter(|s| allowed.contains(s));
            if known.is_none() {
                problems.error(
                    names.key("alarm_period"),
                    format!(
                        "must be one of {} (seconds; CloudWatch takes 10, 30 or a multiple of \
                         60, and the template offers these); got {seconds}",
                        join_numbers(allowed)
                    ),
                );
            }
            known
        });
        let alarm_threshold = self.alarm_threshold.and_then(|count| {
            let valid = u32::try_from(count)
                .ok()
                .filter(|n| *n >= names::MIN_ALARM_THRESHOLD);
            if valid.is_none() {
                problems.error(
                    names.key("alarm_threshold"),
                    format!(
                        "must be {}-{} (changes within one period that set the alarm off; 0 \
                         would set it off in every period); got {count}",
                        names::MIN_ALARM_THRESHOLD,
                        u32::MAX
                    ),
                );
            }
            valid
        });
        DeployConfig {
            emails: self.emails.clone(),
            bucket: self.bucket.clone(),
            kms_key: self.kms_key.clone(),
            log_retention_days,
            alarm_period_seconds,
            alarm_threshold,
            cis_filter: self.cis_filter,
            tampering_alarm: self.tampering_alarm,
            daemon_queue: self.daemon_queue,
            organization: self.organization,
        }
    }

    /// Puts every setting `flags` gives over this one (any `--email` replaces the whole list,
    /// as it replaces the stack's addresses); returns the `(key, flag)` of each.
    pub(crate) fn overlay(&mut self, flags: RawDeploy) -> Vec<(&'static str, &'static str)> {
        let mut given = Vec::new();
        let mut take = |key: &'static str, set: bool| {
            if set {
                let flag = DEPLOY_FLAGS
                    .iter()
                    .find(|(k, _)| *k == key)
                    .expect("a flag");
                given.push(*flag);
            }
        };
        take("emails", !flags.emails.is_empty());
        take("bucket", flags.bucket.is_some());
        take("kms_key", flags.kms_key.is_some());
        take("log_retention_days", flags.log_retention_days.is_some());
        take("alarm_period", flags.alarm_period.is_some());
        take("alarm_threshold", flags.alarm_threshold.is_some());
        take("cis_filter", flags.cis_filter.is_some());
        take("tampering_alarm", flags.tampering_alarm.is_some());
        take("daemon_queue", flags.daemon_queue.is_some());
        take("organization", flags.organization.is_some());
        if !flags.emails.is_empty() {
            self.emails = flags.emails;
        }
        self.bucket = flags.bucket.or(self.bucket.take());
        self.kms_key = flags.kms_key.or(self.kms_key.take());
        self.log_retention_days = flags.log_retention_days.or(self.log_retention_days);
        self.alarm_period = flags.alarm_period.or(self.alarm_period);
        self.alarm_threshold = flags.alarm_threshold.or(self.alarm_threshold);
        self.cis_filter = flags.cis_filter.or(self.cis_filter);
        self.tampering_alarm = flags.tampering_alarm.or(self.tampering_alarm);
        self.daemon_queue = flags.daemon_queue.or(self.daemon_queue);
        self.organization = flags.organization.or(self.organization);
        given
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::*;

    #[test]
    fn deploy_section_reads_every_flag_counterpart() {
        let config = load_str(
            &format!(
                "{MINIMAL}[deploy]\nemails = [\"a@example.com\", \"b@example.com\"]\nbucket = \"my-trail-logs\"\nlog_retention_days = 30\nalarm_period = 60\nalarm_threshold = 4\ncis_filter = true\ntampering_alarm = false\ndaemon_queue = false\norganization = true\n"
            ),
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.deploy,
            DeployConfig {
                emails: vec!["a@example.com".to_owned(), "b@example.com".to_owned()],
                bucket: Some("my-trail-logs".to_owned()),
                kms_key: None,
                log_retention_days: Some(30),
                alarm_period_seconds: Some(60),
                alarm_threshold: Some(4),
                cis_filter: Some(true),
                tampering_alarm: Some(false),
                daemon_queue: Some(false),
                organization: Some(true),
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
}
