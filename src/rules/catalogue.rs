//! What counts: the IAM operations that change something (every IAM API that is not a read),
//! and the groups of calls listed by name: tampering with the monitoring (ours and the
//! security services'), IAM Identity Center, Organizations, the root user and console sign-ins
//! without MFA. CIS 4.4's exact filter text lives here too.
//!
//! A listed call is a [`Rule`]: tests on fields of the record ([`Field`]), all of which must
//! hold, with the severity and the reason it is reported at. The same tests are the Rust
//! matcher ([`Rule::matches`]) and the CloudWatch Logs filter pattern
//! ([`super::patterns`]), with CloudWatch's semantics: a comparison on a field that is missing
//! or not text is false, `IS FALSE` wants the JSON `false`, `NOT EXISTS` wants no field at all.

use serde_json::Value;

use super::severity::Severity;
use super::Category;
use crate::event::Record;

/// The event source of every IAM API call.
pub(crate) const IAM_EVENT_SOURCE: &str = "iam.amazonaws.com";

/// Name prefixes of the IAM operations that only read. Everything else on
/// [`IAM_EVENT_SOURCE`] is a mutation (109 of 181 operations in botocore's IAM model of 2026;
/// the unit test `every_iam_operation_in_botocore_is_a_read_or_a_mutation` re-checks it).
pub(crate) const READ_PREFIXES: [&str; 4] = ["Get", "List", "Generate", "Simulate"];

/// What a [`Field`] must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Test {
    /// Text equal to this (`$.f = "v"`).
    Is(&'static str),
    /// Text, and not this (`$.f != "v"`; a missing field is not "not this").
    IsNot(&'static str),
    /// The JSON `false` (`$.f IS FALSE`).
    False,
    /// No such field (`$.f NOT EXISTS`).
    Missing,
}

/// A test on one field of the record, named by its dotted path (`requestParameters.enable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field {
    /// The dotted path from the record's top level.
    pub(crate) path: &'static str,
    /// What it must be.
    pub(crate) test: Test,
}

impl Field {
    /// Whether `record` passes the test, with CloudWatch Logs' semantics.
    fn holds(&self, record: &Value) -> bool {
        let value = self
            .path
            .split('.')
            .try_fold(record, |node, key| node.as_object()?.get(key));
        match (self.test, value) {
            (Test::Missing, value) => value.is_none(),
            (Test::False, value) => value == Some(&Value::Bool(false)),
            (Test::Is(wanted), Some(Value::String(text))) => text == wanted,
            (Test::IsNot(unwanted), Some(Value::String(text))) => text != unwanted,
            _ => false,
        }
    }
}

/// One of our own monitoring's resources that a call can name; such a call on ours is
/// CRITICAL tampering, the same call elsewhere ranks as its rule says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    /// The trail's S3 bucket (`requestParameters.bucketName`).
    TrailBucket,
    /// The KMS key the trail encrypts with (`requestParameters.keyId`).
    TrailKey,
    /// The log group the trail delivers to (`requestParameters.logGroupName`).
    LogGroup,
    /// The daemon's SQS queue (`requestParameters.queueUrl`).
    Queue,
    /// The iamwatchd stack (`requestParameters.stackName`).
    Stack,
    /// One of the stack's alarms, all named `<stack>-…` (`requestParameters.alarmName`).
    Alarm,
}

impl Resource {
    /// What to call it in a reason.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Resource::TrailBucket => "the monitoring trail's bucket",
            Resource::TrailKey => "the monitoring trail's KMS key",
            Resource::LogGroup => "the monitoring trail's log group",
            Resource::Queue => "the iamwatchd daemon's queue",
            Resource::Stack => "the iamwatchd stack",
            Resource::Alarm => "an iamwatchd alarm",
        }
    }
}

/// The names of our own monitoring: from the stack's outputs where the daemon could read them,
/// else what the configuration says (the trail is named after the stack, every alarm
/// `<stack>-…`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ours {
    /// The stack's name (also the trail's, and the prefix of every alarm's).
    pub stack_name: String,
    /// The trail's S3 bucket.
    pub trail_bucket: Option<String>,
    /// The trail's KMS key, as the trail names it (ARN, alias or id).
    pub trail_key: Option<String>,
    /// The log group the trail delivers to.
    pub log_group: Option<String>,
    /// The daemon's SQS queue URL.
    pub queue_url: Option<String>,
}

impl Ours {
    /// Whether `record`'s request names our `resource`.
    pub(crate) fn named_in(&self, resource: Resource, record: &Record) -> bool {
        let param = |key: &str| record.request_parameters.get(key).and_then(Value::as_str);
        let same = |ours: &Option<String>, key: &str| matches!((ours, param(key)), (Some(ours), Some(named)) if ours == named);
        match resource {
            Resource::TrailBucket => same(&self.trail_bucket, "bucketName"),
            Resource::LogGroup => same(&self.log_group, "logGroupName"),
            Resource::Queue => same(&self.queue_url, "queueUrl"),
            Resource::TrailKey => match (&self.trail_key, param("keyId")) {
                // A key is named by its ARN, its id (the ARN's last segment) or an alias.
                (Some(ours), Some(named)) => {
                    ours == named || crate::aws::arn::last_segment(ours) == named
                }
                _ => false,
            },
            Resource::Stack => param("stackName").is_some_and(|named| {
                named == self.stack_name || named.contains(&format!(":stack/{}/", self.stack_name))
            }),
            Resource::Alarm => param("alarmName")
                .is_some_and(|named| named.starts_with(&format!("{}-", self.stack_name))),
        }
    }
}

