//! The CloudTrail record the rest of the daemon works with, and which watcher saw it.
//!
//! Records come from two places (LookupEvents' `CloudTrailEvent` string and the trail's log
//! group) and from files (`scan`). Real records vary: fields appear, disappear, change type
//! (`readOnly` as `true` or `"true"`), hold `null`, or are hand-edited in test corpora. So a
//! record is read tolerantly from JSON: only `eventID`, `eventName` and `eventSource` are
//! required; everything else degrades to "unknown" rather than failing the record. A record that
//! lacks a required field is an error that names the field — never silently dropped.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::arn;

/// Which watcher saw an event first. The store keeps it per event, metrics count by it, and
/// every message says it (an alarm-path alert means the poller missed the change, which an
/// operator may want to know).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeenBy {
    /// CloudTrail `LookupEvents`, the low-latency path.
    Poller,
    /// The CloudWatch alarm's message, reconciled against the trail's log group.
    Alarm,
    /// `iamwatchd scan --notify`, over LookupEvents history or CloudTrail log files.
    Scan,
}

impl SeenBy {
    /// The name the store and the metrics use: `poller`, `alarm`, `scan`.
    pub fn as_str(self) -> &'static str {
        match self {
            SeenBy::Poller => "poller",
            SeenBy::Alarm => "alarm",
            SeenBy::Scan => "scan",
        }
    }

    /// How a message names the watcher: "detected … by the LookupEvents poller".
    pub fn describe(self) -> &'static str {
        match self {
            SeenBy::Poller => "the LookupEvents poller",
            SeenBy::Alarm => "the CloudWatch alarm",
            SeenBy::Scan => "`iamwatchd scan`",
        }
    }
}

impl fmt::Display for SeenBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SeenBy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        [SeenBy::Poller, SeenBy::Alarm, SeenBy::Scan]
            .into_iter()
            .find(|by| by.as_str() == s)
            .ok_or_else(|| format!("unknown path {s:?}"))
    }
}

/// Why a record could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    /// The text is not JSON; the parser's error.
    #[error("the record is not valid JSON: {0}")]
    Json(String),
    /// The JSON is not an object.
    #[error("the record is not a JSON object")]
    NotAnObject,
    /// A required field is absent, null or empty: `eventID`, `eventName` or `eventSource`.
    #[error("the record has no {0} (a CloudTrail record always has one)")]
    Missing(&'static str),
}

/// One CloudTrail record, read tolerantly. Keeps the original JSON for fields not modelled.
///
/// A text field is `None` when the record lacks it or holds `null` or an empty string.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// `eventID`: unique per event, the dedup key.
    pub event_id: String,
    /// `eventName`: the API call (`CreateUser`).
    pub event_name: String,
    /// `eventSource`: the service called (`iam.amazonaws.com`).
    pub event_source: String,
    /// `eventTime`. `None` when the record's time cannot be read (hand-edited records).
    pub event_time: Option<DateTime<Utc>>,
    /// `awsRegion`: the region the call was made in.
    pub aws_region: Option<String>,
    /// `sourceIPAddress`: the caller's IP address, or an AWS service's name.
    pub source_ip: Option<String>,
    /// `userAgent`: the client the call came from (console, CLI, SDK).
    pub user_agent: Option<String>,
    /// `errorCode`: set when the call failed (`AccessDenied`, `NoSuchEntity`, …).
    pub error_code: Option<String>,
    /// `errorMessage`: the failed call's explanation.
    pub error_message: Option<String>,
    /// `readOnly`. `None` when the record does not say (some services omit `readOnly`).
    pub read_only: Option<bool>,
    /// `recipientAccountId`: the account the event belongs to.
    pub recipient_account: Option<String>,
    /// `userIdentity`: who made the call.
    pub identity: Identity,
    /// `requestParameters` as recorded; `Value::Null` when absent.
    pub request_parameters: Value,
    /// `responseElements` as recorded; `Value::Null` when absent.
    pub response_elements: Value,
    /// `sessionCredentialFromConsole`, or a console user agent.
    pub from_console: bool,
    /// The whole record as read.
    pub raw: Value,
}

/// `userIdentity`, with the parts a human needs to know who acted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// `IAMUser`, `AssumedRole`, `Root`, `AWSService`, `FederatedUser`, … as recorded.
    pub kind: Option<String>,
    /// `arn`: the caller's ARN (for a session, its `assumed-role/ROLE/SESSION` ARN).
    pub arn: Option<String>,
    /// `accountId`: the caller's account.
    pub account: Option<String>,
    /// `accessKeyId`: the access key the call was signed with.
    pub access_key_id: Option<String>,
    /// `userName`: the caller's user name, when the record gives one.
    pub user_name: Option<String>,
    /// For sessions: the role (or user) the session was issued for, with its path.
    pub issuer_arn: Option<String>,
    /// For sessions: the issuer's name (`sessionContext.sessionIssuer.userName`).
    pub issuer_name: Option<String>,
    /// For assumed roles: the session name (often a person or a CI job).
    pub session_name: Option<String>,
    /// `sessionContext.attributes.mfaAuthenticated`; `None` when the record does not say.
    pub mfa_authenticated: Option<bool>,
    /// `invokedBy` (an AWS service acting for the principal).
    pub invoked_by: Option<String>,
}

