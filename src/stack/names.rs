//! The names and limits the stack's template, `deploy`, `check`, the configuration and the
//! alarm path share: parameter, output and metric names, the parameters' defaults and the
//! values CloudFormation (and so the template) accepts. Kept apart from the template so that
//! what reads them does not depend on how the template is built.

/// Parameter names, shared with [`crate::stack::deploy`] so the CLI and the template cannot
/// drift.
pub(crate) mod param {
    /// The e-mail addresses that receive the alarms: one required, two optional. Separate
    /// parameters rather than one list because CloudFormation conditions cannot count the
    /// items of a list, and each address needs its own subscription resource.
    pub(crate) const EMAILS: [&str; 3] = [
        "NotificationEmail1",
        "NotificationEmail2",
        "NotificationEmail3",
    ];
    /// An existing customer-managed KMS key (its ARN) for the trail's log files, the log
    /// group, the topics and the queue; empty: the stack creates one.
    pub(crate) const KMS_KEY: &str = "KmsKeyArn";
    /// An existing S3 bucket for the trail's log files; empty: the stack creates one.
    pub(crate) const BUCKET: &str = "TrailBucketName";
    /// Days CloudTrail records stay in the log group (and in a bucket the stack created).
    pub(crate) const LOG_RETENTION_DAYS: &str = "LogRetentionDays";
    /// Seconds over which the alarms count changes.
    pub(crate) const ALARM_PERIOD: &str = "AlarmPeriodSeconds";
    /// Changes within one alarm period that set off an alarm.
    pub(crate) const ALARM_THRESHOLD: &str = "AlarmThreshold";
    /// `true` adds the exact CIS 4.4 / Security Hub CloudWatch.4 metric filter and its alarm.
    pub(crate) const CIS_FILTER: &str = "EnableCisFilter";
    /// `true` adds a filter and an alarm for calls that blind the monitoring (StopLogging, ...).
    pub(crate) const TAMPERING_ALARM: &str = "EnableTamperingAlarm";
    /// `true` is daemon mode: the alarm topic feeds an SQS queue the daemon reads; `false`,
    /// the alarm topic e-mails the addresses directly.
    pub(crate) const DAEMON_QUEUE: &str = "EnableDaemonQueue";
    /// Daemon mode: seconds an alarm message may wait in the queue before the dead-man's
    /// switch e-mails the humans directly.
    pub(crate) const QUEUE_AGE_THRESHOLD: &str = "DaemonQueueMaxAgeSeconds";
    /// `true` makes the trail an organization trail (the stack is in the management account):
    /// every member account's records reach the one log group, filters and alarms.
    pub(crate) const ORGANIZATION_TRAIL: &str = "EnableOrganizationTrail";
    /// The organization's ID (`o-…`), which an organization trail's bucket policy needs: the
    /// members' log files go to `AWSLogs/<organization ID>/<account>/`. Empty without one.
    pub(crate) const ORGANIZATION_ID: &str = "OrganizationId";
}

/// The member role's name: what the daemon assumes in every member account unless
/// `accounts.member_role` says otherwise, and the default of the member-role template's
/// `MemberRoleName` (`iamwatchd template --member-role`, deployed to the members by the
/// StackSet of `iamwatchd deploy --member-roles`).
pub const MEMBER_ROLE_NAME: &str = "iamwatchd-member";

/// Everything the daemon calls with a member account's credentials (`src/accounts/`): its
/// event history and its alias. The member role allows these and nothing else; a test keeps
/// them equal to the member-side calls the code declares.
pub const MEMBER_ROLE_ACTIONS: &[&str] = &["cloudtrail:LookupEvents", "iam:ListAccountAliases"];

/// The service-managed StackSet that puts the member role in the member accounts.
pub const MEMBER_ROLES_STACK_SET: &str = "iamwatchd-member-roles";

/// The member-role template's parameter names, shared with `deploy --member-roles`.
pub(crate) mod member_param {
    /// The role's name.
    pub(crate) const ROLE_NAME: &str = "MemberRoleName";
    /// The ARN of the daemon's IAM role or user, the one principal the role trusts.
    pub(crate) const PRINCIPAL: &str = "DaemonPrincipalArn";
    /// The external ID the daemon must give when it assumes the role; empty: none.
    pub(crate) const EXTERNAL_ID: &str = "ExternalId";
}