/// A call the catalogue lists: when every field test holds it is reported at `severity`, or
/// CRITICAL when the call names the [`Resource`] of [`Ours`] in `ours`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rule {
    /// The tests, all of which must hold; the first is the event source where there is one.
    pub(crate) when: &'static [Field],
    /// How severe it is (on a resource that is not ours, for resource-specific rules).
    pub(crate) severity: Severity,
    /// Why, for humans.
    pub(crate) reason: &'static str,
    /// Resource-specific: CRITICAL when the call names this resource of ours.
    pub(crate) ours: Option<Resource>,
}

impl Rule {
    /// Whether `record` is this rule's call.
    pub(crate) fn matches(&self, record: &Record) -> bool {
        self.when.iter().all(|field| field.holds(&record.raw))
    }

    /// The event source this rule is about, when its first test names one.
    pub(crate) fn source(&self) -> Option<&'static str> {
        match self.when.first() {
            Some(Field {
                path: "eventSource",
                test: Test::Is(source),
            }) => Some(source),
            _ => None,
        }
    }

    /// The event name this rule is about, when it tests one.
    pub(crate) fn name(&self) -> Option<&'static str> {
        self.when.iter().find_map(|field| match field {
            Field {
                path: "eventName",
                test: Test::Is(name),
            } => Some(*name),
            _ => None,
        })
    }
}

/// Where CloudTrail records a group's calls, so where the poller reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// In us-east-1 (global services: Organizations).
    UsEast1,
    /// In the IAM Identity Center instance's region (`identity_center.region`).
    IdentityCenter,
    /// In the region of the resource: every watched region (`aws.tampering_regions`).
    Watched,
    /// In us-east-1 and in every watched region (sign-ins, the root user).
    UsEast1AndWatched,
}

/// How the poller finds a group's calls with LookupEvents' one attribute per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupBy {
    /// Each rule's call: by its event source when that service is quiet
    /// ([`QUIET_SOURCES`]: one stream for all its calls), else by its event name (calls of busy
    /// services such as EC2, S3, KMS, CloudTrail itself).
    Call,
    /// One stream for the user name LookupEvents gives the root user, `root`.
    RootUser,
}

/// A LookupEvents attribute the poller reads a stream by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute {
    /// `EventSource`.
    EventSource,
    /// `EventName`.
    EventName,
    /// `Username`.
    Username,
}

/// Services whose every event is rare (configuration changes of security services, Identity
/// Center, Organizations, sign-ins): one stream by event source costs less than one per call.
/// Busy services (EC2, S3, KMS, Logs, CloudFormation, CloudTrail, whose reads and data-plane
/// calls run to thousands an hour) are read by event name instead.
pub(crate) const QUIET_SOURCES: [&str; 9] = [
    GUARDDUTY,
    SECURITYHUB,
    CONFIG,
    ACCESS_ANALYZER,
    SSO,
    SSO_DIRECTORY,
    IDENTITY_STORE,
    ORGANIZATIONS,
    SIGNIN,
];

/// One group of the catalogue: its category, its rules, and where and how they are looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    /// The category of what it reports.
    pub category: Category,
    /// The calls, most specific first: the first rule that matches decides the severity.
    pub(crate) rules: &'static [Rule],
    /// Where CloudTrail records them.
    pub recorded: Recorded,
    /// How the poller looks them up.
    pub lookup_by: LookupBy,
}

impl Group {
    /// The first rule of the group that `record` matches.
    pub(crate) fn rule_for(&self, record: &Record) -> Option<&'static Rule> {
        self.rules.iter().find(|rule| rule.matches(record))
    }

    /// Whether any rule of the group matches `record`: exactly what the group's filter
    /// patterns match.
    pub fn matches(&self, record: &Record) -> bool {
        self.rule_for(record).is_some()
    }

    /// The LookupEvents attributes that find every call of the group, each once, in the order
    /// of the rules.
    pub fn lookups(&self) -> Vec<(Attribute, &'static str)> {
        let mut lookups: Vec<(Attribute, &'static str)> = Vec::new();
        for rule in self.rules {
            let lookup = match (self.lookup_by, rule.source()) {
                (LookupBy::RootUser, _) => Some((Attribute::Username, ROOT_USER_NAME)),
                (LookupBy::Call, Some(source)) if QUIET_SOURCES.contains(&source) => {
                    Some((Attribute::EventSource, source))
                }
                (LookupBy::Call, _) => rule.name().map(|name| (Attribute::EventName, name)),
            };
            if let Some(lookup) = lookup {
                if !lookups.contains(&lookup) {
                    lookups.push(lookup);
                }
            }
        }
        lookups
    }
}

