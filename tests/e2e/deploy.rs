//! `iamwatchd deploy`, the real binary, against the emulator: what an operator runs, and what
//! exists in the account afterwards, checked through each service's own API.

use std::collections::HashMap;

use aws_sdk_cloudformation::Client as CloudFormation;
use serde_json::Value;

use crate::cli::iamwatchd;
use crate::emulator::Emulator;

const STACK: &str = "iamwatchd";
pub(crate) const EMAIL: &str = "admin@example.com";

pub(crate) async fn outputs(cfn: &CloudFormation) -> HashMap<String, String> {
    outputs_of(cfn, STACK).await
}

/// A stack's outputs by key.
pub(crate) async fn outputs_of(cfn: &CloudFormation, stack: &str) -> HashMap<String, String> {
    let stacks = cfn
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .expect("DescribeStacks");
    stacks.stacks()[0]
        .outputs()
        .iter()
        .map(|o| {
            (
                o.output_key().unwrap_or_default().to_owned(),
                o.output_value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Whether the default stack exists and is not deleted.
pub(crate) async fn stack_exists(cfn: &CloudFormation) -> bool {
    match cfn.describe_stacks().stack_name(STACK).send().await {
        Ok(answer) => answer.stacks().iter().any(|s| {
            s.stack_status()
                .is_some_and(|status| status.as_str() != "DELETE_COMPLETE")
        }),
        Err(error) => {
            let message = format!("{:?}", error.into_service_error());
            assert!(message.contains("does not exist"), "{message}");
            false
        }
    }
}

pub(crate) async fn alarm(
    config: &aws_config::SdkConfig,
    name: &str,
) -> aws_sdk_cloudwatch::types::MetricAlarm {
    aws_sdk_cloudwatch::Client::new(config)
        .describe_alarms()
        .alarm_names(name)
        .send()
        .await
        .expect("DescribeAlarms")
        .metric_alarms()
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("alarm {name} exists"))
}

async fn log_group_retention(config: &aws_config::SdkConfig, name: &str) -> Option<i32> {
    aws_sdk_cloudwatchlogs::Client::new(config)
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .expect("DescribeLogGroups")
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(name))
        .expect("the stack's log group exists")
        .retention_in_days()
}

#[tokio::test]
async fn deploy_dry_run_create_no_op_update_and_delete() {
    let emulator = Emulator::start();
    let home = tempfile::tempdir().unwrap();
    let endpoint = Some(emulator.endpoint.as_str());
    let config = emulator.sdk_config().await;
    let cfn = CloudFormation::new(&config);

    // Dry run: the change set is shown, and nothing is left behind.
    let dry = iamwatchd(
        endpoint,
        home.path(),
        &["deploy", "--email", EMAIL, "--dry-run"],
    );
    dry.assert_success();
    assert!(dry.stdout.contains("Trail"), "{}", dry.stdout);
    assert!(dry.stdout.contains("Dry run"), "{}", dry.stdout);
    assert!(!stack_exists(&cfn).await, "a dry run created the stack");

    // Create.
    let created = iamwatchd(endpoint, home.path(), &["deploy", "--email", EMAIL]);
    created.assert_success();
    assert!(
        created.stdout.contains("CREATE_COMPLETE"),
        "{}",
        created.stdout
    );
    assert!(
        !created.stdout.contains('\r'),
        "no spinner when stdout is not a terminal"
    );
    assert!(
        created.stdout.contains("Subscription Confirmation"),
        "{}",
        created.stdout
    );
    let out = outputs(&cfn).await;
    for key in [
        "TopicArn",
        "AlarmName",
        "AlarmArn",
        "LogGroupName",
        "TrailArn",
        "QueueUrl",
        "BucketName",
    ] {
        assert!(out.contains_key(key), "output {key} missing: {out:?}");
        assert!(
            created.stdout.contains(&out[key]),
            "{key} not printed:\n{}",
            created.stdout
        );
    }

    // The trail records every region and global events, validates, and is logging.
    let trail = aws_sdk_cloudtrail::Client::new(&config);
    let trails = trail
        .describe_trails()
        .trail_name_list(&out["TrailArn"])
        .send()
        .await
        .expect("DescribeTrails");
    let described = &trails.trail_list()[0];
    assert_eq!(described.is_multi_region_trail(), Some(true));
    assert_eq!(described.include_global_service_events(), Some(true));
    assert_eq!(described.log_file_validation_enabled(), Some(true));
    assert_eq!(described.s3_bucket_name(), Some(out["BucketName"].as_str()));
    let status = trail
        .get_trail_status()
        .name(&out["TrailArn"])
        .send()
        .await
        .expect("GetTrailStatus");
    assert_eq!(status.is_logging(), Some(true));

    // The metric filter is the rule catalogue's pattern.
    let filters = aws_sdk_cloudwatchlogs::Client::new(&config)
        .describe_metric_filters()
        .log_group_name(&out["LogGroupName"])
        .send()
        .await
        .expect("DescribeMetricFilters");
    let patterns: Vec<_> = filters
        .metric_filters()
        .iter()
        .filter_map(|f| f.filter_pattern())
        .collect();
    assert!(
        patterns.contains(&iamwatchd::rules::iam_metric_filter_pattern().as_str()),
        "{patterns:?}"
    );
    for category in iamwatchd::rules::Category::ALL {
        for pattern in iamwatchd::rules::group_patterns(category) {
            assert!(
                patterns.contains(&pattern.as_str()),
                "every group's filters (tampering is on by default): {patterns:?}"
            );
        }
    }
    assert!(
        !patterns.contains(&iamwatchd::rules::CIS_4_4_FILTER_PATTERN),
        "CIS filter is off by default"
    );
    assert_eq!(
        log_group_retention(&config, &out["LogGroupName"]).await,
        Some(365)
    );

    // The alarm, read through CloudWatch's CBOR protocol.
    let iam_alarm = alarm(&config, &out["AlarmName"]).await;
    assert_eq!(iam_alarm.alarm_arn(), Some(out["AlarmArn"].as_str()));
    assert_eq!(iam_alarm.threshold(), Some(1.0));
    assert_eq!(iam_alarm.period(), Some(300));
    assert_eq!(iam_alarm.evaluation_periods(), Some(1));
    assert_eq!(iam_alarm.treat_missing_data(), Some("notBreaching"));
    assert_eq!(iam_alarm.alarm_actions(), [out["TopicArn"].clone()]);

    // Daemon mode (the default): the alarm topic feeds only the queue; the e-mail
    // subscription, waiting for its confirmation, is on the notifications topic.
    let sns = aws_sdk_sns::Client::new(&config);
    let protocols = |topic: String| {
        let sns = sns.clone();
        async move {
            sns.list_subscriptions_by_topic()
                .topic_arn(topic)
                .send()
                .await
                .expect("ListSubscriptionsByTopic")
                .subscriptions()
                .to_vec()
        }
    };
    let alarm_topic = protocols(out["TopicArn"].clone()).await;
    assert_eq!(
        alarm_topic.iter().map(|s| s.protocol()).collect::<Vec<_>>(),
        [Some("sqs")],
        "humans never get the bare alarm in daemon mode"
    );
    let humans = protocols(out["NotificationTopicArn"].clone()).await;
    let email = humans
        .iter()
        .find(|s| s.protocol() == Some("email"))
        .expect("an e-mail subscription");
    assert_eq!(email.endpoint(), Some(EMAIL));
    assert_eq!(email.subscription_arn(), Some("PendingConfirmation"));

    // The dead-man's switch: the queue's age of oldest message, e-mailed to the humans.
    let switch = alarm(&config, &out["DaemonQueueAgeAlarmName"]).await;
    assert_eq!(switch.namespace(), Some("AWS/SQS"));
    assert_eq!(switch.metric_name(), Some("ApproximateAgeOfOldestMessage"));
    assert_eq!(switch.threshold(), Some(900.0));
    assert_eq!(
        switch.alarm_actions(),
        [out["NotificationTopicArn"].clone()]
    );
    let queue_name = out["QueueUrl"].rsplit('/').next().unwrap();
    assert_eq!(
        switch
            .dimensions()
            .iter()
            .map(|d| (d.name().unwrap(), d.value().unwrap()))
            .collect::<Vec<_>>(),
        [("QueueName", queue_name)]
    );

    // Running it again changes nothing, successfully.
    let again = iamwatchd(endpoint, home.path(), &["deploy", "--email", EMAIL]);
    again.assert_success();
    assert!(again.stdout.contains("No changes"), "{}", again.stdout);

    // Update: settings not given keep their values (the e-mail address here).
    let updated = iamwatchd(
        endpoint,
        home.path(),
        &[
            "deploy",
            "--alarm-threshold",
            "3",
            "--log-retention-days",
            "30",
        ],
    );
    updated.assert_success();
    assert!(
        updated.stdout.contains("UPDATE_COMPLETE"),
        "{}",
        updated.stdout
    );
    assert_eq!(
        alarm(&config, &out["AlarmName"]).await.threshold(),
        Some(3.0)
    );
    assert_eq!(
        log_group_retention(&config, &out["LogGroupName"]).await,
        Some(30)
    );
    assert_eq!(outputs(&cfn).await, out, "an update keeps every resource");

    // Delete: progress, and the bucket the stack created is named as retained.
    let deleted = iamwatchd(endpoint, home.path(), &["deploy", "--delete"]);
    deleted.assert_success();
    assert!(
        deleted.stdout.contains("DELETE_COMPLETE"),
        "{}",
        deleted.stdout
    );
    assert!(
        deleted.stdout.contains(&out["BucketName"]) && deleted.stdout.contains("retained"),
        "{}",
        deleted.stdout
    );
    let key_id = out["KmsKeyArn"].rsplit('/').next().unwrap();
    assert!(
        deleted.stdout.contains(&format!("The KMS key that encrypted the log files (they cannot be read without it), {key_id}, was retained")),
        "{}",
        deleted.stdout
    );
    assert!(
        deleted
            .stdout
            .contains("The S3 bucket with the trail bucket's access logs"),
        "{}",
        deleted.stdout
    );
    assert!(!stack_exists(&cfn).await);
    let gone = iamwatchd(endpoint, home.path(), &["deploy", "--delete"]);
    gone.assert_success();
    assert!(gone.stdout.contains("nothing to delete"), "{}", gone.stdout);
}

#[tokio::test]
async fn failing_create_names_the_resource_and_the_next_run_replaces_the_stack() {
    let emulator = Emulator::start();
    let home = tempfile::tempdir().unwrap();
    let endpoint = Some(emulator.endpoint.as_str());
    let cfn = CloudFormation::new(&emulator.sdk_config().await);

    let failed = iamwatchd(
        endpoint,
        home.path(),
        &["deploy", "--email", EMAIL, "--bucket", "no-such-bucket"],
    );
    failed.assert_failure();
    assert!(
        failed
            .stderr
            .contains("Trail (AWS::CloudTrail::Trail) CREATE_FAILED"),
        "{}",
        failed.stderr
    );
    assert!(
        failed.stderr.contains("no-such-bucket"),
        "{}",
        failed.stderr
    );
    assert!(
        failed.stdout.contains("ROLLBACK_COMPLETE"),
        "{}",
        failed.stdout
    );

    // The rolled-back stack is explained, deleted and created again.
    let replaced = iamwatchd(endpoint, home.path(), &["deploy", "--email", EMAIL]);
    replaced.assert_success();
    assert!(
        replaced.stdout.contains("is in ROLLBACK_COMPLETE"),
        "{}",
        replaced.stdout
    );
    assert!(
        replaced.stdout.contains("no-such-bucket"),
        "the earlier failure is named: {}",
        replaced.stdout
    );
    let stack = cfn
        .describe_stacks()
        .stack_name(STACK)
        .send()
        .await
        .expect("DescribeStacks");
    assert_eq!(
        stack.stacks()[0].stack_status().map(|s| s.as_str()),
        Some("CREATE_COMPLETE")
    );
}

#[tokio::test]
async fn after_deploy_an_iam_change_sets_off_the_alarm_and_its_json_reaches_the_queue() {
    let emulator = Emulator::start();
    let home = tempfile::tempdir().unwrap();
    let config = emulator.sdk_config().await;
    iamwatchd(
        Some(&emulator.endpoint),
        home.path(),
        &[
            "deploy",
            "--email",
            EMAIL,
            "--daemon-queue",
            "true",
            "--alarm-period",
            "10",
        ],
    )
    .assert_success();
    let out = outputs(&CloudFormation::new(&config)).await;

    aws_sdk_iam::Client::new(&config)
        .create_role()
        .role_name("intruder")
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .expect("CreateRole");

    let alarm = loop {
        let body = emulator.next_message(&out["QueueUrl"]).await;
        let envelope: Value = serde_json::from_str(&body).expect("SNS envelope");
        let alarm: Value = serde_json::from_str(envelope["Message"].as_str().expect("Message"))
            .expect("alarm JSON");
        // The tampering alarm shares the topic; this test is about the IAM alarm.
        if alarm["AlarmName"] == out["AlarmName"].as_str() {
            break alarm;
        }
    };
    assert_eq!(alarm["NewStateValue"], "ALARM");
    assert_eq!(alarm["Trigger"]["MetricName"], "IAMChanges");
    assert_eq!(alarm["Trigger"]["Period"], 10);
}