/// Output names, read back by [`crate::stack::deploy`], `check` and the daemon's
/// configuration.
pub mod output {
    /// The SNS topic the alarms notify.
    pub(crate) const TOPIC_ARN: &str = "TopicArn";
    /// Daemon mode only: the SNS topic humans subscribe to and the daemon publishes to (its
    /// `sns.topic_arn`).
    pub(crate) const NOTIFICATION_TOPIC_ARN: &str = "NotificationTopicArn";
    /// Daemon mode only: the alarm that fires when the daemon stops reading its queue.
    pub(crate) const DEAD_MANS_SWITCH_ALARM_NAME: &str = "DaemonQueueAgeAlarmName";
    /// The name of the alarm on IAM changes.
    pub(crate) const ALARM_NAME: &str = "AlarmName";
    /// The ARN of the alarm on IAM changes.
    pub(crate) const ALARM_ARN: &str = "AlarmArn";
    /// The CloudWatch Logs group the trail delivers to.
    pub(crate) const LOG_GROUP_NAME: &str = "LogGroupName";
    /// The ARN of the CloudTrail trail.
    pub(crate) const TRAIL_ARN: &str = "TrailArn";
    /// Daemon mode only: the URL of the SQS queue the daemon reads alarms from.
    pub(crate) const QUEUE_URL: &str = "QueueUrl";
    /// Daemon mode only: the ARN of that SQS queue.
    pub(crate) const QUEUE_ARN: &str = "QueueArn";
    /// The KMS key that encrypts the trail's log files, the log group, the topics and the
    /// queue (given or created by the stack).
    pub(crate) const KMS_KEY_ARN: &str = "KmsKeyArn";
    /// The S3 bucket holding the trail's log files (given or created by the stack).
    pub(crate) const BUCKET_NAME: &str = "BucketName";
    /// Only with the CIS filter: the name of the CIS 4.4 alarm.
    pub(crate) const CIS_ALARM_NAME: &str = "CisAlarmName";
    /// Only with the tampering alarm: the name of the alarm on tampering with the monitoring.
    pub(crate) const TAMPERING_ALARM_NAME: &str = "TamperingAlarmName";
}

/// The grants the stack's KMS key policy must hold, by service principal, shared by the
/// template (which writes them) and `check` (which finds them in a deployed key's policy).
pub(crate) mod key_grants {
    /// CloudTrail, which encrypts the trail's log files.
    pub(crate) const CLOUDTRAIL: &str = "cloudtrail.amazonaws.com";
    /// What CloudTrail needs to encrypt log files.
    pub(crate) const CLOUDTRAIL_ACTIONS: &[&str] = &["kms:GenerateDataKey*"];
    /// CloudWatch Logs of the stack's region (template form; `check` puts the region in).
    pub(crate) const LOGS: &str = "logs.${AWS::Region}.amazonaws.com";
    /// What CloudWatch Logs needs to encrypt and read an encrypted log group.
    pub(crate) const LOGS_ACTIONS: &[&str] = &[
        "kms:Encrypt*",
        "kms:Decrypt*",
        "kms:ReEncrypt*",
        "kms:GenerateDataKey*",
        "kms:Describe*",
    ];
    /// SNS, which delivers the alarm topic's messages to the encrypted queue.
    pub(crate) const SNS: &str = "sns.amazonaws.com";
    /// CloudWatch, whose alarms publish to the encrypted topics.
    pub(crate) const CLOUDWATCH: &str = "cloudwatch.amazonaws.com";
    /// What a service needs to publish to an encrypted topic or send to an encrypted queue.
    pub(crate) const PUBLISH_ACTIONS: &[&str] = &["kms:GenerateDataKey*", "kms:Decrypt"];

    /// Each service principal and the KMS calls it makes with the key, which a key policy must
    /// allow it (`check` tests a deployed key's policy against these).
    pub(crate) const CALLS: [(&str, &str, &[&str]); 4] = [
        (
            CLOUDTRAIL,
            "the trail cannot write encrypted log files",
            &["kms:GenerateDataKey", "kms:DescribeKey"],
        ),
        (
            LOGS,
            "CloudTrail's records cannot be stored in the encrypted log group",
            &[
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:GenerateDataKey",
                "kms:DescribeKey",
            ],
        ),
        (
            SNS,
            "the alarm topic cannot deliver to the encrypted queue",
            &["kms:GenerateDataKey", "kms:Decrypt"],
        ),
        (
            CLOUDWATCH,
            "the alarms cannot publish to the encrypted topics: they go to ALARM and nobody hears",
            &["kms:GenerateDataKey", "kms:Decrypt"],
        ),
    ];
}

