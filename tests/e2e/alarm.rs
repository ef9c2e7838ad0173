//! The alarm path end to end: `iamwatchd deploy --daemon-queue true` on the emulator, the real
//! `iamwatchd run` reading the stack's queue, and the SMTP sink counting what humans receive.
//! Each change must reach a human once, whichever path saw it first.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudformation::Client as CloudFormation;
use aws_sdk_iam::Client as Iam;
use iamwatchd::event::SeenBy;
use iamwatchd::store::{SeenEvent, Store};
use serde_json::json;

use crate::cli::iamwatchd;
use crate::daemon::{header, mails_about, wait_until, wait_until_within, Daemon, DEADLINE};
use crate::deploy::outputs;
use crate::emulator::{Emulator, Options};

/// The stack's alarm period in these tests (the emulator evaluates alarms every tick).
pub(crate) const PERIOD: u64 = 10;

/// Deploys the stack in daemon mode and returns its outputs.
async fn deploy(emulator: &Emulator, home: &Path) -> HashMap<String, String> {
    iamwatchd(
        Some(&emulator.endpoint),
        home,
        &[
            "deploy",
            "--email",
            "admin@example.com",
            "--daemon-queue",
            "true",
            "--alarm-period",
            &PERIOD.to_string(),
        ],
    )
    .assert_success();
    outputs(&CloudFormation::new(&emulator.sdk_config().await)).await
}

/// An emulator with the stack deployed in daemon mode, and a state directory for the daemon.
struct Deployed {
    emulator: Emulator,
    out: HashMap<String, String>,
    dir: tempfile::TempDir,
    _home: tempfile::TempDir,
}

async fn deployed(options: Options) -> Deployed {
    let emulator = Emulator::start_with(options);
    let home = tempfile::tempdir().unwrap();
    let out = deploy(&emulator, home.path()).await;
    Deployed {
        emulator,
        out,
        dir: tempfile::tempdir().unwrap(),
        _home: home,
    }
}

/// The daemon on the deployed stack's queue and log group, once it is running.
async fn daemon(
    emulator: &Emulator,
    out: &HashMap<String, String>,
    dir: &Path,
    confirm_within: &str,
) -> Daemon {
    let daemon = Daemon::start(emulator, dir, &alarm_config(out, confirm_within));
    daemon.ready().await;
    daemon
}

/// The `[alarm]` section for the stack's outputs.
pub(crate) fn alarm_config(out: &HashMap<String, String>, confirm_within: &str) -> String {
    format!(
        "[alarm]\nqueue_url = \"{}\"\nlog_group = \"{}\"\nlookback_margin = \"30s\"\n\
         confirm_within = \"{confirm_within}\"\n",
        out["QueueUrl"], out["LogGroupName"]
    )
}

/// The IAM alarm's current state.
async fn alarm_state(emulator: &Emulator, name: &str) -> String {
    crate::deploy::alarm(&emulator.sdk_config().await, name)
        .await
        .state_value()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default()
}

/// Waits until the alarm is OK, so the next change sets off a fresh ALARM notification (an
/// alarm that stays in ALARM notifies nobody again).
pub(crate) async fn alarm_ok(emulator: &Emulator, name: &str) {
    let started = Instant::now();
    while alarm_state(emulator, name).await != "OK" {
        assert!(started.elapsed() < DEADLINE, "alarm {name} never OK");
        tokio::time::sleep(Duration::from_millis(200)).await; // condition polling interval
    }
}

/// Waits for the start of an alarm period. The emulator's metric datapoint carries the
/// record's time while its alarm looks only at the current period, so a record delivered
/// to the log group after a delay sets the alarm off only if call and delivery fall in one
/// period: tests with a delivery delay make their call just after a period starts.
pub(crate) async fn start_of_period() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let into = now.as_millis() as u64 % (PERIOD * 1000);
    if into > 1000 {
        tokio::time::sleep(Duration::from_millis(PERIOD * 1000 - into + 100)).await;
    }
}

/// What the daemon's store knows about `event_id`, read beside the running daemon; `None`
/// also while the daemon is still creating the store (polled again by the caller).
pub(crate) fn seen(dir: &Path, event_id: &str) -> Option<SeenEvent> {
    Store::open(&dir.join("state")).ok()?.seen(event_id).ok()?
}

