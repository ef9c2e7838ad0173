//! `iamwatchd scan`: the same rules over history, for incident response and audits.
//!
//! Two sources: CloudTrail's own history through LookupEvents (`--since`, up to 90 days, within
//! the same request budget as the daemon), or CloudTrail log files as the trail writes them to S3
//! (`{"Records": [...]}`, `.json` or `.json.gz`, directories walked). Every record goes through the
//! daemon's [`Ruleset`]: same catalogue, severity and allow-list.
//!
//! Files are read record by record: a cheap look at `eventSource`/`eventName` first, and the full
//! tolerant parse only for the few records that can matter, so a scan of gigabytes of trail logs
//! is bound by reading and decompressing, not by building every record.

mod files;
mod run;
mod table;

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub(crate) use files::{read_trail_file, trail_files};
pub use run::{run, ScanFailed, ScanOptions};
pub(crate) use table::{table_header, table_row};

use crate::event::Record;
use crate::rules::Ruleset;
use crate::rules::{self, Classification};

/// A trail file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not UTF-8 text (plain or inside its gzip), its gzip data is truncated or
    /// corrupt, or it is not a JSON object with a `Records` array.
    #[error(
        "{path} is not a CloudTrail log file ({reason}); expected {{\"Records\": [...]}} as \
         CloudTrail writes to S3, plain or gzipped"
    )]
    NotATrailFile {
        /// The file.
        path: PathBuf,
        /// What is wrong: not UTF-8, truncated or corrupt gzip, or the JSON parser's error.
        reason: String,
    },
}

/// One finding: a record the rules report, with their verdict.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Finding {
    /// The record's `eventID`.
    #[serde(rename = "eventID")]
    pub event_id: String,
    /// The record's `eventTime` in RFC 3339; `None` when missing or unreadable.
    #[serde(rename = "eventTime")]
    pub event_time: Option<String>,
    /// `CRITICAL`, `HIGH`, `MEDIUM`, `LOW` or `INFO`.
    pub severity: String,
    /// `iam-change` or `tampering`.
    pub category: &'static str,
    /// True for a failed call (`errorCode` set): an attempt, not a change.
    pub attempt: bool,
    /// The record's `eventName`.
    #[serde(rename = "eventName")]
    pub event_name: String,
    /// What the call acted on, from `requestParameters`: `user/bob`, a policy ARN, …
    pub target: Option<String>,
    /// The caller's ARN, an assumed-role session reduced to its role.
    pub principal: Option<String>,
    /// A short name for the caller: the user, `role/session`, `root`, or the service.
    pub actor: String,
    /// The account the event belongs to: `recipientAccountId`, else the caller's.
    pub account: Option<String>,
    /// The record's `awsRegion`.
    pub region: Option<String>,
    /// The record's `sourceIPAddress`.
    #[serde(rename = "sourceIPAddress")]
    pub source_ip: Option<String>,
    /// The record's `errorCode`; `None` when the call succeeded.
    #[serde(rename = "errorCode")]
    pub error_code: Option<String>,
    /// Why the rules gave this severity.
    pub reason: String,
    /// What a policy change grants (from the documents in the record: a scan reads no
    /// snapshots and no managed policies, so those sides are "unknown").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<crate::analysis::Analysis>,
}

impl Finding {
    /// The finding for `record`, with the rules' verdict on it.
    pub fn new(record: &Record, verdict: &Classification) -> Finding {
        Finding {
            event_id: record.event_id.clone(),
            event_time: record.event_time.map(|t| t.to_rfc3339()),
            severity: verdict.severity.to_string(),
            category: verdict.category.as_str(),
            attempt: verdict.attempt,
            event_name: record.event_name.clone(),
            target: record.target(),
            principal: record.identity.principal(),
            actor: record.identity.display_name(),
            account: record.account().map(str::to_owned),
            region: record.aws_region.clone(),
            source_ip: record.source_ip.clone(),
            error_code: record.error_code.clone(),
            reason: verdict.reason.clone(),
            analysis: None,
        }
    }

    /// The finding for `record` with the analysis of the documents it carries, the severity
    /// adjusted by it; `None` when the rules do not report it.
    pub(crate) fn judged(record: &Record, ruleset: &Ruleset) -> Option<Finding> {
        let analysis = crate::analysis::from_record(record);
        let verdict = ruleset.judge_with(record, analysis.as_ref())?;
        Some(Finding {
            analysis,
            ..Finding::new(record, &verdict)
        })
    }
}

/// Counts for the summary line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Trail files read (0 for a scan of LookupEvents history).
    pub files: usize,
    /// Records read, whether or not they could matter.
    pub records: usize,
    /// Records the rules reported.
    pub findings: usize,
    /// Records without the fields every CloudTrail record has (eventID, eventName, eventSource).
    pub unreadable: usize,
}

/// The fields that decide whether a record can matter, borrowed from the input.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "eventSource", borrow, default)]
    event_source: Option<Cow<'a, str>>,
    #[serde(rename = "eventName", borrow, default)]
    event_name: Option<Cow<'a, str>>,
    #[serde(rename = "userIdentity", borrow, default)]
    identity: Option<HeadIdentity<'a>>,
}