/// The suffixes of the alarms' names, each `<stack name>-<suffix>`.
pub(crate) mod alarm_suffix {
    /// The alarm on IAM changes.
    pub(crate) const IAM_CHANGES: &str = "iam-changes";
    /// The CIS 4.4 alarm.
    pub(crate) const CIS: &str = "cis-4-4-iam-policy-changes";
    /// The alarm on tampering with the monitoring.
    pub(crate) const TAMPERING: &str = "monitoring-tampering";
    /// The alarm on IAM Identity Center changes.
    pub(crate) const IDENTITY_CENTER: &str = "identity-center-changes";
    /// The alarm on Organizations changes.
    pub(crate) const ORGANIZATIONS: &str = "organizations-changes";
    /// The alarm on the root user's use.
    pub(crate) const ROOT_USE: &str = "root-use";
    /// The alarm on console sign-ins without MFA.
    pub(crate) const CONSOLE_SIGN_IN: &str = "console-sign-in-without-mfa";
    /// The dead-man's switch on the daemon's queue.
    pub(crate) const DAEMON_NOT_READING: &str = "daemon-not-reading";
    /// All of them.
    #[cfg(test)]
    pub(crate) const ALL: [&str; 8] = [
        IAM_CHANGES,
        CIS,
        TAMPERING,
        IDENTITY_CENTER,
        ORGANIZATIONS,
        ROOT_USE,
        CONSOLE_SIGN_IN,
        DAEMON_NOT_READING,
    ];
}

/// Why `stack` cannot name this stack although CloudFormation takes it (a letter, then letters,
/// digits and hyphens, at most 128: checked before this), judged by every name the template
/// derives from the stack's name; `None` when every one is valid:
///
/// - the trail, named `<stack>`: CloudTrail takes 3-128 characters starting and ending with a
///   letter or digit, without adjacent hyphens (CloudTrail: "Trail name too short" and the like,
///   after the stack has started);
/// - the alarms, `<stack>-<suffix>`, and the metric namespace, `iamwatchd/<stack>`: at most
///   255 characters, which [`MAX_STACK_NAME`] guarantees.
///
/// The bucket, topic, queue and log group names CloudFormation generates (and shortens) itself.
pub(crate) fn stack_name_problem(stack: &str) -> Option<String> {
    let ends = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if stack.len() < 3 {
        return Some(format!(
            "is too short: the stack's trail is named after it and CloudTrail takes trail names \
             of 3-128 characters; use a longer name such as \"iamwatchd-{stack}\", got {stack:?}"
        ));
    }
    if !ends(stack.chars().last()) || stack.contains("--") {
        return Some(format!(
            "must end with a letter or digit and have no two hyphens in a row: the stack's \
             trail is named after it and CloudTrail refuses such trail names; got {stack:?}"
        ));
    }
    None
}

/// CloudFormation's own limit on a stack name; with it, the alarm names and the metric
/// namespace derived from it always fit their 255 characters (a test checks).
pub(crate) const MAX_STACK_NAME: usize = 128;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_names_are_checked_and_the_longest_stack_name_fits_every_one() {
        for bad in ["s1", "ab", "stack-", "my--stack"] {
            assert!(stack_name_problem(bad).is_some(), "{bad}");
        }
        for good in ["s12", "iamwatchd", "a-b-c", "Prod2"] {
            assert_eq!(stack_name_problem(good), None, "{good}");
        }
        let longest = alarm_suffix::ALL.iter().map(|s| s.len()).max().unwrap();
        assert!(MAX_STACK_NAME + 1 + longest <= 255);
        assert!("iamwatchd/".len() + MAX_STACK_NAME <= 255);
    }
}

