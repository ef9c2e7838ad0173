//! The stack's encryption on the emulator, through the real binary and SDK: `deploy` encrypts
//! every part with the stack's KMS key (or the one `--kms-key` names), an unencrypted stack of
//! the earlier template updates in place without losing an alarm, the alarm still reaches the
//! queue through the encrypted topic, and `check` catches a key policy without the CloudWatch
//! grant (with which the alarm reaches nobody).

use std::collections::HashMap;
use std::path::Path;

use aws_sdk_cloudformation::types::{Capability, Parameter};
use aws_sdk_cloudformation::Client as CloudFormation;
use serde_json::Value;

use crate::cli::{iamwatchd, Run};
use crate::daemon::{wait_until, write_config, DEADLINE};
use crate::deploy::outputs;
use crate::emulator::Emulator;

const EMAIL: &str = "security@example.com";
/// moto's account.
const ACCOUNT: &str = "123456789012";

fn deploy(emulator: &Emulator, home: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["deploy", "--email", EMAIL, "--alarm-period", "10"];
    args.extend_from_slice(extra);
    iamwatchd(Some(&emulator.endpoint), home, &args)
}

/// The key each encrypted part of the stack uses, as its own service reports it.
async fn encryption_of(
    sdk: &aws_config::SdkConfig,
    out: &HashMap<String, String>,
) -> Vec<(&'static str, Option<String>)> {
    let trail = aws_sdk_cloudtrail::Client::new(sdk)
        .get_trail()
        .name(&out["TrailArn"])
        .send()
        .await
        .unwrap();
    let groups = aws_sdk_cloudwatchlogs::Client::new(sdk)
        .describe_log_groups()
        .log_group_name_prefix(&out["LogGroupName"])
        .send()
        .await
        .unwrap();
    let sns = aws_sdk_sns::Client::new(sdk);
    let mut topics = Vec::new();
    for key in ["TopicArn", "NotificationTopicArn"] {
        let attributes = sns
            .get_topic_attributes()
            .topic_arn(&out[key])
            .send()
            .await
            .unwrap();
        topics.push(
            attributes
                .attributes()
                .and_then(|a| a.get("KmsMasterKeyId"))
                .cloned(),
        );
    }
    let name = aws_sdk_sqs::types::QueueAttributeName::KmsMasterKeyId;
    let queue = aws_sdk_sqs::Client::new(sdk)
        .get_queue_attributes()
        .queue_url(&out["QueueUrl"])
        .attribute_names(name.clone())
        .send()
        .await
        .unwrap();
    vec![
        (
            "trail",
            trail
                .trail()
                .and_then(|t| t.kms_key_id())
                .map(str::to_owned),
        ),
        (
            "log group",
            groups.log_groups()[0].kms_key_id().map(str::to_owned),
        ),
        ("alarm topic", topics[0].clone()),
        ("notification topic", topics[1].clone()),
        (
            "queue",
            queue.attributes().and_then(|a| a.get(&name)).cloned(),
        ),
    ]
}

async fn assert_encrypted_with(
    sdk: &aws_config::SdkConfig,
    out: &HashMap<String, String>,
    key: &str,
) {
    for (part, used) in encryption_of(sdk, out).await {
        assert_eq!(used.as_deref(), Some(key), "{part}");
    }
}

/// Takes one alarm message off the queue; `None` when none came within a second.
async fn take_message(emulator: &Emulator, queue_url: &str) -> Option<Value> {
    let body = emulator.receive_one(queue_url, true).await?;
    let envelope: Value = serde_json::from_str(&body).expect("SNS envelope");
    Some(serde_json::from_str(envelope["Message"].as_str().unwrap()).expect("alarm JSON"))
}

/// The next ALARM message of the alarm `name` on the queue (others are taken and dropped).
async fn next_alarm(emulator: &Emulator, queue_url: &str, name: &str) -> Value {
    let started = std::time::Instant::now();
    loop {
        assert!(started.elapsed().as_secs() < 90, "no ALARM of {name}");
        if let Some(alarm) = take_message(emulator, queue_url).await {
            if alarm["AlarmName"] == name && alarm["NewStateValue"] == "ALARM" {
                return alarm;
            }
        }
    }
}

async fn create_role(sdk: &aws_config::SdkConfig, name: &str) {
    aws_sdk_iam::Client::new(sdk)
        .create_role()
        .role_name(name)
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .expect("CreateRole");
}

async fn alarm_state(sdk: &aws_config::SdkConfig, name: &str) -> String {
    let found = aws_sdk_cloudwatch::Client::new(sdk)
        .describe_alarms()
        .alarm_names(name)
        .send()
        .await
        .unwrap();
    found.metric_alarms()[0]
        .state_value()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default()
}

