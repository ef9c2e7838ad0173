//! The emulator does what the rest of the product relies on, seen through the real SDK.

use std::time::{Duration, Instant};

use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use aws_sdk_cloudtrail::Client as CloudTrail;
use serde_json::{json, Value};

use crate::emulator::{http_request, Emulator, Options};

/// Upper bound for anything asynchronous in the emulator (delivery, alarms); tests wait for a
/// condition and fail with a message when it does not happen in time.
const DEADLINE: Duration = Duration::from_secs(60);

async fn lookup(trail: &CloudTrail, key: LookupAttributeKey, value: &str) -> Vec<Value> {
    let attribute = LookupAttribute::builder()
        .attribute_key(key)
        .attribute_value(value)
        .build()
        .expect("lookup attribute");
    let mut records = Vec::new();
    let mut pages = trail
        .lookup_events()
        .lookup_attributes(attribute)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for event in page.expect("LookupEvents page").events() {
            let text = event.cloud_trail_event().expect("CloudTrailEvent");
            records.push(serde_json::from_str(text).expect("CloudTrailEvent is JSON"));
        }
    }
    records
}

#[tokio::test]
async fn create_user_through_the_sdk_is_found_by_lookup_events() {
    let emulator = Emulator::start();
    let config = emulator.sdk_config().await;
    let iam = aws_sdk_iam::Client::new(&config);
    iam.create_user()
        .user_name("alice")
        .send()
        .await
        .expect("CreateUser");
    // Act as alice (with her own key) so the record names her, not the root.
    let key = iam
        .create_access_key()
        .user_name("alice")
        .send()
        .await
        .expect("CreateAccessKey")
        .access_key
        .expect("access key");
    let as_alice = emulator
        .sdk_config_as(key.access_key_id(), "eu-west-1")
        .await;
    aws_sdk_iam::Client::new(&as_alice)
        .create_user()
        .user_name("bob")
        .send()
        .await
        .expect("CreateUser as alice");

    let trail = CloudTrail::new(&config);
    let records = lookup(&trail, LookupAttributeKey::EventName, "CreateUser").await;
    assert_eq!(records.len(), 2, "{records:#?}");
    // Newest first.
    let bob = &records[0];
    assert_eq!(bob["eventSource"], "iam.amazonaws.com");
    assert_eq!(bob["eventName"], "CreateUser");
    assert_eq!(
        bob["awsRegion"], "us-east-1",
        "IAM is recorded in us-east-1 whatever region the client used"
    );
    assert_eq!(bob["requestParameters"]["userName"], "bob");
    assert_eq!(bob["responseElements"]["user"]["userName"], "bob");
    assert_eq!(bob["userIdentity"]["type"], "IAMUser");
    assert_eq!(bob["userIdentity"]["userName"], "alice");
    assert_eq!(bob["userIdentity"]["accessKeyId"], key.access_key_id());
    assert_eq!(bob["readOnly"], false);
    assert_eq!(bob["eventType"], "AwsApiCall");
    assert_eq!(records[1]["userIdentity"]["type"], "Root");

    // The LookupEvents envelope carries the same eventID and the caller's name.
    let page = trail
        .lookup_events()
        .lookup_attributes(
            LookupAttribute::builder()
                .attribute_key(LookupAttributeKey::Username)
                .attribute_value("alice")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("LookupEvents by Username");
    let event = &page.events()[0];
    assert_eq!(event.event_name(), Some("CreateUser"));
    assert_eq!(event.read_only(), Some("false"));
    assert_eq!(event.event_id(), bob["eventID"].as_str());
    assert!(event
        .resources()
        .iter()
        .any(|r| r.resource_type() == Some("AWS::IAM::User") && r.resource_name() == Some("bob")));
}

#[tokio::test]
async fn failed_iam_calls_are_recorded_with_their_error() {
    let emulator = Emulator::start();
    let config = emulator.sdk_config().await;
    let iam = aws_sdk_iam::Client::new(&config);
    let error = iam
        .delete_user()
        .user_name("nobody")
        .send()
        .await
        .expect_err("deleting a missing user fails");
    assert!(error.into_service_error().is_no_such_entity_exception());

    let records = lookup(
        &CloudTrail::new(&config),
        LookupAttributeKey::EventName,
        "DeleteUser",
    )
    .await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["errorCode"], "NoSuchEntity");
    assert!(records[0]["errorMessage"]
        .as_str()
        .is_some_and(|m| m.contains("nobody")));
}

