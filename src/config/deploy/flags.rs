//! The command line's part: `deploy`'s flags, laid over the file's `[aws]` and `[deploy]` and
//! validated with them in one pass.

use std::path::Path;

use super::super::problem::{ConfigErrors, Names, Problem, Problems};
use super::super::raw::RawConfig;
use super::super::validate::{validate_aws, Purpose};
use super::super::{process_env, read_file, settle_problems};
use super::DeployConfig;
use super::RawDeploy;

/// What the command line said. Every setting is `None` (or empty) when its flag was not given,
/// so that the configuration file can fill it in.
#[derive(Debug, Clone, Default)]
pub struct DeployFlags {
    /// `--stack-name`.
    pub stack_name: Option<String>,
    /// `--region`.
    pub region: Option<String>,
    /// `--allow-region`; it can only add consent, never take the file's away.
    pub allow_region: bool,
    /// The stack's settings (e-mails, bucket, retention, alarm, optional parts).
    pub settings: RawDeploy,
}

/// Where the stack goes and what it holds, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployTarget {
    /// The CloudFormation stack's name.
    pub stack_name: String,
    /// Its region (a region other than us-east-1 only with the operator's consent, which
    /// [`DeployFlags::resolve`] has checked).
    pub region: String,
    /// The stack's parameters, `None` where nothing set them.
    pub settings: DeployConfig,
    /// The file's `[accounts]` (the member role's name and external ID, for
    /// `deploy --member-roles`); the defaults without a file.
    pub accounts: crate::accounts::config::AccountsConfig,
    /// Things that work but deserve a second look.
    pub warnings: Vec<Problem>,
}

impl DeployFlags {
    /// The target: the flags over the configuration file at `file` (with the process
    /// environment layered on it, as for the daemon), when one is given. No file is read
    /// without one, so the same command does the same thing on every machine.
    pub fn resolve(self, file: Option<&Path>) -> Result<DeployTarget, ConfigErrors> {
        match file {
            Some(path) => self.resolve_text(Some((&read_file(path)?, path)), process_env()),
            None => self.resolve_text(None, std::iter::empty()),
        }
    }

    /// [`DeployFlags::resolve`] with the file's text given (`path` is used in messages).
    pub(crate) fn resolve_text<I>(
        self,
        file: Option<(&str, &Path)>,
        env: I,
    ) -> Result<DeployTarget, ConfigErrors>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let (mut raw, parse_problems) = match file {
            Some((text, path)) => RawConfig::parse(text, path, env)?,
            None => (RawConfig::default(), Vec::new()),
        };
        let mut aws_flags = Vec::new();
        if let Some(stack_name) = self.stack_name {
            raw.aws.stack_name = stack_name;
            aws_flags.push(("stack_name", "--stack-name"));
        }
        if let Some(region) = self.region {
            raw.aws.region = region;
            aws_flags.push(("region", "--region"));
        }
        raw.aws.allow_non_us_east_1 |= self.allow_region;
        let deploy_flags = raw.deploy.overlay(self.settings);