impl Group {
    /// Records that exercise every rule of the group, as JSON: for each rule one that passes
    /// all of its tests and, for each test, one that fails only that test. The filter patterns
    /// and [`Group::matches`] must agree on them as on real records (`tests/e2e/rules.rs`
    /// judges them with the emulator's evaluator), which reaches the rules the public corpus
    /// has no record of.
    pub fn examples(&self) -> Vec<Value> {
        let mut examples = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            for flip in std::iter::once(None).chain((0..rule.when.len()).map(Some)) {
                let id = format!(
                    "example-{}-{index}-{}",
                    self.category.as_str(),
                    flip.map_or("pass".to_owned(), |i| format!("fail{i}"))
                );
                examples.push(example(rule.when, flip, &id));
            }
        }
        examples
    }
}

/// A record that passes `tests`, except the one at `flip`.
fn example(tests: &[Field], flip: Option<usize>, id: &str) -> Value {
    let mut record = serde_json::json!({
        "eventVersion": "1.08", "eventID": id, "eventType": "AwsApiCall",
        "eventSource": "example.amazonaws.com", "eventName": "Example",
        "eventTime": "2026-11-25T12:00:00Z", "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "userName": "alice", "accountId": "111122223333",
            "arn": "arn:aws:iam::111122223333:user/alice"},
    });
    for (index, field) in tests.iter().enumerate() {
        let fail = flip == Some(index);
        let value = match (field.test, fail) {
            (Test::Is(value), false) | (Test::IsNot(value), true) => Some(Value::from(value)),
            (Test::Is(value), true) | (Test::IsNot(value), false) => {
                Some(Value::from(format!("{value}-not")))
            }
            (Test::False, fail) => Some(Value::Bool(fail)),
            (Test::Missing, false) => None,
            (Test::Missing, true) => Some(Value::from("example.amazonaws.com")),
        };
        set(&mut record, field.path, value);
    }
    record
}

/// Sets (or with `None` removes) the field at a dotted path, making the objects on the way.
pub(crate) fn set(record: &mut Value, path: &str, value: Option<Value>) {
    let mut node = record;
    let mut keys = path.split('.').peekable();
    while let Some(key) = keys.next() {
        if !node.is_object() {
            *node = Value::Object(serde_json::Map::new());
        }
        let object = node.as_object_mut().expect("made an object above");
        if keys.peek().is_none() {
            match value {
                Some(value) => object.insert(key.to_owned(), value),
                None => object.remove(key),
            };
            return;
        }
        node = object.entry(key).or_insert(Value::Null);
    }
}

/// LookupEvents' `Username` of the root user's events.
pub(crate) const ROOT_USER_NAME: &str = "root";

const fn is(path: &'static str, value: &'static str) -> Field {
    Field {
        path,
        test: Test::Is(value),
    }
}

const fn source(source: &'static str) -> Field {
    is("eventSource", source)
}

const fn name(name: &'static str) -> Field {
    is("eventName", name)
}

/// A [`Rule`] from its tests, severity and reason (and the resource of ours it may name).
macro_rules! rule {
    ([$($field:expr),+ $(,)?], $severity:ident, $reason:expr) => {
        Rule { when: &[$($field),+], severity: Severity::$severity, reason: $reason, ours: None }
    };
    ([$($field:expr),+ $(,)?], $severity:ident, $reason:expr, ours $resource:ident) => {
        Rule {
            when: &[$($field),+],
            severity: Severity::$severity,
            reason: $reason,
            ours: Some(Resource::$resource),
        }
    };
}

const CLOUDTRAIL: &str = "cloudtrail.amazonaws.com";
const LOGS: &str = "logs.amazonaws.com";
const MONITORING: &str = "monitoring.amazonaws.com";
const SNS: &str = "sns.amazonaws.com";
const GUARDDUTY: &str = "guardduty.amazonaws.com";
const SECURITYHUB: &str = "securityhub.amazonaws.com";
const CONFIG: &str = "config.amazonaws.com";
const ACCESS_ANALYZER: &str = "access-analyzer.amazonaws.com";
const EC2: &str = "ec2.amazonaws.com";
const KMS: &str = "kms.amazonaws.com";
const S3: &str = "s3.amazonaws.com";
const SQS: &str = "sqs.amazonaws.com";
const CLOUDFORMATION: &str = "cloudformation.amazonaws.com";
const SSO: &str = "sso.amazonaws.com";
const SSO_DIRECTORY: &str = "sso-directory.amazonaws.com";
const IDENTITY_STORE: &str = "identitystore.amazonaws.com";
const ORGANIZATIONS: &str = "organizations.amazonaws.com";
const SIGNIN: &str = "signin.amazonaws.com";

/// GuardDuty filters with this action archive the findings they match: nobody sees them.
const ARCHIVE: Field = is("requestParameters.action", "ARCHIVE");