#[tokio::test]
async fn more_than_two_lookups_per_second_are_throttled() {
    let emulator = Emulator::start_with(Options {
        lookup_rate: 2.0,
        ..Options::default()
    });
    // One attempt per call: the SDK's retries would hide the throttling we want to see.
    let trail = CloudTrail::new(&emulator.sdk_config().await);
    let mut throttled = 0;
    let mut admitted = 0;
    let started = Instant::now();
    for _ in 0..10 {
        match trail.lookup_events().send().await {
            Ok(_) => admitted += 1,
            Err(error) => {
                let error = error.into_service_error();
                assert_eq!(
                    aws_sdk_cloudtrail::error::ProvideErrorMetadata::code(&error),
                    Some("ThrottlingException"),
                    "{error:?}"
                );
                throttled += 1;
            }
        }
    }
    // A sliding one-second window admits at most 2 per started second.
    let bound = 2 * (started.elapsed().as_secs() + 1);
    assert!(
        admitted <= bound,
        "{admitted} admitted within {:?}",
        started.elapsed()
    );
    assert!(throttled > 0, "no ThrottlingException in 10 rapid calls");
    assert_eq!(emulator.counter("lookup_events_throttled"), throttled);
}

#[tokio::test]
async fn lookup_events_rejects_what_the_real_api_rejects() {
    let emulator = Emulator::start();
    let trail = CloudTrail::new(&emulator.sdk_config().await);
    let attribute = |key, value: &str| {
        LookupAttribute::builder()
            .attribute_key(key)
            .attribute_value(value)
            .build()
            .unwrap()
    };
    let two = trail
        .lookup_events()
        .lookup_attributes(attribute(LookupAttributeKey::EventName, "CreateUser"))
        .lookup_attributes(attribute(
            LookupAttributeKey::EventSource,
            "iam.amazonaws.com",
        ))
        .send()
        .await
        .expect_err("two lookup attributes");
    assert!(two
        .into_service_error()
        .is_invalid_lookup_attributes_exception());
    let max = trail
        .lookup_events()
        .max_results(51)
        .send()
        .await
        .expect_err("MaxResults 51");
    assert!(max.into_service_error().is_invalid_max_results_exception());
}

/// Waits for the stack to finish creating and returns its outputs by key.
async fn create_stack(
    cfn: &aws_sdk_cloudformation::Client,
    name: &str,
    body: &str,
) -> std::collections::HashMap<String, String> {
    use aws_sdk_cloudformation::client::Waiters;
    cfn.create_stack()
        .stack_name(name)
        .template_body(body)
        .capabilities(aws_sdk_cloudformation::types::Capability::CapabilityIam)
        .send()
        .await
        .expect("CreateStack");
    cfn.wait_until_stack_create_complete()
        .stack_name(name)
        .wait(DEADLINE)
        .await
        .expect("stack reaches CREATE_COMPLETE");
    crate::deploy::outputs_of(cfn, name).await
}