/// `Fn::Sub` texts and the pseudo parameters of a stack named iamwatchd in us-east-1, put in.
fn rendered(value: &Value) -> Value {
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key("Fn::Sub") => Value::String(
            map["Fn::Sub"]
                .as_str()
                .unwrap()
                .replace("${AWS::Partition}", "aws")
                .replace("${AWS::Region}", "us-east-1")
                .replace("${AWS::AccountId}", ACCOUNT)
                .replace("${AWS::StackName}", "iamwatchd"),
        ),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), rendered(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(rendered).collect()),
        other => other.clone(),
    }
}

/// The key policy the template gives the key it creates, for this stack.
fn template_key_policy() -> Value {
    rendered(&iamwatchd::stack::template::template()["Resources"]["Key"]["Properties"]["KeyPolicy"])
}

#[tokio::test]
async fn deploy_encrypts_every_part_and_the_alarm_reaches_the_queue_through_the_encrypted_topic() {
    let emulator = Emulator::start();
    let home = tempfile::tempdir().unwrap();
    let sdk = emulator.sdk_config().await;
    deploy(&emulator, home.path(), &[]).assert_success();
    let out = outputs(&CloudFormation::new(&sdk)).await;
    let key = &out["KmsKeyArn"];
    assert_encrypted_with(&sdk, &out, key).await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let rotation = kms.get_key_rotation_status().key_id(key).send().await;
    assert!(rotation.unwrap().key_rotation_enabled());

    create_role(&sdk, "intruder").await;
    let alarm = next_alarm(&emulator, &out["QueueUrl"], &out["AlarmName"]).await;
    assert_eq!(alarm["Trigger"]["MetricName"], "IAMChanges");
    assert_eq!(emulator.counter("alarm_notifications_refused_by_kms"), 0);
}

