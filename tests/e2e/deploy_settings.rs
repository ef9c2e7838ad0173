//! `iamwatchd deploy`'s settings: the config file layered under the flags, and every problem
//! with them refused before any AWS call.

use aws_sdk_cloudformation::Client as CloudFormation;

use crate::cli::iamwatchd;
use crate::deploy::{alarm, outputs_of, stack_exists, EMAIL};
use crate::emulator::Emulator;

/// `deploy --config`: the stack is made from the file's [aws] and [deploy] sections, and a
/// flag given on the command line wins over the file on that run.
#[tokio::test]
async fn deploy_takes_its_settings_from_the_config_file_and_flags_override_them() {
    let emulator = Emulator::start();
    let home = tempfile::tempdir().unwrap();
    let endpoint = Some(emulator.endpoint.as_str());
    let config = emulator.sdk_config().await;
    let cfn = CloudFormation::new(&config);
    const FILE_STACK: &str = "iamwatchd-from-file";
    let emails = ["ops@example.com", "security@example.com"];
    // Only what deploy reads: no [smtp] or [sns] (the daemon's notifiers) is needed.
    let file = home.path().join("iamwatchd.toml");
    std::fs::write(
        &file,
        format!(
            "[aws]\nregion = \"us-east-1\"\nstack_name = \"{FILE_STACK}\"\n\n[deploy]\n\
             emails = [\"{}\", \"{}\"]\nalarm_threshold = 4\ndaemon_queue = false\n",
            emails[0], emails[1]
        ),
    )
    .unwrap();
    let file = file.to_str().expect("UTF-8 temp path");

    let created = iamwatchd(endpoint, home.path(), &["deploy", "--config", file]);
    created.assert_success();
    assert!(
        created.stdout.contains("CREATE_COMPLETE"),
        "{}",
        created.stdout
    );
    let out = outputs_of(&cfn, FILE_STACK).await;
    assert_eq!(
        alarm(&config, &out["AlarmName"]).await.threshold(),
        Some(4.0)
    );
    let subscriptions = aws_sdk_sns::Client::new(&config)
        .list_subscriptions_by_topic()
        .topic_arn(&out["TopicArn"])
        .send()
        .await
        .expect("ListSubscriptionsByTopic");
    let mut endpoints: Vec<&str> = subscriptions
        .subscriptions()
        .iter()
        .filter(|s| s.protocol() == Some("email"))
        .filter_map(|s| s.endpoint())
        .collect();
    endpoints.sort_unstable();
    assert_eq!(endpoints, emails);
    assert!(
        !subscriptions
            .subscriptions()
            .iter()
            .any(|s| s.protocol() == Some("sqs")),
        "daemon_queue = false in the file: no queue is subscribed"
    );

    // A flag overrides the file's threshold on this run, and nothing else changes.
    let overridden = iamwatchd(
        endpoint,
        home.path(),
        &["deploy", "--config", file, "--alarm-threshold", "2"],
    );
    overridden.assert_success();
    assert!(
        overridden.stdout.contains("UPDATE_COMPLETE"),
        "{}",
        overridden.stdout
    );
    assert_eq!(
        alarm(&config, &out["AlarmName"]).await.threshold(),
        Some(2.0)
    );
    assert_eq!(outputs_of(&cfn, FILE_STACK).await, out);
    assert!(
        !stack_exists(&cfn).await,
        "the file's stack_name was used, not the default"
    );
}

/// Every problem of the file at once, exit 78, and no AWS call (the endpoint is unreachable).
#[test]
fn an_invalid_config_file_lists_every_problem_and_exits_78() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("iamwatchd.toml");
    std::fs::write(
        &file,
        "[deploy]\nemails = [\"admin@example\"]\nalarm_period = 90\nalarm_treshold = 2\n",
    )
    .unwrap();
    let run = iamwatchd(
        Some("http://127.0.0.1:9"),
        home.path(),
        &["deploy", "--config", file.to_str().unwrap()],
    );
    assert_eq!(run.code, Some(78), "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("3 problems"), "{}", run.stderr);
    for expected in [
        "deploy.emails[0]: \"admin@example\"",
        "deploy.alarm_period: must be one of",
        "deploy.alarm_treshold: unknown key; did you mean `deploy.alarm_threshold`?",
    ] {
        assert!(run.stderr.contains(expected), "{expected}:\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("CloudFormation"), "{}", run.stderr);
}

#[test]
fn usage_errors_are_one_paragraph_and_call_nothing() {
    let home = tempfile::tempdir().unwrap();
    // No emulator: an attempt to call AWS would fail differently.
    let unreachable = Some("http://127.0.0.1:9");

    let bad = iamwatchd(
        unreachable,
        home.path(),
        &["deploy", "--email", "admin@example"],
    );
    bad.assert_failure();
    assert!(bad.stderr.contains("\"admin@example\""), "{}", bad.stderr);
    assert!(bad.stderr.contains("e-mail address"), "{}", bad.stderr);

    let region = iamwatchd(
        unreachable,
        home.path(),
        &["deploy", "--email", EMAIL, "--region", "eu-west-1"],
    );
    region.assert_failure();
    assert!(
        region.stderr.contains("us-east-1 only") && region.stderr.contains("--allow-region"),
        "{}",
        region.stderr
    );
}

#[test]
fn missing_credentials_and_an_unreachable_endpoint_are_explained() {
    let home = tempfile::tempdir().unwrap();
    let none = iamwatchd(None, home.path(), &["deploy", "--email", EMAIL]);
    none.assert_failure();
    assert!(
        none.stderr.contains("no AWS credentials found") && none.stderr.contains("AWS_PROFILE"),
        "{}",
        none.stderr
    );

    // A port the kernel just handed out and nothing listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let closed = iamwatchd(Some(&endpoint), home.path(), &["deploy", "--email", EMAIL]);
    closed.assert_failure();
    assert!(
        closed.stderr.contains(&format!(
            "cannot reach the CloudFormation endpoint {endpoint}"
        )),
        "{}",
        closed.stderr
    );
}