        let mut problems = Problems::default();
        let aws_names = Names {
            section: "aws",
            flags: &aws_flags,
        };
        let aws = validate_aws(&raw.aws, &aws_names, Purpose::Deploy, &mut problems);
        let deploy_names = Names {
            section: "deploy",
            flags: &deploy_flags,
        };
        let settings = raw.deploy.validate(&deploy_names, &mut problems);
        let accounts = raw
            .accounts
            .validate(raw.poller.sweep_interval(), &mut problems);
        if let Some(key) = settings
            .kms_key
            .as_deref()
            .and_then(crate::aws::arn::Arn::parse)
        {
            if key.region != aws.region {
                problems.error(
                    deploy_names.key("kms_key"),
                    format!(
                        "the key is in {}, the stack in {}: CloudTrail, CloudWatch Logs, SNS \
                         and SQS use keys of their own region only; give a key of {} (or \"\" \
                         for one the stack creates)",
                        key.region, aws.region, aws.region
                    ),
                );
            }
        }
        let target = DeployTarget {
            stack_name: aws.stack_name,
            region: aws.region,
            settings,
            accounts,
            warnings: problems.warnings.clone(),
        };
        let validated = if problems.errors.is_empty() {
            Ok(target)
        } else {
            Err((problems.errors, problems.warnings))
        };
        match (
            settle_problems(parse_problems, validated, |t| t.warnings.clone()),
            file,
        ) {
            (Ok(target), _) => Ok(target),
            (Err((problems, warnings)), Some((_, path)))
                if !problems.iter().any(Problem::is_flag) =>
            {
                Err(ConfigErrors::Invalid {
                    path: path.to_owned(),
                    problems,
                    warnings,
                })
            }
            (Err((problems, warnings)), _) => Err(ConfigErrors::Settings { problems, warnings }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::testing::*;

    fn from_file(text: &str) -> Result<DeployTarget, ConfigErrors> {
        DeployFlags::default().resolve_text(Some((text, Path::new("t.toml"))), env(&[]))
    }

    fn flagged(settings: RawDeploy) -> DeployFlags {
        DeployFlags {
            settings: RawDeploy {
                emails: vec!["admin@example.com".to_owned()],
                ..settings
            },
            ..DeployFlags::default()
        }
    }

    /// The problems of flags given without a file.
    fn flag_problems(flags: DeployFlags) -> Vec<Problem> {
        match flags.resolve_text(None, env(&[])) {
            Err(e) => {
                assert!(!e.names_a_file(), "{e}");
                e.problems().to_vec()
            }
            Ok(target) => panic!("accepted: {target:?}"),
        }
    }

    #[test]
    fn other_regions_need_allow_region_and_say_why() {
        let elsewhere = DeployFlags {
            region: Some("eu-west-1".to_owned()),
            ..flagged(RawDeploy::default())
        };
        let found = flag_problems(elsewhere.clone());
        let message = &problem_at(&found, "--region").message;
        assert!(message.contains("us-east-1 only"), "{message}");
        assert!(message.contains("--allow-region"), "{message}");
        let allowed = DeployFlags {
            allow_region: true,
            ..elsewhere
        };
        let target = allowed
            .resolve_text(None, env(&[]))
            .expect("allowed explicitly");
        assert_eq!(target.region, "eu-west-1");
    }

    #[test]
    fn bad_email_addresses_are_refused_before_any_call() {
        for bad in [
            "admin",
            "@example.com",
            "admin@",
            "admin@example",
            "a@b@example.com",
            "admin@example..com",
            "a@example.com,b@example.com",
            "ad min@example.com",
        ] {
            let found = flag_problems(DeployFlags {
                settings: RawDeploy {
                    emails: vec![bad.to_owned()],
                    ..RawDeploy::default()
                },
                ..DeployFlags::default()
            });
            let message = &problem_at(&found, "--email").message;
            assert!(
                message.starts_with(&format!("{bad:?} is not a usable e-mail address")),
                "{bad}: {message}"
            );
        }
    }

    #[test]
    fn at_most_three_addresses_and_known_retentions() {
        let found = flag_problems(DeployFlags {
            settings: RawDeploy {
                emails: (0..4).map(|i| format!("a{i}@example.com")).collect(),
                ..RawDeploy::default()
            },
            ..DeployFlags::default()
        });
        let message = &problem_at(&found, "--email").message;
        assert!(
            message.contains("at most 3") && message.contains("got 4"),
            "{message}"
        );
        let found = flag_problems(flagged(RawDeploy {
            log_retention_days: Some(100),
            ..RawDeploy::default()
        }));
        let message = &problem_at(&found, "--log-retention-days").message;
        assert!(message.contains("365"), "{message}");
    }

    #[test]
    fn alarm_period_and_threshold_are_checked_like_the_template() {
        let found = flag_problems(flagged(RawDeploy {
            alarm_period: Some(90),
            alarm_threshold: Some(0),
            ..RawDeploy::default()
        }));
        assert!(problem_at(&found, "--alarm-period")
            .message
            .contains("got 90"));
        assert!(problem_at(&found, "--alarm-threshold")
            .message
            .contains("must be 1-"));
        assert_eq!(found.len(), 2, "{found:#?}");
        let valid = flagged(RawDeploy {
            alarm_period: Some(60),
            alarm_threshold: Some(1),
            ..RawDeploy::default()
        });
        let target = valid.resolve_text(None, env(&[])).expect("valid");
        assert_eq!(target.settings.alarm_period_seconds, Some(60));
    }

    #[test]
    fn a_stack_name_its_trail_cannot_take_is_refused_before_any_call() {
        for bad in ["s1", "ab", "stack-", "my--stack"] {
            let found = flag_problems(DeployFlags {
                stack_name: Some(bad.to_owned()),
                ..flagged(RawDeploy::default())
            });
            let message = &problem_at(&found, "--stack-name").message;
            assert!(message.contains("trail"), "{bad}: {message}");
        }
        // In the file, the problem names the key (and so exits 78).
        let error = from_file("[aws]\nstack_name = \"s1\"\n").unwrap_err();
        assert!(error.names_a_file());
        assert!(problem_at(error.problems(), "aws.stack_name")
            .message
            .contains("use a longer name"));
    }

    #[test]
    fn the_kms_key_is_a_key_arn_of_the_stacks_region() {
        let key = |arn: &str| {
            flagged(RawDeploy {
                kms_key: Some(arn.to_owned()),
                ..RawDeploy::default()
            })
        };
        let good = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let target = key(good).resolve_text(None, env(&[])).expect("valid");
        assert_eq!(target.settings.kms_key.as_deref(), Some(good));
        let created = key("")
            .resolve_text(None, env(&[]))
            .expect("\"\" = created");
        assert_eq!(created.settings.kms_key.as_deref(), Some(""));
        for bad in [
            "alias/iamwatchd",
            "arn:aws:kms:us-east-1:123456789012:alias/x",
            "1234abcd",
        ] {
            let found = flag_problems(key(bad));
            assert!(
                problem_at(&found, "--kms-key")
                    .message
                    .contains("not an alias"),
                "{bad}"
            );
        }
        let found = flag_problems(key(&good.replace("us-east-1", "eu-west-1")));
        let message = &problem_at(&found, "--kms-key").message;
        assert!(message.contains("the key is in eu-west-1"), "{message}");
    }

    const FILE: &str = "[aws]\nregion = \"eu-west-1\"\nallow_non_us_east_1 = true\nstack_name = \"from-file\"\n[deploy]\nemails = [\"file@example.com\", \"file2@example.com\"]\nbucket = \"file-bucket\"\nlog_retention_days = 30\nalarm_period = 60\nalarm_threshold = 4\ncis_filter = true\ntampering_alarm = false\ndaemon_queue = false\n";

    #[test]
    fn without_a_file_unset_flags_stay_unset() {
        let r = DeployFlags::default().resolve_text(None, env(&[])).unwrap();
        assert_eq!(r.stack_name, crate::config::defaults::STACK_NAME);
        assert_eq!(r.region, crate::aws::IAM_EVENTS_REGION);
        assert!(r.warnings.is_empty() && r.settings.emails.is_empty());
        // None = the stack's current value on an update, the template's default on a create.
        assert_eq!(r.settings.alarm_threshold, None);
        assert_eq!(r.settings.cis_filter, None);
        assert_eq!(r.settings.bucket, None);
    }

    #[test]
    fn the_file_fills_in_what_no_flag_gives() {
        let r = from_file(FILE).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.stack_name, "from-file");
        assert_eq!(r.region, "eu-west-1");
        assert_eq!(
            r.warnings[0].path, "aws.region",
            "the file's consent carries over: allowed, with a warning"
        );
        assert_eq!(r.settings.emails, ["file@example.com", "file2@example.com"]);
        assert_eq!(r.settings.bucket.as_deref(), Some("file-bucket"));
        assert_eq!(r.settings.log_retention_days, Some(30));
        assert_eq!(r.settings.alarm_period_seconds, Some(60));
        assert_eq!(r.settings.alarm_threshold, Some(4));
        assert_eq!(
            (
                r.settings.cis_filter,
                r.settings.tampering_alarm,
                r.settings.daemon_queue
            ),
            (Some(true), Some(false), Some(false))
        );

        // A file that leaves [deploy] out sets nothing: the stack keeps what it has.
        let bare = from_file("[aws]\nstack_name = \"s12\"\n").unwrap();
        assert_eq!(bare.region, crate::aws::IAM_EVENTS_REGION);
        assert_eq!(
            (bare.settings.alarm_threshold, bare.settings.bucket),
            (None, None)
        );
    }

    #[test]
    fn a_flag_wins_over_the_file() {
        let given = DeployFlags {
            stack_name: Some("from-flag".to_owned()),
            region: Some(crate::aws::IAM_EVENTS_REGION.to_owned()),
            allow_region: false,
            settings: RawDeploy {
                emails: vec!["flag@example.com".to_owned()],
                bucket: Some(String::new()),
                kms_key: Some(String::new()),
                log_retention_days: Some(90),
                alarm_period: Some(300),
                alarm_threshold: Some(7),
                cis_filter: Some(false),
                tampering_alarm: Some(true),
                daemon_queue: Some(true),
                organization: Some(false),
            },
        };
        let r = given
            .resolve_text(Some((FILE, Path::new("t.toml"))), env(&[]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.stack_name, "from-flag");
        assert_eq!(r.region, crate::aws::IAM_EVENTS_REGION);
        assert_eq!(
            r.settings.emails,
            ["flag@example.com"],
            "--email replaces the whole list"
        );
        assert_eq!(r.settings.bucket.as_deref(), Some(""));
        assert_eq!(r.settings.log_retention_days, Some(90));
        assert_eq!(r.settings.alarm_period_seconds, Some(300));
        assert_eq!(r.settings.alarm_threshold, Some(7));
        assert_eq!(
            (
                r.settings.cis_filter,
                r.settings.tampering_alarm,
                r.settings.daemon_queue
            ),
            (Some(false), Some(true), Some(true))
        );
        // --allow-region adds consent the file does not give.
        let r = DeployFlags {
            region: Some("eu-west-1".to_owned()),
            allow_region: true,
            ..DeployFlags::default()
        }
        .resolve_text(
            Some(("[deploy]\nalarm_threshold = 2\n", Path::new("t.toml"))),
            env(&[]),
        )
        .unwrap();
        assert_eq!(r.region, "eu-west-1");
        assert_eq!(r.warnings[0].path, "--region");
        assert_eq!(r.settings.alarm_threshold, Some(2));
    }

    #[test]
    fn a_bad_flag_and_a_bad_key_are_reported_together_each_by_its_name() {
        let flags = DeployFlags {
            settings: RawDeploy {
                alarm_period: Some(90),
                ..RawDeploy::default()
            },
            ..DeployFlags::default()
        };
        let error = flags
            .resolve_text(
                Some(("[deploy]\nbucket = \"Bad_Bucket\"\n", Path::new("t.toml"))),
                env(&[]),
            )
            .unwrap_err();
        assert!(error.names_a_file());
        let paths: Vec<&str> = error.problems().iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["--alarm-period", "deploy.bucket"]);
    }

    #[test]
    fn deploy_needs_no_notifier_but_the_daemon_does() {
        let text = "[aws]\nstack_name = \"watch\"\n[deploy]\nemails = [\"a@example.com\"]\n";
        let target = from_file(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(target.stack_name, "watch");
        assert_eq!(target.settings.emails, ["a@example.com"]);
        problem_at(&problems(text), "notifiers");
    }

    #[test]
    fn deploy_settings_check_aws_and_deploy_and_typos_anywhere() {
        // An [smtp] section whose password file lives on the daemon's host only, a typo in
        // [poller], and mistakes in the two sections deploy reads.
        let text = "[aws]\nregion = \"eu-west-1\"\n[deploy]\nalarm_period = 7\n[poller]\npoll_intervall = \"5s\"\n[smtp]\nhost = \"mail\"\nusername = \"u\"\npassword_file = \"/nonexistent/pw\"\nfrom = \"a@b.example\"\nto = [\"x@y.example\"]\n";
        let found = match from_file(text) {
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

        let allowed =
            from_file("[aws]\nregion = \"eu-west-1\"\nallow_non_us_east_1 = true\n").unwrap();
        assert_eq!(allowed.region, "eu-west-1");
        assert_eq!(allowed.warnings[0].path, "aws.region");
    }
}