/// Metric names of the filters: the alarm path reads `Trigger.MetricName` to know which
/// pattern an alarm counts.
pub mod metric {
    /// The metric of the filter on IAM changes, which the main alarm watches.
    pub(crate) const IAM_CHANGES: &str = "IAMChanges";
    /// The metric of the CIS 4.4 filter on IAM policy changes.
    pub const CIS: &str = "IAMPolicyChanges";
    /// The metric of the filters on tampering with the monitoring.
    pub const TAMPERING: &str = "MonitoringTampering";
    /// The metric of the filters on IAM Identity Center changes.
    pub const IDENTITY_CENTER: &str = "IdentityCenterChanges";
    /// The metric of the filters on Organizations changes.
    pub const ORGANIZATIONS: &str = "OrganizationsChanges";
    /// The metric of the filter on the root user's use.
    pub const ROOT_USE: &str = "RootUse";
    /// The metric of the filter on console sign-ins without MFA.
    pub const CONSOLE_SIGN_IN: &str = "ConsoleSignInWithoutMFA";
}

/// Logical id of the bucket the stack creates when no bucket is given; `deploy --delete` looks
/// for it to tell the operator that it is retained.
pub(crate) const CREATED_BUCKET_LOGICAL_ID: &str = "TrailBucket";

/// Logical id of the bucket that receives the created trail bucket's server access logs; also
/// retained on deletion.
pub(crate) const ACCESS_LOG_BUCKET_LOGICAL_ID: &str = "TrailAccessLogBucket";

/// Logical id of the KMS key the stack creates when no key is given. It is retained when the
/// stack is deleted: the log files in the retained bucket stay readable only with it.
pub(crate) const CREATED_KEY_LOGICAL_ID: &str = "Key";

/// How many e-mail addresses the template can subscribe.
pub(crate) const MAX_EMAILS: usize = param::EMAILS.len();

// The template's parameter defaults; the alarm path and the config fall back on them too.
/// Default of [`param::LOG_RETENTION_DAYS`], in days.
pub(crate) const DEFAULT_LOG_RETENTION_DAYS: u32 = 365;
/// Default of [`param::ALARM_PERIOD`], in seconds.
pub(crate) const DEFAULT_ALARM_PERIOD_SECONDS: u32 = 300;
/// Default of [`param::ALARM_THRESHOLD`], in changes per period.
pub(crate) const DEFAULT_ALARM_THRESHOLD: u32 = 1;
/// Default of [`param::QUEUE_AGE_THRESHOLD`], in seconds. The dead-man's switch: an alarm
/// message older than this means the daemon stopped reading.
pub(crate) const DEFAULT_QUEUE_AGE_THRESHOLD_SECONDS: u32 = 900;
/// Default of [`param::CIS_FILTER`]: off.
pub(crate) const DEFAULT_CIS_FILTER: bool = false;
/// Default of [`param::TAMPERING_ALARM`]: on.
pub(crate) const DEFAULT_TAMPERING_ALARM: bool = true;
/// Default of [`param::DAEMON_QUEUE`]: daemon mode.
pub(crate) const DEFAULT_DAEMON_QUEUE: bool = true;
/// Default of [`param::ORGANIZATION_TRAIL`]: the account's own trail.
pub(crate) const DEFAULT_ORGANIZATION_TRAIL: bool = false;

/// What the template's `OrganizationId` parameter accepts (Organizations' own pattern), or
/// empty.
pub(crate) const ORGANIZATION_ID_PATTERN: &str = "^(o-[a-z0-9]{10,32})?$";

/// The alarm periods the template offers. CloudWatch itself takes 10, 30 or any multiple of
/// 60 seconds, but a CloudFormation parameter cannot say "multiple of 60", so the template
/// lists the useful ones and CloudFormation refuses anything else.
pub(crate) const ALARM_PERIOD_SECONDS_ALLOWED: [u32; 9] =
    [10, 30, 60, 120, 300, 600, 900, 1800, 3600];

/// The smallest alarm threshold: at 0 the alarm would fire on every period, changes or not.
pub(crate) const MIN_ALARM_THRESHOLD: u32 = 1;

/// What the template's `KmsKeyArn` parameter accepts: a key ARN (CloudWatch Logs takes no
/// alias or bare key id), or empty.
pub(crate) const KMS_KEY_ARN_PATTERN: &str =
    "^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-zA-Z0-9-]{1,128})?$";

/// The retention periods CloudWatch Logs accepts (PutRetentionPolicy).
pub(crate) const LOG_RETENTION_DAYS_ALLOWED: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];