impl Identity {
    /// The principal a policy would name: an assumed-role session is normalised to its role, so
    /// a CI role is one principal, not one per session.
    pub(crate) fn principal(&self) -> Option<String> {
        if self.kind.as_deref() == Some("AssumedRole") {
            if let Some(issuer) = &self.issuer_arn {
                return Some(issuer.clone());
            }
            return self.arn.as_deref().and_then(arn::role_of_session);
        }
        self.arn.clone()
    }

    /// A short human name: the user, the role and session, "root", or the service.
    pub(crate) fn display_name(&self) -> String {
        match self.kind.as_deref() {
            Some("Root") => "root".to_owned(),
            Some("AssumedRole") => {
                let role = self.issuer_name.clone().or_else(|| {
                    self.arn
                        .as_deref()
                        .and_then(|a| a.split('/').nth(1).map(str::to_owned))
                });
                match (role, &self.session_name) {
                    (Some(role), Some(session)) => format!("{role}/{session}"),
                    (Some(role), None) => role,
                    (None, Some(session)) => session.clone(),
                    (None, None) => "an assumed role".to_owned(),
                }
            }
            Some("AWSService") => self
                .invoked_by
                .clone()
                .unwrap_or_else(|| "an AWS service".to_owned()),
            _ => self
                .user_name
                .clone()
                .or_else(|| self.arn.as_deref().map(|a| arn::last_segment(a).to_owned()))
                .or_else(|| self.kind.clone())
                .unwrap_or_else(|| "unknown principal".to_owned()),
        }
    }
}

fn text(value: &Value, key: &str) -> Option<String> {
    match value.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn flag(value: &Value, key: &str) -> Option<bool> {
    match value.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Reads `2023-07-10T12:20:31Z`, with fractions or offsets, and the `2023-07-10 12:20:31` form
/// seen in hand-edited records.
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|t| t.and_utc())
}

impl Identity {
    fn from_json(value: &Value) -> Identity {
        let session = value.get("sessionContext").unwrap_or(&Value::Null);
        let issuer = session.get("sessionIssuer").unwrap_or(&Value::Null);
        let attributes = session.get("attributes").unwrap_or(&Value::Null);
        let arn = text(value, "arn");
        let session_name = match text(value, "type").as_deref() {
            Some("AssumedRole") => arn
                .as_deref()
                .and_then(|a| a.split_once(":assumed-role/"))
                .and_then(|(_, rest)| rest.split_once('/'))
                .map(|(_, session)| session.to_owned()),
            _ => None,
        };
        Identity {
            kind: text(value, "type"),
            arn,
            account: text(value, "accountId"),
            access_key_id: text(value, "accessKeyId"),
            user_name: text(value, "userName"),
            issuer_arn: text(issuer, "arn"),
            issuer_name: text(issuer, "userName"),
            session_name,
            mfa_authenticated: flag(attributes, "mfaAuthenticated"),
            invoked_by: text(value, "invokedBy"),
        }
    }
}

impl Record {
    /// Parses one record from its JSON text (LookupEvents' `CloudTrailEvent`, a log event).
    pub fn parse(json: &str) -> Result<Record, RecordError> {
        let value: Value =
            serde_json::from_str(json).map_err(|e| RecordError::Json(e.to_string()))?;
        Record::from_json(value)
    }

    /// Reads a record from parsed JSON.
    pub fn from_json(value: Value) -> Result<Record, RecordError> {
        if !value.is_object() {
            return Err(RecordError::NotAnObject);
        }
        let required = |key: &'static str| text(&value, key).ok_or(RecordError::Missing(key));
        let user_agent = text(&value, "userAgent");
        let from_console = flag(&value, "sessionCredentialFromConsole").unwrap_or(false)
            || user_agent
                .as_deref()
                .is_some_and(|ua| ua.contains("console.amazonaws.com") || ua == "AWS Internal");
        Ok(Record {
            event_id: required("eventID")?,
            event_name: required("eventName")?,
            event_source: required("eventSource")?,
            event_time: text(&value, "eventTime").as_deref().and_then(parse_time),
            aws_region: text(&value, "awsRegion"),
            source_ip: text(&value, "sourceIPAddress"),
            user_agent,
            error_code: text(&value, "errorCode"),
            error_message: text(&value, "errorMessage"),
            read_only: flag(&value, "readOnly"),
            recipient_account: text(&value, "recipientAccountId"),
            identity: Identity::from_json(value.get("userIdentity").unwrap_or(&Value::Null)),
            request_parameters: value
                .get("requestParameters")
                .cloned()
                .unwrap_or(Value::Null),
            response_elements: value
                .get("responseElements")
                .cloned()
                .unwrap_or(Value::Null),
            from_console,
            raw: value,
        })
    }