/// The eventID of the only record of the trail's log group whose event name is `name`.
pub(crate) async fn logged_event(
    emulator: &Emulator,
    log_group: &str,
    name: &str,
) -> Option<serde_json::Value> {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&emulator.sdk_config().await);
    let page = logs
        .filter_log_events()
        .log_group_name(log_group)
        .filter_pattern(format!("{{ $.eventName = \"{name}\" }}"))
        .send()
        .await
        .expect("FilterLogEvents");
    page.events()
        .first()
        .map(|e| serde_json::from_str(e.message().unwrap()).unwrap())
}

/// Messages in the queue, visible or in flight.
async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u32 {
    use aws_sdk_sqs::types::QueueAttributeName as Name;
    let answer = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(Name::ApproximateNumberOfMessages)
        .attribute_names(Name::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let attributes = answer.attributes().cloned().unwrap_or_default();
    [
        Name::ApproximateNumberOfMessages,
        Name::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .filter_map(|name| attributes.get(name)?.parse::<u32>().ok())
    .sum()
}

#[tokio::test]
async fn poller_first_the_alarm_only_confirms() {
    let stack = deployed(Options::default()).await;
    let (emulator, out, dir) = (&stack.emulator, &stack.out, &stack.dir);
    let mut daemon = daemon(emulator, out, dir.path(), "30m").await;

    // CloudTrail's two deliveries of one record, made explicit: LookupEvents first (the log
    // group's copy held back), then, once the poller has reported it, the log group's copy.
    let record = json!({
        "eventID": "poller-first-0001", "eventName": "CreateGroup",
        "eventSource": "iam.amazonaws.com", "readOnly": false,
        "awsRegion": "us-east-1", "recipientAccountId": "123456789012",
        "sourceIPAddress": "198.51.100.7",
        "userIdentity": {"type": "IAMUser", "userName": "alice",
            "arn": "arn:aws:iam::123456789012:user/alice", "accountId": "123456789012"},
        "requestParameters": {"groupName": "poller-first"}
    });
    let lookup_only = json!([{"record": record, "lookupDelay": 0, "logDelay": 3600}]);
    let (status, _) = emulator.control("POST", "events?retime=1", &lookup_only.to_string());
    assert_eq!(status, 200);
    let reported = wait_until("the poller's report", || {
        seen(dir.path(), "poller-first-0001")
    })
    .await;
    assert_eq!(reported.first_path, SeenBy::Poller);

    alarm_ok(emulator, &out["AlarmName"]).await;
    start_of_period().await;
    let log_only = json!([{"record": record, "lookupDelay": 3600, "logDelay": 0}]);
    let (status, _) = emulator.control("POST", "events?retime=1", &log_only.to_string());
    assert_eq!(status, 200);
    let confirmed = wait_until("the alarm path's confirmation", || {
        seen(dir.path(), "poller-first-0001").filter(|s| s.confirmed_by_alarm_at.is_some())
    })
    .await;
    assert_eq!(confirmed.first_path, SeenBy::Poller);
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.log());
    let mail = mails_about(emulator, "poller-first");
    assert_eq!(mail.len(), 1, "one mail, the alarm added none: {mail:#?}");
    assert!(mail[0].contains("the LookupEvents poller"));
    assert!(
        daemon.plain_log().contains("confirmed=1"),
        "{}",
        daemon.log()
    );
    assert!(mails_about(emulator, "no matching record").is_empty());
}

#[tokio::test]
async fn alarm_first_reports_with_full_detail_and_the_later_poller_sighting_adds_nothing() {
    // LookupEvents lags two minutes behind the log group: only the alarm path can see it.
    let stack = deployed(Options {
        lookup_delay: 120.0,
        log_delay: 0.5,
        ..Options::default()
    })
    .await;
    let (emulator, out, dir) = (&stack.emulator, &stack.out, &stack.dir);
    let mut daemon = daemon(emulator, out, dir.path(), "30m").await;
    alarm_ok(emulator, &out["AlarmName"]).await;

    start_of_period().await;
    Iam::new(&emulator.sdk_config().await)
        .create_group()
        .group_name("alarm-first")
        .send()
        .await
        .unwrap();
    let mail = wait_until("the alarm path's mail", || {
        mails_about(emulator, "alarm-first").into_iter().next()
    })
    .await;
    let subject = header(&mail, "Subject").unwrap();
    assert!(subject.contains("CreateGroup"), "{subject}");
    assert!(
        mail.contains("the CloudWatch alarm"),
        "detected by the alarm path"
    );
    assert!(mail.contains("127.0.0.1"), "source IP: full detail");
    assert!(mail.contains("us-east-1"), "region: full detail");

    // LookupEvents catches up: the same record (same eventID) becomes visible to the poller.
    let record = logged_event(emulator, &out["LogGroupName"], "CreateGroup")
        .await
        .expect("the record in the log group");
    let event_id = record["eventID"].as_str().unwrap().to_owned();
    assert_eq!(
        seen(dir.path(), &event_id).unwrap().first_path,
        SeenBy::Alarm
    );
    let item = json!([{"record": record, "lookupDelay": 0, "logDelay": 3600}]);
    let (status, _) = emulator.control("POST", "events", &item.to_string());
    assert_eq!(status, 200);
    // The only record LookupEvents shows: the pass that finds it logs it as refetched.
    wait_until("the poller's sighting", || {
        daemon.plain_log().contains("refetched=1").then_some(())
    })
    .await;
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.log());
    assert_eq!(
        mails_about(emulator, "alarm-first").len(),
        1,
        "the poller's sighting added nothing"
    );
    assert_eq!(
        seen(dir.path(), &event_id).unwrap().first_path,
        SeenBy::Alarm
    );
}

