//! `iamwatchd scan`: findings to stdout (a table on a terminal, JSON lines otherwise), problems
//! with inputs to stderr, and with `--notify` each finding the daemon has not already reported
//! is recorded and sent once.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{read_trail_file, scan_text, table_header, table_row, trail_files, Finding};
use super::{ScanError, Tally};
use crate::config::Config;
use crate::daemon::{report_once, DaemonError};
use crate::event::Record;
use crate::notify::render::escaped;
use crate::output::write_to;
use crate::rules::{AllowRule, Ruleset};
use crate::source::cloudtrail::{self, lookup::LookupError};

/// How long `--notify` waits for the notifiers before leaving the rest to the daemon.
const NOTIFY_DEADLINE: Duration = Duration::from_secs(60);

/// What to scan and how to show it.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Look back this far in LookupEvents (at most its retention).
    pub since: Option<Duration>,
    /// Only events up to this time.
    pub until: Option<DateTime<Utc>>,
    /// Only events by this principal (a glob; sessions count as their role).
    pub principal: Option<String>,
    /// CloudTrail log files or directories of them (when `since` is not given).
    pub files: Vec<PathBuf>,
    /// One JSON object per finding even on a terminal.
    pub json: bool,
    /// The region for `since` (else the configuration's, else us-east-1).
    pub region: Option<String>,
    /// Record and send the findings not already reported (needs a configuration).
    pub notify: bool,
}

/// Why a scan failed.
#[derive(Debug, thiserror::Error)]
pub enum ScanFailed {
    /// LookupEvents could not be read.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// The paths to scan could not be listed.
    #[error(transparent)]
    Files(#[from] ScanError),
    /// Writing the findings failed (a closed pipe, a full disk).
    #[error("cannot write the findings: {0}")]
    Output(#[from] std::io::Error),
    /// `--notify` could not record or send.
    #[error(transparent)]
    Notify(#[from] DaemonError),
    /// Some inputs could not be read; the others were scanned.
    #[error("{0} input(s) could not be read (see above)")]
    Inputs(usize),
}

/// Scans as `options` says, with `config`'s rules (allow-list, failed calls, minimum
/// severity), region and budget, and with `--notify` its notifiers and store.
pub async fn run(options: ScanOptions, config: Option<&Config>) -> Result<(), ScanFailed> {
    let ruleset = config.map_or_else(Ruleset::default, |c| c.rules.clone());
    let table = !options.json && std::io::stdout().is_terminal();
    let mut out = std::io::stdout().lock();
    // A reader that went away (`scan … | head`) ends the output quietly, exit status 0; with
    // --notify the scan goes on, so that every finding is still recorded and sent.
    let reading = std::cell::Cell::new(true);
    if table {
        reading.set(write_to(&mut out, format_args!("{}\n", table_header()))?);
    }
    let mut emit = |finding: Finding| -> std::io::Result<bool> {
        if reading.get() {
            reading.set(if table {
                write_to(&mut out, format_args!("{}\n", table_row(&finding)))?
            } else {
                let line = serde_json::to_string(&finding).expect("serialisable");
                write_to(&mut out, format_args!("{line}\n"))?
            });
        }
        Ok(reading.get())
    };
    let by_principal = options.principal.clone().map(|principal| AllowRule {
        principal: Some(principal),
        ..AllowRule::default()
    });
    let wanted = |record: &Record| {
        let in_time = options
            .until
            .is_none_or(|until| record.event_time.is_none_or(|t| t <= until));
        in_time
            && by_principal
                .as_ref()
                .is_none_or(|rule| rule.matches(record))
    };
    let mut tally = Tally::default();
    let mut failed_inputs = 0;
    let mut records: Vec<Record> = Vec::new();
    if let Some(since) = options.since {
        let region = options
            .region
            .clone()
            .or_else(|| config.map(|c| c.aws.region.clone()))
            .unwrap_or_else(|| crate::aws::IAM_EVENTS_REGION.to_owned());
        let rate = config.map_or(crate::config::defaults::REQUESTS_PER_SECOND, |c| {
            c.poller.requests_per_second
        });
        records = cloudtrail::history(&region, since, rate).await?;
        records.retain(|record| wanted(record));
        tally.records = records.len();
        for record in &records {
            if let Some(finding) = Finding::judged(record, &ruleset) {
                tally.findings += 1;
                if !emit(finding)? && !options.notify {
                    break;
                }
            }
        }
    } else {
        let walked = trail_files(&options.files)?;
        for (path, first) in &walked.loops {
            let how = if path.starts_with(first) {
                "a symbolic link loop back to"
            } else {
                "the same directory as"
            };
            eprintln!(
                "iamwatchd scan: {} is {how} {}: read once",
                escaped(&path.to_string_lossy()),
                escaped(&first.to_string_lossy())
            );
        }
        for path in walked.files {
            if !reading.get() && !options.notify {
                break;
            }
            let result = read_trail_file(&path).and_then(|text| {
                let mut write_error = None;
                scan_text(
                    &text,
                    &path,
                    &ruleset,
                    &mut tally,
                    &mut |record, finding| {
                        if !wanted(record) {
                            return false;
                        }
                        if options.notify {
                            records.push(record.clone());
                        }
                        if let Err(error) = emit(finding) {
                            write_error.get_or_insert(error);
                        }
                        true
                    },
                )?;
                Ok(write_error)
            });
            match result {
                Ok(None) => {}
                Ok(Some(error)) => return Err(error.into()),
                Err(error) => {
                    failed_inputs += 1;
                    eprintln!("iamwatchd scan: {error}");
                }
            }
        }
    }
    eprintln!(
        "iamwatchd scan: {} findings in {} records ({} files){}",
        tally.findings,
        tally.records,
        tally.files,
        if tally.unreadable > 0 {
            format!(
                "; {} records lacked eventID/eventName/eventSource",
                tally.unreadable
            )
        } else {
            String::new()
        }
    );
    if let (true, Some(config)) = (options.notify, config) {
        let new = report_once(config, records, NOTIFY_DEADLINE).await?;
        eprintln!("iamwatchd scan: {new} findings were new and have been sent");
    }
    if failed_inputs > 0 {
        return Err(ScanFailed::Inputs(failed_inputs));
    }
    Ok(())
}