/// The calls that blind the monitoring: our own trail, log group, filters, alarms, topic,
/// queue, bucket, key and stack, and the security services (GuardDuty, Security Hub, Config,
/// IAM Access Analyzer, CloudTrail Lake, VPC flow logs). They happen in the resource's region,
/// not in us-east-1 like IAM, and are looked up by name: most are calls of busy services.
#[rustfmt::skip]
pub(crate) const TAMPERING_RULES: &[Rule] = &[
    rule!([source(CLOUDTRAIL), name("StopLogging")], Critical, "the trail stopped recording API calls"),
    rule!([source(CLOUDTRAIL), name("DeleteTrail")], Critical, "the trail that records API calls was deleted"),
    rule!([source(CLOUDTRAIL), name("UpdateTrail")], High, "the trail's configuration changed"),
    rule!([source(CLOUDTRAIL), name("PutEventSelectors")], High, "the trail's event selectors changed (what it records)"),
    rule!([source(CLOUDTRAIL), name("DeleteEventDataStore")], Critical, "a CloudTrail Lake event data store was deleted"),
    rule!([source(CLOUDTRAIL), name("StopEventDataStoreIngestion")], Critical, "a CloudTrail Lake event data store stopped ingesting events"),
    rule!([source(LOGS), name("DeleteMetricFilter")], Critical, "a metric filter of the monitoring was deleted"),
    rule!([source(LOGS), name("DeleteLogGroup")], High, "a log group was deleted (the trail may deliver there)"),
    rule!([source(LOGS), name("PutRetentionPolicy")], Low, "a log group's retention changed", ours LogGroup),
    rule!([source(LOGS), name("DeleteRetentionPolicy")], Low, "a log group's retention setting was removed", ours LogGroup),
    rule!([source(LOGS), name("DeleteSubscriptionFilter")], Low, "a log group's subscription filter was removed", ours LogGroup),
    rule!([source(MONITORING), name("DeleteAlarms")], Critical, "CloudWatch alarms were deleted"),
    rule!([source(MONITORING), name("DisableAlarmActions")], High, "alarm actions were disabled"),
    rule!([source(MONITORING), name("PutMetricAlarm")], Low, "a CloudWatch alarm was created or changed", ours Alarm),
    rule!([source(MONITORING), name("SetAlarmState")], Low, "a CloudWatch alarm's state was set by hand", ours Alarm),
    rule!([source(SNS), name("DeleteTopic")], High, "an SNS topic was deleted (alarms may notify through it)"),
    rule!([source(SNS), name("Unsubscribe")], High, "an SNS subscription was removed"),
    rule!([source(GUARDDUTY), name("DeleteDetector")], Critical, "GuardDuty was switched off: its detector was deleted"),
    rule!([source(GUARDDUTY), name("UpdateDetector"), Field { path: "requestParameters.enable", test: Test::False }], Critical, "GuardDuty was switched off: its detector was disabled"),
    rule!([source(GUARDDUTY), name("DisassociateFromAdministratorAccount")], High, "the account left its GuardDuty administrator: findings no longer reach it"),
    rule!([source(GUARDDUTY), name("DisassociateFromMasterAccount")], High, "the account left its GuardDuty administrator: findings no longer reach it"),
    rule!([source(GUARDDUTY), name("DisassociateMembers")], High, "GuardDuty member accounts were removed from the administrator"),
    rule!([source(GUARDDUTY), name("DeleteMembers")], High, "GuardDuty member accounts were deleted"),
    rule!([source(GUARDDUTY), name("StopMonitoringMembers")], High, "GuardDuty stopped monitoring member accounts"),
    rule!([source(GUARDDUTY), name("CreateFilter"), ARCHIVE], High, "a GuardDuty filter now archives the findings it matches"),
    rule!([source(GUARDDUTY), name("UpdateFilter"), ARCHIVE], High, "a GuardDuty filter now archives the findings it matches"),
    rule!([source(GUARDDUTY), name("DeletePublishingDestination")], High, "GuardDuty stopped exporting findings (publishing destination deleted)"),
    rule!([source(SECURITYHUB), name("DisableSecurityHub")], Critical, "Security Hub was switched off"),
    rule!([source(SECURITYHUB), name("BatchDisableStandards")], High, "Security Hub standards were disabled"),
    rule!([source(SECURITYHUB), name("DisableImportFindingsForProduct")], Medium, "a product's findings no longer reach Security Hub"),
    rule!([source(CONFIG), name("StopConfigurationRecorder")], Critical, "AWS Config stopped recording"),
    rule!([source(CONFIG), name("DeleteConfigurationRecorder")], Critical, "the AWS Config recorder was deleted"),
    rule!([source(CONFIG), name("DeleteDeliveryChannel")], High, "AWS Config's delivery channel was deleted"),
    rule!([source(ACCESS_ANALYZER), name("DeleteAnalyzer")], High, "an IAM Access Analyzer analyzer was deleted"),
    rule!([source(ACCESS_ANALYZER), name("CreateArchiveRule")], Medium, "an Access Analyzer archive rule now hides findings"),
    rule!([source(ACCESS_ANALYZER), name("UpdateArchiveRule")], Medium, "an Access Analyzer archive rule changed (it hides findings)"),
    rule!([source(EC2), name("DeleteFlowLogs")], High, "VPC flow logs were deleted"),
    rule!([source(KMS), name("DisableKey")], Medium, "a KMS key was disabled", ours TrailKey),
    rule!([source(KMS), name("ScheduleKeyDeletion")], Medium, "a KMS key was scheduled for deletion", ours TrailKey),
    rule!([source(S3), name("PutBucketPolicy")], Low, "a bucket policy changed", ours TrailBucket),
    rule!([source(S3), name("DeleteBucketPolicy")], Low, "a bucket policy was removed", ours TrailBucket),
    rule!([source(S3), name("PutBucketLifecycle")], Low, "a bucket's lifecycle (when objects expire) changed", ours TrailBucket),
    rule!([source(S3), name("DeleteBucket")], Low, "a bucket was deleted", ours TrailBucket),
    rule!([source(SQS), name("DeleteQueue")], Low, "an SQS queue was deleted", ours Queue),
    rule!([source(SQS), name("PurgeQueue")], Low, "an SQS queue was purged", ours Queue),
    rule!([source(SQS), name("SetQueueAttributes")], Low, "an SQS queue's attributes (its policy) changed", ours Queue),
    rule!([source(CLOUDFORMATION), name("UpdateStack")], Low, "a CloudFormation stack was updated", ours Stack),
    rule!([source(CLOUDFORMATION), name("ExecuteChangeSet")], Low, "a CloudFormation change set was executed", ours Stack),
    rule!([source(CLOUDFORMATION), name("DeleteStack")], Low, "a CloudFormation stack was deleted", ours Stack),
];

