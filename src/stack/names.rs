//! The names and limits the stack's template, `deploy`, `check`, the configuration and the
//! alarm path share: parameter, output and metric names, the parameters' defaults and the
//! values CloudFormation (and so the template) accepts. Kept apart from the template so that
//! what reads them does not depend on how the template is built.

/// Parameter names, shared with [`crate::stack::deploy`] so the CLI and the template cannot
/// drift.
pub mod param {
    /// The e-mail addresses that receive the alarms: one required, two optional. Separate
    /// parameters rather than one list because CloudFormation conditions cannot count the
    /// items of a list, and each address needs its own subscription resource.
    pub const EMAILS: [&str; 3] = [
        "NotificationEmail1",
        "NotificationEmail2",
        "NotificationEmail3",
    ];
    pub const BUCKET: &str = "TrailBucketName";
    pub const LOG_RETENTION_DAYS: &str = "LogRetentionDays";
    pub const ALARM_PERIOD: &str = "AlarmPeriodSeconds";
    pub const ALARM_THRESHOLD: &str = "AlarmThreshold";
    pub const CIS_FILTER: &str = "EnableCisFilter";
    pub const TAMPERING_ALARM: &str = "EnableTamperingAlarm";
    pub const DAEMON_QUEUE: &str = "EnableDaemonQueue";
    pub const QUEUE_AGE_THRESHOLD: &str = "DaemonQueueMaxAgeSeconds";
}

/// Output names, read back by [`crate::stack::deploy`], `check` and the daemon's
/// configuration.
pub mod output {
    pub const TOPIC_ARN: &str = "TopicArn";
    pub const NOTIFICATION_TOPIC_ARN: &str = "NotificationTopicArn";
    pub const DEAD_MANS_SWITCH_ALARM_NAME: &str = "DaemonQueueAgeAlarmName";
    pub const ALARM_NAME: &str = "AlarmName";
    pub const ALARM_ARN: &str = "AlarmArn";
    pub const LOG_GROUP_NAME: &str = "LogGroupName";
    pub const TRAIL_ARN: &str = "TrailArn";
    pub const QUEUE_URL: &str = "QueueUrl";
    pub const QUEUE_ARN: &str = "QueueArn";
    pub const BUCKET_NAME: &str = "BucketName";
    pub const CIS_ALARM_NAME: &str = "CisAlarmName";
    pub const TAMPERING_ALARM_NAME: &str = "TamperingAlarmName";
}

/// Metric names of the filters: the alarm path reads `Trigger.MetricName` to know which
/// pattern an alarm counts.
pub mod metric {
    pub const IAM_CHANGES: &str = "IAMChanges";
    pub const CIS: &str = "IAMPolicyChanges";
    pub const TAMPERING: &str = "MonitoringTampering";
}

/// Logical id of the bucket the stack creates when no bucket is given; `deploy --delete` looks
/// for it to tell the operator that it is retained.
pub const CREATED_BUCKET_LOGICAL_ID: &str = "TrailBucket";

/// How many e-mail addresses the template can subscribe.
pub const MAX_EMAILS: usize = param::EMAILS.len();

/// Defaults of the parameters, also used by the CLI's help text.
pub const DEFAULT_LOG_RETENTION_DAYS: u32 = 365;
pub const DEFAULT_ALARM_PERIOD_SECONDS: u32 = 300;
pub const DEFAULT_ALARM_THRESHOLD: u32 = 1;
/// The dead-man's switch: an alarm message older than this means the daemon stopped reading.
pub const DEFAULT_QUEUE_AGE_THRESHOLD_SECONDS: u32 = 900;
pub const DEFAULT_CIS_FILTER: bool = false;
pub const DEFAULT_TAMPERING_ALARM: bool = true;
pub const DEFAULT_DAEMON_QUEUE: bool = true;

/// The alarm periods the template offers. CloudWatch itself takes 10, 30 or any multiple of
/// 60 seconds, but a CloudFormation parameter cannot say "multiple of 60", so the template
/// lists the useful ones and CloudFormation refuses anything else.
pub const ALARM_PERIOD_SECONDS_ALLOWED: [u32; 9] = [10, 30, 60, 120, 300, 600, 900, 1800, 3600];

/// The smallest alarm threshold: at 0 the alarm would fire on every period, changes or not.
pub const MIN_ALARM_THRESHOLD: u32 = 1;

/// The retention periods CloudWatch Logs accepts (PutRetentionPolicy).
pub const LOG_RETENTION_DAYS_ALLOWED: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];