#[tokio::test]
async fn a_deployed_stack_turns_an_iam_change_into_alarm_json_on_sqs() {
    let emulator = Emulator::start();
    let config = emulator.sdk_config().await;
    let cfn = aws_sdk_cloudformation::Client::new(&config);
    let outputs = create_stack(&cfn, "alarm-path", include_str!("stack.json")).await;
    let queue_url = &outputs["QueueUrl"];

    // The alarm exists as deployed, read through the CBOR protocol of today's CloudWatch SDK.
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let alarms = cloudwatch
        .describe_alarms()
        .alarm_names(&outputs["AlarmName"])
        .send()
        .await
        .expect("DescribeAlarms (rpc-v2-cbor)");
    let alarm = &alarms.metric_alarms()[0];
    assert_eq!(alarm.alarm_arn(), Some(outputs["AlarmArn"].as_str()));
    assert_eq!(alarm.period(), Some(10));
    assert_eq!(alarm.treat_missing_data(), Some("notBreaching"));

    aws_sdk_iam::Client::new(&config)
        .create_user()
        .user_name("intruder")
        .send()
        .await
        .expect("CreateUser");

    let body = emulator.next_message(queue_url).await;
    // Without raw delivery the alarm JSON sits, as a string, in the SNS envelope's Message.
    let envelope: Value = serde_json::from_str(&body).expect("SNS envelope");
    assert_eq!(envelope["Type"], "Notification");
    let alarm: Value =
        serde_json::from_str(envelope["Message"].as_str().expect("Message")).expect("alarm JSON");
    assert_eq!(alarm["AlarmName"], outputs["AlarmName"].as_str());
    assert_eq!(alarm["NewStateValue"], "ALARM");
    assert_eq!(alarm["AlarmDescription"], "IAM changed");
    assert_eq!(alarm["Trigger"]["MetricName"], "IAMChanges");

    // The trail delivered the change itself to the log group the stack created.
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let found = logs
        .filter_log_events()
        .log_group_name(&outputs["LogGroupName"])
        .filter_pattern(r#"{ $.eventName = "CreateUser" }"#)
        .send()
        .await
        .expect("FilterLogEvents");
    assert_eq!(found.events().len(), 1);
}

#[test]
fn the_http_sink_stores_posts_answers_as_scripted_and_verifies_webhooks() {
    let emulator = Emulator::start();
    let sink = emulator.http_url.clone().expect("READY line with http=");
    let post = |path: &str, headers: &[(&str, &str)], body: &str| {
        http_request(&sink, "POST", path, headers, body)
    };

    emulator.http_script(
        "/slack/e2e",
        json!([{"status": 429, "headers": {"Retry-After": "2"}, "body": "rate_limited"}]),
    );
    let limited = post("/slack/e2e", &[], r#"{"text":"first"}"#);
    assert_eq!(
        (limited.status, limited.header("retry-after")),
        (429, Some("2"))
    );
    let accepted = post("/slack/e2e", &[], r#"{"text":"again"}"#);
    assert_eq!((accepted.status, accepted.body.as_str()), (200, "ok"));

    emulator.http_default("/teams", json!({"status": 500}));
    assert_eq!(post("/teams/ops", &[], "{}").status, 500);
    emulator.http_reset();
    assert_eq!(post("/teams/ops", &[], "{}").status, 202);

    // The Standard Webhooks spec's test vector: the signature verifies, the timestamp is old.
    emulator.http_secret("/webhook/e2e", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
    let vector = [
        ("webhook-id", "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk"),
        ("webhook-timestamp", "1649367553"),
        (
            "webhook-signature",
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        ),
    ];
    let body = r#"{"email":"test@example.com","username":"test_user"}"#;
    assert_eq!(post("/webhook/e2e", &vector, body).status, 200);

    let stored = emulator.http_requests();
    let seen: Vec<(u64, &str, u64)> = stored
        .iter()
        .map(|r| {
            let seq = r["seq"].as_u64().unwrap();
            (
                seq,
                r["path"].as_str().unwrap(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, "/slack/e2e", 429),
            (2, "/slack/e2e", 200),
            (3, "/teams/ops", 500),
            (4, "/teams/ops", 202),
            (5, "/webhook/e2e", 200),
        ]
    );
    assert_eq!(stored[0]["body"], r#"{"text":"first"}"#);
    assert_eq!(stored[0]["kind"], "slack");
    assert_eq!(stored[0]["problems"], json!([]), "a valid Slack message");
    assert!(
        !stored[3]["problems"].as_array().unwrap().is_empty(),
        "an empty object is no Teams message"
    );
    let webhook = &stored[4];
    assert_eq!(webhook["signature_verified"], true, "{webhook:#}");
    let problems = webhook["problems"].as_array().unwrap();
    assert!(
        problems.len() == 1
            && problems[0]
                .as_str()
                .unwrap()
                .starts_with("webhook-timestamp"),
        "{webhook:#}"
    );
}
