//! `iamwatchd scan`, the real binary: trail files, LookupEvents history, `--notify` once.

use std::path::Path;

use serde_json::Value;

use crate::cli::{iamwatchd, Run};
use crate::emulator::Emulator;

fn scan(emulator: Option<&Emulator>, home: &Path, args: &[&str]) -> Run {
    let args: Vec<&str> = std::iter::once("scan")
        .chain(args.iter().copied())
        .collect();
    iamwatchd(emulator.map(|e| e.endpoint.as_str()), home, &args)
}

fn json_lines(run: &Run) -> Vec<Value> {
    run.stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

#[test]
fn trail_files_are_scanned_and_a_broken_one_is_named_without_losing_the_rest() {
    let home = tempfile::tempdir().unwrap();
    let data = crate::testdata::dir();
    let data = data.display();
    let output = scan(
        None,
        home.path(),
        &[
            "--json",
            "--files",
            &format!("{data}/trail-files"),
            &format!("{data}/malformed/SerializerTestFileBadJsonFormat.json"),
        ],
    );
    let stderr = &output.stderr;
    assert_eq!(output.code, Some(1), "{stderr}");
    assert!(
        stderr.contains("SerializerTestFileBadJsonFormat.json"),
        "{stderr}"
    );
    let findings = json_lines(&output);
    assert!(findings.len() > 50, "{} findings", findings.len());
    let categories: Vec<&str> = iamwatchd::rules::Category::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert!(findings
        .iter()
        .all(|f| categories.contains(&f["category"].as_str().unwrap_or_default())));
    assert!(findings
        .iter()
        .any(|f| f["eventName"] == "AttachRolePolicy"));
    assert!(
        !findings
            .iter()
            .any(|f| f["eventName"].as_str().unwrap().starts_with("Get")),
        "reads are never findings"
    );
}

#[tokio::test]
async fn since_reads_lookup_events_and_notify_sends_each_finding_once() {
    let emulator = Emulator::start();
    let iam = aws_sdk_iam::Client::new(&emulator.sdk_config().await);
    iam.create_user().user_name("zoe").send().await.unwrap();
    iam.list_users().send().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let output = scan(Some(&emulator), dir.path(), &["--since", "1h", "--json"]);
    assert_eq!(output.code, Some(0), "{output:?}");
    let findings = json_lines(&output);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0]["eventName"], "CreateUser");
    assert_eq!(findings[0]["target"], "user/zoe");
    assert!(emulator.mail().is_empty(), "scan never sends unless asked");

    let config = crate::daemon::write_config(dir.path(), &emulator, "");
    let config = config.to_str().unwrap();
    for _ in 0..2 {
        let output = scan(
            Some(&emulator),
            dir.path(),
            &["--since", "1h", "--json", "--config", config, "--notify"],
        );
        assert_eq!(output.code, Some(0), "{output:?}");
    }
    let mail = emulator.mail();
    assert_eq!(
        mail.len(),
        1,
        "the second scan must not repeat the first one's mail"
    );
    assert!(mail[0].contains("CreateUser"));
}

/// Regression: a mail sent by `scan --files --notify` said the change was detected "by the
/// LookupEvents poller" (the scan's sightings were rendered as the poller's).
#[test]
fn scan_files_notify_says_it_was_detected_by_the_scan() {
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let trail_file = dir.path().join("trail.json");
    std::fs::write(
        &trail_file,
        serde_json::json!({"Records": [{
            "eventVersion": "1.08", "eventID": "3f0c2a52-5d1b-4c4e-9a57-2b1e0c7f4d11",
            "eventTime": "2026-11-30T10:00:00Z", "eventSource": "iam.amazonaws.com",
            "eventName": "CreateUser", "awsRegion": "us-east-1", "readOnly": false,
            "recipientAccountId": "123456789012",
            "userIdentity": {"type": "IAMUser", "userName": "alice",
                "arn": "arn:aws:iam::123456789012:user/alice", "accountId": "123456789012"},
            "requestParameters": {"userName": "from-a-file"}
        }]})
        .to_string(),
    )
    .unwrap();
    let config = crate::daemon::write_config(dir.path(), &emulator, "");
    let output = scan(
        Some(&emulator),
        dir.path(),
        &[
            "--json",
            "--config",
            config.to_str().unwrap(),
            "--notify",
            "--files",
            trail_file.to_str().unwrap(),
        ],
    );
    assert_eq!(output.code, Some(0), "{output:?}");
    let mail = emulator.mail();
    assert_eq!(mail.len(), 1, "{mail:#?}");
    assert!(mail[0].contains("from-a-file"), "{}", mail[0]);
    assert!(mail[0].contains("by `iamwatchd scan`"), "{}", mail[0]);
    assert!(!mail[0].contains("LookupEvents poller"), "{}", mail[0]);
}