/// The one field of `userIdentity` some rules test before anything else.
#[derive(Deserialize)]
struct HeadIdentity<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct TrailFile<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<&'a RawValue>,
}

/// Whether the rules could report a record with this source and name (a superset of what
/// [`rules::classify`] accepts; the full parse decides).
fn may_matter(head: &Head<'_>) -> bool {
    let (Some(source), Some(name)) = (head.event_source.as_deref(), head.event_name.as_deref())
    else {
        return true; // let the full parse name what is missing
    };
    let kind = head.identity.as_ref().and_then(|i| i.kind.as_deref());
    rules::may_match(source, name, kind)
}

/// Scans the records of one trail file's text, calling `found` for each finding (with its
/// record, for callers that go on to report it); `found` says whether the finding counts (a
/// filter of the caller's may leave it out).
pub(crate) fn scan_text(
    text: &str,
    path: &Path,
    ruleset: &Ruleset,
    tally: &mut Tally,
    found: &mut impl FnMut(&Record, Finding) -> bool,
) -> Result<(), ScanError> {
    let file: TrailFile<'_> = serde_json::from_str(text).map_err(|e| ScanError::NotATrailFile {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    tally.files += 1;
    for raw in file.records {
        tally.records += 1;
        let head: Head<'_> = match serde_json::from_str(raw.get()) {
            Ok(head) => head,
            Err(_) => {
                tally.unreadable += 1;
                continue;
            }
        };
        if !may_matter(&head) {
            continue;
        }
        let record = match Record::parse(raw.get()) {
            Ok(record) => record,
            Err(_) => {
                tally.unreadable += 1;
                continue;
            }
        };
        if let Some(finding) = Finding::judged(&record, ruleset) {
            if found(&record, finding) {
                tally.findings += 1;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::FailedCalls;
    use crate::rules::Severity;

    fn ruleset() -> Ruleset {
        Ruleset {
            allow: Vec::new(),
            failed_calls: FailedCalls::Report,
            min_severity: Severity::Info,
            ours: Default::default(),
        }
    }

    pub(crate) fn scan(text: &str) -> (Vec<Finding>, Tally) {
        let mut findings = Vec::new();
        let mut tally = Tally::default();
        scan_text(
            text,
            Path::new("t.json"),
            &ruleset(),
            &mut tally,
            &mut |_, f| {
                findings.push(f);
                true
            },
        )
        .unwrap();
        (findings, tally)
    }

    #[test]
    fn only_iam_changes_and_tampering_are_findings() {
        let (findings, tally) = scan(
            r#"{"Records": [
              {"eventID": "1", "eventSource": "iam.amazonaws.com", "eventName": "CreateUser",
               "requestParameters": {"userName": "bob"}},
              {"eventID": "2", "eventSource": "iam.amazonaws.com", "eventName": "GetUser"},
              {"eventID": "3", "eventSource": "s3.amazonaws.com", "eventName": "PutObject"},
              {"eventID": "4", "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging"},
              {"eventSource": "iam.amazonaws.com", "eventName": "DeleteUser"}
            ]}"#,
        );
        let names: Vec<_> = findings.iter().map(|f| f.event_name.as_str()).collect();
        assert_eq!(names, ["CreateUser", "StopLogging"]);
        assert_eq!(findings[0].target.as_deref(), Some("user/bob"));
        assert_eq!(findings[1].category, "tampering");
        assert_eq!(
            tally,
            Tally {
                files: 1,
                records: 5,
                findings: 2,
                unreadable: 1
            }
        );
    }

    #[test]
    fn a_file_that_is_not_a_trail_file_is_named() {
        let error = scan_text(
            "[1, 2]",
            Path::new("x.json"),
            &ruleset(),
            &mut Tally::default(),
            &mut |_, _| true,
        )
        .unwrap_err();
        assert!(error.to_string().contains("x.json"), "{error}");
        assert!(error.to_string().contains("Records"), "{error}");
    }

    #[test]
    fn every_corpus_trail_file_scans_and_malformed_ones_are_reported() {
        let root = crate::testdata::dir();
        let walked = trail_files(&[root.join("trail-files"), root.join("malformed")])
            .expect("the test corpus is present (tests/data/cloudtrail)");
        assert_eq!(walked.loops, []);
        let files = walked.files;
        assert!(files.len() > 50);
        let (mut ok, mut bad) = (0, 0);
        let mut tally = Tally::default();
        for file in &files {
            let text = match read_trail_file(file) {
                Ok(text) => text,
                Err(_) => {
                    bad += 1;
                    continue;
                }
            };
            match scan_text(&text, file, &ruleset(), &mut tally, &mut |_, _| true) {
                Ok(()) => ok += 1,
                Err(ScanError::NotATrailFile { .. }) => bad += 1,
                Err(other) => panic!("{other}"),
            }
        }
        assert!(ok > 50, "{ok} files read");
        assert!(
            bad >= 1,
            "SerializerTestFileBadJsonFormat.json must be refused"
        );
        assert!(tally.findings > 0);
    }
}