/// Changes to who can reach which account through IAM Identity Center: permission sets and
/// their policies, account assignments, users and groups, the identity source and MFA.
/// Recorded in the Identity Center instance's region; these services are quiet, so each is
/// looked up by its event source.
#[rustfmt::skip]
pub(crate) const IDENTITY_CENTER_RULES: &[Rule] = &[
    rule!([source(SSO), name("CreatePermissionSet")], High, "a new Identity Center permission set"),
    rule!([source(SSO), name("UpdatePermissionSet")], Medium, "an Identity Center permission set changed"),
    rule!([source(SSO), name("DeletePermissionSet")], Medium, "an Identity Center permission set was deleted"),
    rule!([source(SSO), name("ProvisionPermissionSet")], High, "a permission set was provisioned: its permissions now apply in the accounts"),
    rule!([source(SSO), name("AttachManagedPolicyToPermissionSet")], High, "a managed policy was attached to a permission set: new permissions"),
    rule!([source(SSO), name("DetachManagedPolicyFromPermissionSet")], Medium, "a managed policy was detached from a permission set"),
    rule!([source(SSO), name("PutInlinePolicyToPermissionSet")], High, "a permission set's inline policy was set: new permissions"),
    rule!([source(SSO), name("DeleteInlinePolicyFromPermissionSet")], Medium, "a permission set's inline policy was removed"),
    rule!([source(SSO), name("AttachCustomerManagedPolicyReferenceToPermissionSet")], High, "a customer managed policy was attached to a permission set: new permissions"),
    rule!([source(SSO), name("DetachCustomerManagedPolicyReferenceFromPermissionSet")], Medium, "a customer managed policy was detached from a permission set"),
    rule!([source(SSO), name("PutPermissionsBoundaryToPermissionSet")], Medium, "a permission set's permissions boundary was set"),
    rule!([source(SSO), name("DeletePermissionsBoundaryFromPermissionSet")], High, "a permission set's permissions boundary was removed"),
    rule!([source(SSO), name("CreateAccountAssignment")], High, "a user or group was given a permission set in an account: a new way in"),
    rule!([source(SSO), name("DeleteAccountAssignment")], Medium, "an account assignment was removed"),
    rule!([source(SSO), name("AssociateDirectory")], Critical, "Identity Center's identity source changed: whoever runs it decides who signs in"),
    rule!([source(SSO), name("DisassociateDirectory")], Critical, "Identity Center's identity source was disconnected"),
    rule!([source(SSO_DIRECTORY), name("CreateExternalIdPConfigurationForDirectory")], Critical, "an external identity provider was configured for Identity Center"),
    rule!([source(SSO_DIRECTORY), name("UpdateExternalIdPConfigurationForDirectory")], Critical, "Identity Center's external identity provider changed"),
    rule!([source(SSO_DIRECTORY), name("EnableExternalIdPConfigurationForDirectory")], Critical, "an external identity provider now signs users in to Identity Center"),
    rule!([source(SSO_DIRECTORY), name("DisableExternalIdPConfigurationForDirectory")], Critical, "Identity Center's external identity provider was disabled (the identity source changed)"),
    rule!([source(SSO_DIRECTORY), name("DeleteExternalIdPConfigurationForDirectory")], Critical, "Identity Center's external identity provider was deleted"),
    rule!([source(SSO_DIRECTORY), name("PutMfaDeviceManagementForDirectory")], High, "Identity Center's MFA settings changed"),
    rule!([source(IDENTITY_STORE), name("CreateUser")], High, "a new Identity Center user"),
    rule!([source(IDENTITY_STORE), name("UpdateUser")], Medium, "an Identity Center user changed"),
    rule!([source(IDENTITY_STORE), name("DeleteUser")], Medium, "an Identity Center user was deleted"),
    rule!([source(IDENTITY_STORE), name("CreateGroup")], Medium, "a new Identity Center group"),
    rule!([source(IDENTITY_STORE), name("UpdateGroup")], Medium, "an Identity Center group changed"),
    rule!([source(IDENTITY_STORE), name("DeleteGroup")], Medium, "an Identity Center group was deleted"),
    rule!([source(IDENTITY_STORE), name("CreateGroupMembership")], High, "a user joined an Identity Center group: its account assignments"),
    rule!([source(IDENTITY_STORE), name("DeleteGroupMembership")], Medium, "a user left an Identity Center group"),
];

