//! `iamwatchd check` and the `/metrics` + `/healthz` listener, the real binary against the
//! emulator.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use crate::cli::{iamwatchd, Run};
use crate::daemon::{mails_about, wait_until, write_config, Daemon};
use crate::emulator::Emulator;

fn check(emulator: &Emulator, config: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["check", "--config", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    iamwatchd(Some(&emulator.endpoint), config.parent().unwrap(), &args)
}

fn deploy(emulator: &Emulator, home: &Path) {
    let run = iamwatchd(
        Some(&emulator.endpoint),
        home,
        &["deploy", "--email", "security@example.com"],
    );
    assert_eq!(run.code, Some(0), "deploy: {run:?}");
}

/// The line of the checklist that starts with `mark` and mentions `what`.
fn line<'a>(run: &'a Run, mark: &str, what: &str) -> Option<&'a str> {
    run.stdout
        .lines()
        .find(|l| l.starts_with(mark) && l.contains(what))
}

/// The recipient clicks the confirmation link of the stack's first e-mail subscription.
async fn confirm_email_subscription(emulator: &Emulator) {
    let cfn = aws_sdk_cloudformation::Client::new(&emulator.sdk_config().await);
    let resources = cfn
        .list_stack_resources()
        .stack_name("iamwatchd")
        .send()
        .await
        .unwrap();
    let arn = resources
        .stack_resource_summaries()
        .iter()
        .find(|r| r.logical_resource_id() == Some("EmailSubscription1"))
        .and_then(|r| r.physical_resource_id())
        .expect("the stack's e-mail subscription");
    let (status, answer) = emulator.control(
        "POST",
        "confirm",
        &serde_json::json!({ "subscription_arn": arn }).to_string(),
    );
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn a_deployed_stack_and_a_reachable_notifier_pass_and_send_test_mails() {
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    deploy(&emulator, dir.path());
    let config = write_config(dir.path(), &emulator, "");

    // Right after deploy, AWS waits for the recipient to confirm the subscription.
    let pending = check(&emulator, &config, &[]);
    assert_eq!(pending.code, Some(69), "{pending:?}");
    assert!(
        line(
            &pending,
            "✗",
            "e-mail subscription security@example.com: pending"
        )
        .is_some(),
        "{pending:?}"
    );
    assert!(
        pending
            .stdout
            .contains("fix: click the link in the e-mail from AWS Notifications"),
        "{pending:?}"
    );

    confirm_email_subscription(&emulator).await;
    let run = check(&emulator, &config, &[]);
    assert_eq!(run.code, Some(0), "{run:?}");
    for what in [
        "configuration",
        "credentials: account",
        "region: us-east-1",
        "stack iamwatchd: CREATE_COMPLETE",
        "trail ",
        "metric filter on ",
        "alarm iamwatchd-",
        "e-mail subscription security@example.com: confirmed",
        "notifier smtp: reachable",
    ] {
        assert!(
            line(&run, "✓", what).is_some(),
            "no ✓ line for {what:?}: {run:?}"
        );
    }
    assert!(!run.stdout.contains('✗'), "{run:?}");
    assert!(run.stdout.ends_with("ready\n"), "{run:?}");
    assert!(mails_about(&emulator, "iamwatchd TEST").is_empty());

    let sent = check(&emulator, &config, &["--send-test"]);
    assert_eq!(sent.code, Some(0), "{sent:?}");
    assert!(
        line(&sent, "✓", "notifier smtp: test message sent").is_some(),
        "{sent:?}"
    );
    let mail = wait_until("the test mail", || {
        mails_about(&emulator, "iamwatchd TEST").into_iter().next()
    })
    .await;
    assert!(mail.contains("TEST MESSAGE"), "{mail}");
}

/// Someone blinds the alarm path: each broken part gets its own ✗ line and fix.
#[tokio::test]
async fn a_tampered_stack_fails_on_each_broken_part() {
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    deploy(&emulator, dir.path());
    confirm_email_subscription(&emulator).await;
    let config = write_config(dir.path(), &emulator, "");
    let sdk = emulator.sdk_config().await;

    let trail = aws_sdk_cloudtrail::Client::new(&sdk);
    trail.stop_logging().name("iamwatchd").send().await.unwrap();
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&sdk);
    cloudwatch
        .disable_alarm_actions()
        .alarm_names("iamwatchd-iam-changes")
        .send()
        .await
        .unwrap();
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let filters = logs.describe_metric_filters().send().await.unwrap();
    for filter in filters.metric_filters() {
        logs.delete_metric_filter()
            .log_group_name(filter.log_group_name().unwrap())
            .filter_name(filter.filter_name().unwrap())
            .send()
            .await
            .unwrap();
    }

    let run = check(&emulator, &config, &[]);
    assert_eq!(run.code, Some(69), "{run:?}");
    for what in [
        "trail arn:aws:cloudtrail:us-east-1:123456789012:trail/iamwatchd: NOT logging",
        "metric filter on iamwatchd-",
        "alarm iamwatchd-iam-changes: actions DISABLED",
    ] {
        assert!(
            line(&run, "✗", what).is_some(),
            "no ✗ line for {what:?}: {run:?}"
        );
    }
    assert!(
        run.stdout.contains("aws cloudtrail start-logging --name"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("aws cloudwatch enable-alarm-actions --alarm-names iamwatchd-iam-changes"),
        "{run:?}"
    );
    assert!(
        line(&run, "✓", "alarm iamwatchd-monitoring-tampering").is_some(),
        "{run:?}"
    );
}

#[test]
fn a_config_with_several_errors_exits_78_listing_all_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("iamwatchd.toml");
    std::fs::write(
        &config,
        r#"
[aws]
region = 42

[poller]
poll_interval = "soon"

[smtp]
host = "mail.example.com"
from = "not an address"
to = []
"#,
    )
    .unwrap();
    let run = iamwatchd(
        None,
        dir.path(),
        &["check", "--config", config.to_str().unwrap()],
    );
    assert_eq!(run.code, Some(78), "{run:?}");
    for key in ["aws.region", "poller.poll_interval", "smtp.to"] {
        assert!(run.stderr.contains(key), "{key} not named: {run:?}");
    }
}