#[tokio::test]
async fn changes_while_the_daemon_is_down_wait_in_the_queue_and_are_reported_once() {
    let stack = deployed(Options::default()).await;
    let (emulator, out, dir) = (&stack.emulator, &stack.out, &stack.dir);
    let config = emulator.sdk_config().await;
    let iam = Iam::new(&config);
    let mut daemon = daemon(emulator, out, dir.path(), "30m").await;
    alarm_ok(emulator, &out["AlarmName"]).await;
    iam.create_group()
        .group_name("before")
        .send()
        .await
        .unwrap();
    wait_until("the first change's mail", || {
        (mails_about(emulator, "before").len() == 1).then_some(())
    })
    .await;
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.log());

    alarm_ok(emulator, &out["AlarmName"]).await;
    let alarms_before = emulator.counter("alarm_alarm");
    for name in ["while-down-1", "while-down-2"] {
        iam.create_group().group_name(name).send().await.unwrap();
    }
    wait_until(
        "the ALARM for the changes made while the daemon is down",
        || (emulator.counter("alarm_alarm") > alarms_before).then_some(()),
    )
    .await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let started = Instant::now();
    while queue_depth(&sqs, &out["QueueUrl"]).await == 0 {
        assert!(
            started.elapsed() < DEADLINE,
            "the alarm never reached the queue"
        );
        tokio::time::sleep(Duration::from_millis(200)).await; // condition polling interval
    }
    assert!(emulator.mail().iter().all(|m| !m.contains("while-down")));

    let mut daemon = Daemon::spawn(emulator, dir.path(), &dir.path().join("iamwatchd.toml"));
    let started = Instant::now();
    loop {
        let reported = ["while-down-1", "while-down-2"]
            .iter()
            .all(|name| mails_about(emulator, name).len() == 1);
        if reported && queue_depth(&sqs, &out["QueueUrl"]).await == 0 {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "not reported, or the queue not drained"
        );
        tokio::time::sleep(Duration::from_millis(200)).await; // condition polling interval
    }
    let ids: Vec<String> = ["while-down-1", "while-down-2"]
        .iter()
        .map(|name| {
            let mail = &mails_about(emulator, name)[0];
            header(mail, "Message-ID").unwrap()
        })
        .collect();
    assert_ne!(ids[0], ids[1]);
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.log());
    for name in ["before", "while-down-1", "while-down-2"] {
        assert_eq!(mails_about(emulator, name).len(), 1, "{name} exactly once");
    }
}