/// Changes to what the organization allows everyone (SCPs, RCPs and the other policy types),
/// which accounts belong to it, and who administers its services. Recorded in us-east-1.
#[rustfmt::skip]
pub(crate) const ORGANIZATIONS_RULES: &[Rule] = &[
    rule!([source(ORGANIZATIONS), name("CreatePolicy")], High, "a new organization policy (SCP, RCP, tag, backup, AI opt-out or declarative)"),
    rule!([source(ORGANIZATIONS), name("UpdatePolicy")], High, "an organization policy changed: what every account under it may do"),
    rule!([source(ORGANIZATIONS), name("DeletePolicy")], Medium, "an organization policy was deleted"),
    rule!([source(ORGANIZATIONS), name("AttachPolicy")], High, "an organization policy was attached: it now caps what the target may do"),
    rule!([source(ORGANIZATIONS), name("DetachPolicy")], High, "an organization policy was detached: a guardrail no longer applies"),
    rule!([source(ORGANIZATIONS), name("EnablePolicyType")], Medium, "an organization policy type was enabled"),
    rule!([source(ORGANIZATIONS), name("DisablePolicyType")], Critical, "an organization policy type was disabled: every policy of that type stopped applying"),
    rule!([source(ORGANIZATIONS), name("InviteAccountToOrganization")], Medium, "an account was invited into the organization"),
    rule!([source(ORGANIZATIONS), name("RemoveAccountFromOrganization")], High, "an account was removed from the organization: its policies no longer apply"),
    rule!([source(ORGANIZATIONS), name("LeaveOrganization")], Critical, "an account left the organization: its SCPs and organization trail no longer apply"),
    rule!([source(ORGANIZATIONS), name("RegisterDelegatedAdministrator")], High, "a delegated administrator was registered for a service"),
    rule!([source(ORGANIZATIONS), name("DeregisterDelegatedAdministrator")], Medium, "a delegated administrator was deregistered"),
    rule!([source(ORGANIZATIONS), name("EnableAWSServiceAccess")], Medium, "a service was given trusted access to the organization"),
    rule!([source(ORGANIZATIONS), name("DisableAWSServiceAccess")], High, "a service lost trusted access to the organization (organization trails, GuardDuty, Config may stop)"),
];

/// The root user acting itself, not an AWS service on its behalf (CIS 4.3's pattern). Tests on
/// the identity, so the poller reads them by LookupEvents' user name `root`.
const ROOT: [Field; 3] = [
    is("userIdentity.type", "Root"),
    Field {
        path: "userIdentity.invokedBy",
        test: Test::Missing,
    },
    Field {
        path: "eventType",
        test: Test::IsNot("AwsServiceEvent"),
    },
];

/// Not a read: `readOnly` false, or absent (older records, sign-ins). CIS 4.3 counts reads too;
/// here they are left out, in both paths: a read changes nothing, the session it belongs to
/// began with a sign-in or a key that is reported, and a tool polling with root keys (the
/// daemon itself, run as root) would otherwise report each of its own polls.
const NOT_READ: [Field; 2] = [
    Field {
        path: "readOnly",
        test: Test::False,
    },
    Field {
        path: "readOnly",
        test: Test::Missing,
    },
];

/// Any use of the root user but reads (CIS 4.3), the most specific first.
#[rustfmt::skip]
pub(crate) const ROOT_RULES: &[Rule] = &[
    rule!([ROOT[0], ROOT[1], ROOT[2], source(IAM_EVENT_SOURCE), name("CreateAccessKey")], Critical, "the root user created an access key (CIS: the root user should have none)"),
    rule!([ROOT[0], ROOT[1], ROOT[2], name("ConsoleLogin"), Field { path: "additionalEventData.MFAUsed", test: Test::IsNot("Yes") }, is("responseElements.ConsoleLogin", "Success")], Critical, "the root user signed in to the console without MFA"),
    rule!([ROOT[0], ROOT[1], ROOT[2], NOT_READ[0]], High, "the root user was used (CIS 4.3: it should not be, day to day)"),
    rule!([ROOT[0], ROOT[1], ROOT[2], NOT_READ[1]], High, "the root user was used (CIS 4.3: it should not be, day to day)"),
];