    /// The account the event belongs to: the recipient, else the caller's.
    pub fn account(&self) -> Option<&str> {
        self.recipient_account
            .as_deref()
            .or(self.identity.account.as_deref())
    }

    /// Whether the call failed (AccessDenied, NoSuchEntity, …): an attempt, not a change.
    pub fn failed(&self) -> bool {
        self.error_code.is_some()
    }

    /// The thing the call acted on, from the request: `user/bob`, `role/ci`, a policy ARN, …
    pub fn target(&self) -> Option<String> {
        const TARGETS: [(&str, &str); 12] = [
            ("userName", "user/"),
            ("roleName", "role/"),
            ("groupName", "group/"),
            ("instanceProfileName", "instance-profile/"),
            ("policyArn", ""),
            ("openIDConnectProviderArn", ""),
            ("sAMLProviderArn", ""),
            ("serialNumber", ""),
            ("accessKeyId", "access-key/"),
            ("name", ""),
            ("trailName", "trail/"),
            ("logGroupName", "log-group/"),
        ];
        TARGETS.iter().find_map(|(key, prefix)| {
            text(&self.request_parameters, key).map(|v| format!("{prefix}{v}"))
        })
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    const ASSUMED: &str = r#"{
        "eventVersion": "1.08", "eventID": "e1", "eventName": "AttachRolePolicy",
        "eventSource": "iam.amazonaws.com", "eventTime": "2023-07-10T12:20:31Z",
        "awsRegion": "us-east-1", "readOnly": "false", "recipientAccountId": "111122223333",
        "userIdentity": {"type": "AssumedRole",
            "arn": "arn:aws:sts::111122223333:assumed-role/ci-deployer/build-42",
            "accountId": "111122223333",
            "sessionContext": {"sessionIssuer": {"type": "Role",
                "arn": "arn:aws:iam::111122223333:role/ops/ci-deployer", "userName": "ci-deployer"},
                "attributes": {"mfaAuthenticated": "true"}}},
        "requestParameters": {"roleName": "app", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
        "sessionCredentialFromConsole": "true"
    }"#;

    #[test]
    fn assumed_role_sessions_are_one_principal_the_role() {
        let record = Record::parse(ASSUMED).unwrap();
        assert_eq!(
            record.identity.principal().as_deref(),
            Some("arn:aws:iam::111122223333:role/ops/ci-deployer")
        );
        assert_eq!(record.identity.display_name(), "ci-deployer/build-42");
        assert_eq!(record.identity.mfa_authenticated, Some(true));
        assert_eq!(record.read_only, Some(false));
        assert!(record.from_console);
        assert_eq!(record.target().as_deref(), Some("role/app"));
    }

    #[test]
    fn seen_by_reads_back_what_it_writes_and_serialises_in_lowercase() {
        for by in [SeenBy::Poller, SeenBy::Alarm, SeenBy::Scan] {
            assert_eq!(by.as_str().parse::<SeenBy>(), Ok(by));
            assert_eq!(serde_json::to_string(&by).unwrap(), format!("\"{by}\""));
        }
        assert!("lookup".parse::<SeenBy>().is_err());
        assert_eq!(SeenBy::Alarm.describe(), "the CloudWatch alarm");
    }

    #[test]
    fn missing_required_fields_are_named() {
        assert_eq!(
            Record::parse(r#"{"eventID": "x", "eventSource": "iam.amazonaws.com"}"#),
            Err(RecordError::Missing("eventName"))
        );
        assert_eq!(Record::parse("[1]"), Err(RecordError::NotAnObject));
        assert!(matches!(Record::parse("{"), Err(RecordError::Json(_))));
    }

    #[test]
    fn hand_edited_times_and_null_fields_degrade_instead_of_failing() {
        let record = Record::parse(
            r#"{"eventID": "12345", "eventName": "CreateUser", "eventSource": "iam.amazonaws.com",
                "eventTime": "2021-01-01 10:00:00", "userIdentity": null, "readOnly": null,
                "requestParameters": null}"#,
        )
        .unwrap();
        assert_eq!(
            record.event_time,
            Some("2021-01-01T10:00:00Z".parse().unwrap())
        );
        assert_eq!(record.identity, Identity::default());
        assert_eq!(record.identity.display_name(), "unknown principal");
        assert_eq!(record.read_only, None);
        assert_eq!(record.target(), None);
    }

    #[test]
    fn every_record_in_the_corpus_reads_or_names_what_is_missing() {
        let corpus = crate::testdata::records_text();
        let mut read = 0;
        for line in corpus.lines().filter(|l| !l.trim().is_empty()) {
            match Record::parse(line) {
                Ok(record) => {
                    assert!(!record.event_name.is_empty());
                    read += 1;
                }
                Err(RecordError::Missing(_)) => {}
                Err(other) => panic!("{other} in {line}"),
            }
        }
        assert!(read > 4_000, "only {read} records read");
    }
}