/// Neither problem hides the other: the missing stack names `iamwatchd deploy`, the closed
/// SMTP port names the notifier, and the exit status says "environment not ready".
#[tokio::test]
async fn a_missing_stack_and_an_unreachable_smtp_server_exit_69_with_fixes() {
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let closed = free_port();
    let config = write_config(dir.path(), &emulator, "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("port = {}", emulator.smtp_port.unwrap()),
        &format!("port = {closed}"),
    );
    std::fs::write(&config, text).unwrap();

    let run = check(&emulator, &config, &[]);
    assert_eq!(run.code, Some(69), "{run:?}");
    assert!(line(&run, "✓", "credentials: account").is_some(), "{run:?}");
    assert!(
        line(&run, "✗", "stack iamwatchd: not found").is_some(),
        "{run:?}"
    );
    assert!(run.stdout.contains("fix: run `iamwatchd deploy"), "{run:?}");
    assert!(
        line(&run, "✗", "notifier smtp: not reachable").is_some(),
        "{run:?}"
    );
    assert!(run.stdout.contains("not ready"), "{run:?}");

    // --offline looks at the file only.
    let offline = check(&emulator, &config, &["--offline"]);
    assert_eq!(offline.code, Some(0), "{offline:?}");
}

/// One HTTP/1.1 GET over a plain socket: the status code and the body.
fn get(port: u16, path: &str) -> (u16, String) {
    try_get(port, path).expect("the listener answers")
}

/// [`get`], or `None` while nothing listens on `port` yet.
pub(crate) fn try_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// A port nothing listens on (yet).
pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The value of one sample line of the exposition, e.g. `name{label="x"}`.
pub(crate) fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_a_reported_change_and_health_is_ok() {
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _daemon = Daemon::start(
        &emulator,
        dir.path(),
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let iam = aws_sdk_iam::Client::new(&emulator.sdk_config().await);
    iam.create_user().user_name("mallory").send().await.unwrap();
    wait_until("the mail about CreateUser", || {
        (!mails_about(&emulator, "CreateUser").is_empty()).then_some(())
    })
    .await;

    // The outbox row is marked sent just after the server accepted the mail.
    let metrics = wait_until("the sent counter", || {
        let (status, body) = get(port, "/metrics");
        assert_eq!(status, 200, "{body}");
        (sample(
            &body,
            "iamwatchd_notifications_sent_total{notifier=\"smtp\"}",
        )? >= 1.0)
            .then_some(body)
    })
    .await;
    for series in [
        "iamwatchd_poll_passes_total",
        "iamwatchd_poll_pages_total",
        "iamwatchd_events_reported_total{path=\"poller\"}",
        "iamwatchd_detection_lag_seconds_count{path=\"poller\"}",
        "iamwatchd_store_events{path=\"poller\"}",
        "iamwatchd_store_size_bytes",
        "iamwatchd_store_up",
    ] {
        let value = sample(&metrics, series).unwrap_or_else(|| panic!("{series} in\n{metrics}"));
        assert!(value >= 1.0, "{series} = {value}");
    }
    assert!(metrics.contains("# TYPE iamwatchd_detection_lag_seconds histogram"));

    let (status, body) = get(port, "/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    assert_eq!(get(port, "/nothing").0, 404);
}