#[tokio::test]
async fn an_alarm_without_matching_records_is_reported_as_such_once() {
    let stack = deployed(Options::default()).await;
    let (emulator, out, dir) = (&stack.emulator, &stack.out, &stack.dir);
    let mut daemon = daemon(emulator, out, dir.path(), "30m").await;

    // What CloudWatch would publish for a firing two days ago: the log group holds nothing
    // then. Published twice (SNS may deliver twice) after a message that is not an alarm.
    let alarm = json!({
        "AlarmName": out["AlarmName"],
        "AlarmDescription": null,
        "AWSAccountId": "123456789012",
        "NewStateValue": "ALARM",
        "NewStateReason": "Threshold Crossed: 1 out of the last 1 datapoints [1.0] was greater than or equal to the threshold (1.0).",
        "StateChangeTime": (chrono::Utc::now() - chrono::TimeDelta::days(2))
            .format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
        "Region": "US East (N. Virginia)",
        "AlarmArn": out["AlarmArn"],
        "OldStateValue": "OK",
        "Trigger": {"MetricName": "IAMChanges", "Period": PERIOD, "EvaluationPeriods": 1,
            "TreatMissingData": "- TreatMissingData:                    NotBreaching"},
    });
    let sns = aws_sdk_sns::Client::new(&emulator.sdk_config().await);
    for message in [
        "this is not an alarm".to_owned(),
        alarm.to_string(),
        alarm.to_string(),
    ] {
        sns.publish()
            .topic_arn(&out["TopicArn"])
            .message(message)
            .send()
            .await
            .unwrap();
    }
    let mail = wait_until("the nothing-found mail", || {
        mails_about(emulator, "no matching record found")
            .into_iter()
            .next()
    })
    .await;
    assert!(mail.contains(&out["LogGroupName"]), "names the log group");
    assert!(mail.contains("Threshold Crossed"), "gives the reason");
    assert!(mail.contains("Window"), "gives the window");
    wait_until("both copies processed", || {
        (daemon.log().matches("alarm reconciled").count() >= 2).then_some(())
    })
    .await;
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.log());
    assert_eq!(
        mails_about(emulator, "no matching record found").len(),
        1,
        "the second copy is a duplicate"
    );
    let log = daemon.log();
    assert_eq!(
        log.matches("is not a CloudWatch alarm notification")
            .count(),
        1,
        "the unreadable message is logged once, not spun on:\n{log}"
    );
}

#[tokio::test]
async fn a_deleted_metric_filter_is_critical_and_the_silent_alarm_path_is_noticed() {
    let stack = deployed(Options::default()).await;
    let (emulator, out, dir) = (&stack.emulator, &stack.out, &stack.dir);
    let mut daemon = daemon(emulator, out, dir.path(), "5s").await;
    let config = emulator.sdk_config().await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let filters = logs
        .describe_metric_filters()
        .log_group_name(&out["LogGroupName"])
        .send()
        .await
        .unwrap();
    for filter in filters.metric_filters() {
        logs.delete_metric_filter()
            .log_group_name(&out["LogGroupName"])
            .filter_name(filter.filter_name().unwrap())
            .send()
            .await
            .unwrap();
    }
    // Tampering streams are polled once a minute.
    let tampering = wait_until_within(Duration::from_secs(150), "the tampering mail", || {
        mails_about(emulator, "DeleteMetricFilter")
            .into_iter()
            .next()
    })
    .await;
    let subject = header(&tampering, "Subject").unwrap();
    assert!(
        subject.contains("CRITICAL") && subject.contains("TAMPERING"),
        "{subject}"
    );
    // Blind now: a change reaches the log group but no alarm fires.
    Iam::new(&config)
        .create_group()
        .group_name("unseen-by-the-alarm")
        .send()
        .await
        .unwrap();
    let silent = wait_until("the alarm-path-silent mail", || {
        mails_about(emulator, "alarm path silent")
            .into_iter()
            .next()
    })
    .await;
    assert!(silent.contains("not confirmed"), "{silent}");
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.log());
    assert_eq!(mails_about(emulator, "alarm path silent").len(), 1);
    assert!(daemon.log().contains("alarm path silent"));
}