#[tokio::test]
async fn check_catches_a_key_policy_without_the_cloudwatch_grant_which_silences_the_alarm() {
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let sdk = emulator.sdk_config().await;
    deploy(&emulator, dir.path(), &[]).assert_success();
    let out = outputs(&CloudFormation::new(&sdk)).await;
    let key = out["KmsKeyArn"].clone();
    let config = write_config(dir.path(), &emulator, "");
    let check = || {
        iamwatchd(
            Some(&emulator.endpoint),
            dir.path(),
            &["check", "--config", config.to_str().unwrap()],
        )
    };

    let intact = check();
    for part in ["trail ", "log group ", "topic ", "queue "] {
        assert!(
            intact.stdout.lines().any(|l| l.starts_with('✓')
                && l.contains(part)
                && l.contains("encrypted with the stack's key")),
            "no ✓ for the {part}encryption: {intact:?}"
        );
    }
    assert!(
        intact.stdout.contains(&format!(
            "✓ key {key}: its policy lets CloudTrail, CloudWatch Logs, SNS and CloudWatch alarms use it"
        )),
        "{intact:?}"
    );

    // Someone "tidies" the key policy and drops the CloudWatch statement.
    let mut policy = template_key_policy();
    policy["Statement"]
        .as_array_mut()
        .unwrap()
        .retain(|s| s["Sid"] != "CloudWatchAlarmsPublishToTheEncryptedTopics");
    let kms = aws_sdk_kms::Client::new(&sdk);
    kms.put_key_policy()
        .key_id(&key)
        .policy_name("default")
        .policy(policy.to_string())
        .send()
        .await
        .expect("PutKeyPolicy");

    let broken = check();
    assert_eq!(broken.code, Some(69), "{broken:?}");
    let line = broken
        .stdout
        .lines()
        .find(|l| l.starts_with('✗') && l.contains("cloudwatch.amazonaws.com"))
        .unwrap_or_else(|| panic!("no ✗ for the CloudWatch grant: {broken:?}"));
    assert!(line.contains("kms:GenerateDataKey, kms:Decrypt"), "{line}");
    assert!(line.contains("nobody hears"), "{line}");
    assert!(
        broken
            .stdout
            .contains("fix: add a statement allowing service principal cloudwatch.amazonaws.com"),
        "{broken:?}"
    );
    assert!(broken.stdout.contains("put-key-policy"), "{broken:?}");

    // And that is what it costs: the alarm fires, its message never reaches the queue.
    create_role(&sdk, "intruder").await;
    wait_until("the alarm's publish refused by KMS", || {
        (emulator.counter("alarm_notifications_refused_by_kms") > 0).then_some(())
    })
    .await;
    // The root-use alarm counts the same call and may be refused first: wait for ours.
    let started = std::time::Instant::now();
    while alarm_state(&sdk, &out["AlarmName"]).await != "ALARM" {
        assert!(
            started.elapsed() < DEADLINE,
            "the IAM changes alarm never fired"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await; // condition polling
    }
    assert!(take_message(&emulator, &out["QueueUrl"]).await.is_none());
}

#[tokio::test]
async fn an_unencrypted_stack_updates_in_place_without_losing_an_alarm() {
    let emulator = Emulator::start();
    let home = tempfile::tempdir().unwrap();
    let sdk = emulator.sdk_config().await;
    let cfn = CloudFormation::new(&sdk);
    let parameter = |key: &str, value: &str| {
        Parameter::builder()
            .parameter_key(key)
            .parameter_value(value)
            .build()
    };
    cfn.create_stack()
        .stack_name("iamwatchd")
        .template_body(include_str!("../data/stack/unencrypted.template.json"))
        .parameters(parameter("NotificationEmail1", EMAIL))
        .parameters(parameter("AlarmPeriodSeconds", "10"))
        .capabilities(Capability::CapabilityIam)
        .send()
        .await
        .expect("CreateStack with the unencrypted template");
    let before = outputs(&cfn).await;
    assert!(!before.contains_key("KmsKeyArn"));
    for (part, used) in encryption_of(&sdk, &before).await {
        assert_eq!(used, None, "{part} is not encrypted yet");
    }

    // An alarm is waiting in the queue when the update starts.
    create_role(&sdk, "before-the-update").await;
    wait_until("the alarm published to the old topic", || {
        (emulator.counter("alarm_notifications") > 0).then_some(())
    })
    .await;

    let updated = deploy(&emulator, home.path(), &[]);
    updated.assert_success();
    assert!(updated.stdout.contains("UPDATE_COMPLETE"), "{updated:?}");
    let after = outputs(&cfn).await;
    for name in [
        "TrailArn",
        "LogGroupName",
        "TopicArn",
        "NotificationTopicArn",
        "QueueUrl",
        "AlarmArn",
        "BucketName",
    ] {
        assert_eq!(after[name], before[name], "{name} was replaced");
    }
    assert_encrypted_with(&sdk, &after, &after["KmsKeyArn"]).await;

    // Not lost: the waiting alarm is still in the (same, now encrypted) queue.
    let waiting = next_alarm(&emulator, &after["QueueUrl"], &after["AlarmName"]).await;
    assert_eq!(waiting["Trigger"]["MetricName"], "IAMChanges");
    // And the next change goes through the encrypted topic.
    let started = std::time::Instant::now();
    while alarm_state(&sdk, &after["AlarmName"]).await != "OK" {
        assert!(
            started.elapsed().as_secs() < 60,
            "the alarm never returned to OK"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    create_role(&sdk, "after-the-update").await;
    next_alarm(&emulator, &after["QueueUrl"], &after["AlarmName"]).await;
    assert_eq!(emulator.counter("alarm_notifications_refused_by_kms"), 0);
}

#[tokio::test]
async fn deploy_with_kms_key_uses_that_key_and_creates_none() {
    let emulator = Emulator::start();
    let home = tempfile::tempdir().unwrap();
    let sdk = emulator.sdk_config().await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let given = kms
        .create_key()
        .description("the security team's key")
        .policy(template_key_policy().to_string())
        .send()
        .await
        .expect("CreateKey");
    let arn = given.key_metadata().unwrap().arn().unwrap().to_owned();
    let keys = || async { kms.list_keys().send().await.unwrap().keys().len() };
    let before = keys().await;

    deploy(&emulator, home.path(), &["--kms-key", &arn]).assert_success();
    let out = outputs(&CloudFormation::new(&sdk)).await;
    assert_eq!(out["KmsKeyArn"], arn);
    assert_encrypted_with(&sdk, &out, &arn).await;
    assert_eq!(keys().await, before, "no key of the stack's own");

    create_role(&sdk, "intruder").await;
    next_alarm(&emulator, &out["QueueUrl"], &out["AlarmName"]).await;
}

#[test]
fn a_stack_name_whose_trail_name_would_be_invalid_is_refused_before_any_call() {
    // No emulator: an AWS call would fail to connect and say so instead.
    let home = tempfile::tempdir().unwrap();
    let run = iamwatchd(
        Some("http://127.0.0.1:9"),
        home.path(),
        &["deploy", "--email", EMAIL, "--stack-name", "s1"],
    );
    run.assert_failure();
    assert!(run.stderr.contains("--stack-name"), "{run:?}");
    assert!(
        run.stderr.contains("CloudTrail takes trail names"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("127.0.0.1"), "{run:?}");
}