/// Console sign-ins of IAM users without MFA (CIS 4.2's pattern, field for field).
#[rustfmt::skip]
pub(crate) const CONSOLE_RULES: &[Rule] = &[
    rule!([source(SIGNIN), name("ConsoleLogin"), Field { path: "additionalEventData.MFAUsed", test: Test::IsNot("Yes") }, is("userIdentity.type", "IAMUser"), is("responseElements.ConsoleLogin", "Success")], Medium, "an IAM user signed in to the console without MFA (CIS 4.2)"),
];

/// The groups of listed calls, in the order [`super::classify`] asks them: on a tie in
/// severity the earlier group's verdict is the one reported.
pub const GROUPS: &[Group] = &[
    Group {
        category: Category::Tampering,
        rules: TAMPERING_RULES,
        recorded: Recorded::Watched,
        lookup_by: LookupBy::Call,
    },
    Group {
        category: Category::RootUse,
        rules: ROOT_RULES,
        recorded: Recorded::UsEast1AndWatched,
        lookup_by: LookupBy::RootUser,
    },
    Group {
        category: Category::IdentityCenter,
        rules: IDENTITY_CENTER_RULES,
        recorded: Recorded::IdentityCenter,
        lookup_by: LookupBy::Call,
    },
    Group {
        category: Category::Organizations,
        rules: ORGANIZATIONS_RULES,
        recorded: Recorded::UsEast1,
        lookup_by: LookupBy::Call,
    },
    Group {
        category: Category::ConsoleSignIn,
        rules: CONSOLE_RULES,
        recorded: Recorded::UsEast1AndWatched,
        lookup_by: LookupBy::Call,
    },
];

/// The group of `category`; IAM changes have none (they are defined by what they are not).
pub fn group(category: Category) -> Option<&'static Group> {
    GROUPS.iter().find(|group| group.category == category)
}

/// The exact CIS AWS Foundations Benchmark 4.4 (v1.2.0: 3.4) filter pattern that Security Hub's
/// control CloudWatch.4 ("Ensure a log metric filter and alarm exist for IAM policy changes",
/// <https://docs.aws.amazon.com/securityhub/latest/userguide/cloudwatch-controls.html#cloudwatch-4>)
/// looks for. Security Hub compares the text, not the meaning, so this must stay byte for byte
/// as published (the same text appears in the CIS remediation steps); it covers only 16 policy
/// operations and is offered as an *extra* filter beside [`iam_metric_filter_pattern`](super::iam_metric_filter_pattern).
pub const CIS_4_4_FILTER_PATTERN: &str = "{($.eventName=DeleteGroupPolicy)||($.eventName=DeleteRolePolicy)||($.eventName=DeleteUserPolicy)||($.eventName=PutGroupPolicy)||($.eventName=PutRolePolicy)||($.eventName=PutUserPolicy)||($.eventName=CreatePolicy)||($.eventName=DeletePolicy)||($.eventName=CreatePolicyVersion)||($.eventName=DeletePolicyVersion)||($.eventName=AttachRolePolicy)||($.eventName=DetachRolePolicy)||($.eventName=AttachUserPolicy)||($.eventName=DetachUserPolicy)||($.eventName=AttachGroupPolicy)||($.eventName=DetachGroupPolicy)}";

/// Whether the record is a call to a mutating IAM API, successful or not. Exactly what
/// [`iam_metric_filter_pattern`](super::iam_metric_filter_pattern) matches.
pub fn is_iam_mutation(record: &Record) -> bool {
    is_iam_mutation_name(&record.event_source, &record.event_name)
}

/// [`is_iam_mutation`] on the two fields it reads, for callers that have not parsed a record
/// (`scan` looks at these before paying for the full parse).
pub(crate) fn is_iam_mutation_name(event_source: &str, event_name: &str) -> bool {
    event_source == IAM_EVENT_SOURCE
        && !READ_PREFIXES
            .iter()
            .any(|prefix| event_name.starts_with(prefix))
}

/// Whether the record is one of the [`TAMPERING_RULES`], successful or not. Exactly what
/// the tampering group's filter patterns ([`super::patterns::group_patterns`]) match.
pub fn is_tampering(record: &Record) -> bool {
    group(Category::Tampering).is_some_and(|tampering| tampering.matches(record))
}

/// Whether some rule could match a record with these fields (a superset of
/// [`super::classify`]'s verdict, for callers that have not parsed the record: `scan` looks at
/// these before paying for the full parse).
pub(crate) fn may_match(event_source: &str, event_name: &str, identity_type: Option<&str>) -> bool {
    let agrees = |field: &Field| match (field.path, field.test) {
        ("eventSource", Test::Is(wanted)) => event_source == wanted,
        ("eventName", Test::Is(wanted)) => event_name == wanted,
        ("userIdentity.type", Test::Is(wanted)) => identity_type == Some(wanted),
        _ => true,
    };
    is_iam_mutation_name(event_source, event_name)
        || GROUPS
            .iter()
            .flat_map(|group| group.rules)
            .any(|rule| rule.when.iter().all(agrees))
}