/// A PutBucketPolicy record as CloudTrail writes it (S3 is not recorded by the emulator), by
/// an IAM user.
fn put_bucket_policy(bucket: &str) -> serde_json::Value {
    json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLEALICE",
            "arn": "arn:aws:iam::123456789012:user/alice", "accountId": "123456789012",
            "accessKeyId": "AKIAEXAMPLEALICE", "userName": "alice"},
        "eventSource": "s3.amazonaws.com", "eventName": "PutBucketPolicy",
        "awsRegion": "us-east-1", "sourceIPAddress": "192.0.2.20", "userAgent": "[aws-cli/2.17.0]",
        "requestParameters": {"bucketName": bucket, "Host": format!("{bucket}.s3.amazonaws.com"),
            "bucketPolicy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": "*", "Action": "s3:DeleteObject", "Resource": format!("arn:aws:s3:::{bucket}/*")}]},
            "policy": ""},
        "responseElements": null,
        "additionalEventData": {"SignatureVersion": "SigV4", "AuthenticationMethod": "AuthHeader",
            "x-amz-id-2": "example", "bytesTransferredIn": 0, "bytesTransferredOut": 0},
        "requestID": "EXAMPLE0123456789", "readOnly": false, "eventType": "AwsApiCall",
        "managementEvent": true, "recipientAccountId": "123456789012", "eventCategory": "Management",
        "resources": [{"accountId": "123456789012", "type": "AWS::S3::Bucket",
            "ARN": format!("arn:aws:s3:::{bucket}")}]
    })
}

#[tokio::test]
async fn tampering_with_our_bucket_and_alarms_is_critical_and_the_same_call_elsewhere_lower() {
    let stack = deployed(Options::default()).await;
    let (emulator, out, dir) = (&stack.emulator, &stack.out, &stack.dir);
    let mut daemon = daemon(emulator, out, dir.path(), "30m").await;
    let alice = emulator.sdk_config_of_new_user("alice").await;

    let records = json!([
        put_bucket_policy(&out["BucketName"]),
        put_bucket_policy("photos")
    ]);
    let (status, answer) = emulator.control("POST", "events", &records.to_string());
    assert_eq!(status, 200, "{answer}");
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&alice);
    cloudwatch
        .put_metric_alarm()
        .alarm_name("web-5xx")
        .namespace("web")
        .metric_name("5xx")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(
            aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanOrEqualToThreshold,
        )
        .send()
        .await
        .unwrap();
    for alarm in [out["AlarmName"].as_str(), "web-5xx"] {
        cloudwatch
            .set_alarm_state()
            .alarm_name(alarm)
            .state_value(aws_sdk_cloudwatch::types::StateValue::Ok)
            .state_reason("nothing to see")
            .send()
            .await
            .unwrap();
    }

    let subject_of = |event: &str, name: &str| {
        let mails: Vec<String> = mails_about(emulator, &format!("Event: {event} "))
            .into_iter()
            .filter(|mail| mail.contains(name))
            .collect();
        (mails.len() == 1).then(|| header(&mails[0], "Subject").unwrap_or_default())
    };
    let cases = [
        (
            "PutBucketPolicy",
            out["BucketName"].as_str(),
            "CRITICAL TAMPERING",
        ),
        ("PutBucketPolicy", "photos", "LOW TAMPERING"),
        (
            "SetAlarmState",
            out["AlarmName"].as_str(),
            "CRITICAL TAMPERING",
        ),
        ("SetAlarmState", "web-5xx", "LOW TAMPERING"),
    ];
    for (event, name, severity) in cases {
        let subject =
            wait_until_within(Duration::from_secs(150), event, || subject_of(event, name)).await;
        assert!(subject.contains(severity), "{event} on {name}: {subject}");
    }
    let ours = mails_about(emulator, "Event: PutBucketPolicy ")
        .into_iter()
        .find(|m| m.contains(&out["BucketName"]))
        .unwrap();
    assert!(ours.contains("the monitoring trail's bucket"), "{ours}");
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.log());
    for (event, name, _) in cases {
        assert!(
            subject_of(event, name).is_some(),
            "{event} on {name}: one mail"
        );
    }
}