/// The catalogue as JSON for tools outside the crate (the benchmark's jq and Python baselines
/// select what the rules select with it): the IAM rule, then every listed rule's tests as
/// `[path, "is" | "is-not" | "false" | "missing", value]`. `bench/catalogue.json` holds it; a
/// test keeps it current.
#[cfg(test)]
pub(crate) fn catalogue_json() -> Value {
    let rules: Vec<Value> = GROUPS
        .iter()
        .flat_map(|group| {
            group.rules.iter().map(|rule| {
                let tests: Vec<Value> = rule
                    .when
                    .iter()
                    .map(|field| {
                        let (test, value) = match field.test {
                            Test::Is(value) => ("is", Value::from(value)),
                            Test::IsNot(value) => ("is-not", Value::from(value)),
                            Test::False => ("false", Value::Null),
                            Test::Missing => ("missing", Value::Null),
                        };
                        serde_json::json!([field.path, test, value])
                    })
                    .collect();
                serde_json::json!({"category": group.category.as_str(), "when": tests})
            })
        })
        .collect();
    serde_json::json!({
        "iam": {"eventSource": IAM_EVENT_SOURCE, "readPrefixes": READ_PREFIXES},
        "rules": rules,
    })
}

#[cfg(test)]
mod tests {
    use super::super::classify;
    use super::super::testing::iam;
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn the_benchmarks_copy_of_the_catalogue_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/catalogue.json");
        let mut current = serde_json::to_string_pretty(&catalogue_json()).unwrap();
        current.push('\n');
        if std::env::var_os("IAMWATCHD_WRITE_CATALOGUE").is_some() {
            std::fs::write(&path, &current).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == current,
            "bench/catalogue.json is stale: run `IAMWATCHD_WRITE_CATALOGUE=1 cargo test --lib \
             the_benchmarks_copy` and commit it"
        );
    }

    /// Every operation in botocore's IAM model is a read or a mutation as the verb says, so the
    /// negative rule is complete today; a new verb fails this test until a human decides.
    #[test]
    fn every_iam_operation_in_botocore_is_a_read_or_a_mutation() {
        use std::io::Read as _;
        const READ_VERBS: [&str; 4] = ["Get", "List", "Generate", "Simulate"];
        const WRITE_VERBS: [&str; 23] = [
            "Accept",
            "Acquire",
            "Add",
            "Associate",
            "Attach",
            "Change",
            "Create",
            "Deactivate",
            "Delete",
            "Detach",
            "Disable",
            "Enable",
            "Put",
            "Reject",
            "Remove",
            "Reset",
            "Resync",
            "Send",
            "Set",
            "Tag",
            "Untag",
            "Update",
            "Upload",
        ];
        let venv = std::env::var_os("IAMWATCHD_VENV")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"));
        let lib = venv.join("lib");
        let model_dir = std::fs::read_dir(&lib)
            .ok()
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|python| {
                python
                    .path()
                    .join("site-packages/botocore/data/iam/2010-05-08")
            })
            .find(|dir| dir.is_dir())
            .unwrap_or_else(|| {
                panic!(
                    "botocore's IAM model is not under {}: create the venv (./scripts/test does) \
                     or point IAMWATCHD_VENV at one with botocore installed",
                    lib.display()
                )
            });
        let plain = model_dir.join("service-2.json");
        let text = if plain.is_file() {
            std::fs::read_to_string(&plain).expect("read service-2.json")
        } else {
            let gz = model_dir.join("service-2.json.gz");
            let file = std::fs::File::open(&gz).unwrap_or_else(|e| panic!("{}: {e}", gz.display()));
            let mut text = String::new();
            flate2::read::GzDecoder::new(file)
                .read_to_string(&mut text)
                .expect("gunzip service-2.json.gz");
            text
        };
        let model: Value = serde_json::from_str(&text).expect("the IAM model is JSON");
        let operations = model["operations"].as_object().expect("operations");
        let (mut mutations, mut reads) = (0, 0);
        for name in operations.keys() {
            let verb_end = name[1..]
                .find(char::is_uppercase)
                .map_or(name.len(), |i| i + 1);
            let verb = &name[..verb_end];
            let intended_mutation = if READ_VERBS.contains(&verb) {
                false
            } else if WRITE_VERBS.contains(&verb) {
                true
            } else {
                panic!("{name}: the verb {verb:?} is new; decide whether it reads or writes")
            };
            let record = iam(name, json!({}));
            assert_eq!(is_iam_mutation(&record), intended_mutation, "{name}");
            assert_eq!(
                classify(&record, &Default::default()).is_some(),
                intended_mutation,
                "{name}"
            );
            if intended_mutation {
                mutations += 1;
            } else {
                reads += 1;
            }
        }
        println!("botocore IAM model: {mutations} mutating and {reads} read operations");
        assert!(mutations >= 106, "only {mutations} mutating IAM operations");
        assert_eq!(mutations + reads, operations.len());
    }
}
