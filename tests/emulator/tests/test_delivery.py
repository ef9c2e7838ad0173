"""Trail → log group → metric filter → alarm → SNS → SQS, with AWS's alarm JSON at the end."""

from __future__ import annotations

import json
from dataclasses import dataclass

from conftest import wait_for

PATTERN = '{ ($.eventSource = "iam.amazonaws.com") && ($.readOnly IS FALSE) }'
ACCOUNT = "123456789012"


@dataclass
class Pipeline:
    group: str
    alarm: str
    queue_url: str


def build_pipeline(emulator, region: str = "us-east-1", period: int = 10,
                   global_events: bool = True, multi_region: bool = True,
                   topic_key: str | None = None, queue_key: str | None = None) -> Pipeline:
    s3 = emulator.client("s3", region)
    s3.create_bucket(Bucket="trail-bucket") if region == "us-east-1" else s3.create_bucket(
        Bucket="trail-bucket", CreateBucketConfiguration={"LocationConstraint": region})
    logs = emulator.client("logs", region)
    logs.create_log_group(logGroupName="trail-group")
    group_arn = f"arn:aws:logs:{region}:{ACCOUNT}:log-group:trail-group:*"
    trail = emulator.client("cloudtrail", region)
    trail.create_trail(Name="main", S3BucketName="trail-bucket",
                       IsMultiRegionTrail=multi_region, IncludeGlobalServiceEvents=global_events,
                       CloudWatchLogsLogGroupArn=group_arn,
                       CloudWatchLogsRoleArn=f"arn:aws:iam::{ACCOUNT}:role/trail-to-logs")
    trail.start_logging(Name="main")
    logs.put_metric_filter(
        logGroupName="trail-group", filterName="iam-changes", filterPattern=PATTERN,
        metricTransformations=[{"metricName": "IAMChanges", "metricNamespace": "Watch",
                                "metricValue": "1"}])
    sns = emulator.client("sns", region)
    topic = sns.create_topic(
        Name="alarms", Attributes={"KmsMasterKeyId": topic_key} if topic_key else {})["TopicArn"]
    sqs = emulator.client("sqs", region)
    queue_url = sqs.create_queue(
        QueueName="alarm-queue",
        Attributes={"KmsMasterKeyId": queue_key} if queue_key else {})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    emulator.client("cloudwatch", region).put_metric_alarm(
        AlarmName="iam-changes", MetricName="IAMChanges", Namespace="Watch", Statistic="Sum",
        Period=period, EvaluationPeriods=1, Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching",
        AlarmActions=[topic], OKActions=[topic])
    return Pipeline(group="trail-group", alarm="iam-changes", queue_url=queue_url)


def receive_alarm(emulator, pipeline: Pipeline, region: str = "us-east-1") -> dict:
    sqs = emulator.client("sqs", region)

    def one() -> dict | None:
        messages = sqs.receive_message(QueueUrl=pipeline.queue_url, WaitTimeSeconds=1,
                                       MaxNumberOfMessages=1).get("Messages", [])
        if not messages:
            return None
        sqs.delete_message(QueueUrl=pipeline.queue_url,
                           ReceiptHandle=messages[0]["ReceiptHandle"])
        return json.loads(messages[0]["Body"])

    return wait_for(one, "an alarm message on the queue")


def delivered(emulator, group: str, region: str = "us-east-1", pattern: str = "") -> list[dict]:
    events = emulator.client("logs", region).filter_log_events(
        logGroupName=group, filterPattern=pattern)["events"]
    return [json.loads(e["message"]) for e in events]


def test_an_iam_change_travels_to_the_alarm_topic_as_alarm_json(emulator):
    pipeline = build_pipeline(emulator)
    emulator.client("iam").create_user(UserName="mallory")

    envelope = receive_alarm(emulator, pipeline)
    assert envelope["Type"] == "Notification"
    assert envelope["Subject"] == 'ALARM: "iam-changes" in US East (N. Virginia)'
    alarm = json.loads(envelope["Message"])
    assert alarm["AlarmName"] == "iam-changes"
    assert alarm["NewStateValue"] == "ALARM" and alarm["OldStateValue"] == "OK"
    assert alarm["AWSAccountId"] == ACCOUNT
    assert alarm["Region"] == "US East (N. Virginia)"
    assert alarm["AlarmDescription"] is None
    assert alarm["Trigger"]["Period"] == 10 and alarm["Trigger"]["Statistic"] == "SUM"
    assert alarm["Trigger"]["TreatMissingData"] == "notBreaching"
    assert alarm["StateChangeTime"].endswith("+0000") and "." in alarm["StateChangeTime"]
    assert "eventID" not in envelope["Message"], "alarm messages never name the events"

    records = delivered(emulator, pipeline.group, pattern='{ $.eventName = "CreateUser" }')
    assert [r["requestParameters"]["userName"] for r in records] == ["mallory"]
    stream = emulator.client("logs").describe_log_streams(logGroupName=pipeline.group)
    assert [s["logStreamName"] for s in stream["logStreams"]] == [f"{ACCOUNT}_CloudTrail_us-east-1"]

    # notBreaching: once the period passes without changes the alarm returns to OK, so the
    # next burst can alarm again.
    recovered = json.loads(receive_alarm(emulator, pipeline)["Message"])
    assert recovered["NewStateValue"] == "OK" and recovered["OldStateValue"] == "ALARM"


def key_for(emulator, *services: str) -> str:
    """A customer-managed key whose policy lets the account and ``services`` use it."""
    statements = [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                   "Action": "kms:*", "Resource": "*"}]
    statements += [{"Effect": "Allow", "Principal": {"Service": service},
                    "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Resource": "*"}
                   for service in services]
    policy = json.dumps({"Version": "2012-10-17", "Statement": statements})
    return emulator.client("kms").create_key(Policy=policy)["KeyMetadata"]["Arn"]


def test_an_alarm_reaches_a_topic_encrypted_with_a_key_that_lets_cloudwatch_use_it(emulator):
    pipeline = build_pipeline(emulator, topic_key=key_for(emulator, "cloudwatch.amazonaws.com"))
    emulator.client("iam").create_user(UserName="mallory")
    alarm = json.loads(receive_alarm(emulator, pipeline)["Message"])
    assert alarm["NewStateValue"] == "ALARM"
    assert emulator.counters().get("alarm_notifications_refused_by_kms", 0) == 0


def test_an_alarm_never_reaches_a_topic_whose_key_does_not_let_cloudwatch_use_it(emulator):
    for key in (key_for(emulator, "sns.amazonaws.com"), "alias/aws/sns"):
        emulator.control("POST", "reset")
        pipeline = build_pipeline(emulator, topic_key=key)
        emulator.client("iam").create_user(UserName="mallory")
        wait_for(lambda: emulator.counters().get("alarm_notifications_refused_by_kms"),
                 f"the alarm's action refused ({key})")
        alarms = emulator.client("cloudwatch").describe_alarms(AlarmNames=[pipeline.alarm])
        assert alarms["MetricAlarms"][0]["StateValue"] == "ALARM", "the alarm itself fires"
        sqs = emulator.client("sqs")
        assert sqs.receive_message(QueueUrl=pipeline.queue_url).get("Messages") is None
        assert emulator.counters().get("alarm_notifications", 0) == 0


def test_sns_delivers_to_an_encrypted_queue_only_if_the_key_lets_sns_use_it(emulator):
    granted = build_pipeline(emulator, queue_key=key_for(emulator, "sns.amazonaws.com"))
    emulator.client("iam").create_user(UserName="mallory")
    assert json.loads(receive_alarm(emulator, granted)["Message"])["NewStateValue"] == "ALARM"

    for key in (key_for(emulator, "cloudwatch.amazonaws.com"), "alias/aws/sqs"):
        emulator.control("POST", "reset")
        pipeline = build_pipeline(emulator, queue_key=key)
        emulator.client("iam").create_user(UserName="mallory")
        wait_for(lambda: emulator.counters().get("alarm_notifications"), "the alarm published")
        sqs = emulator.client("sqs")
        assert sqs.receive_message(QueueUrl=pipeline.queue_url,
                                   WaitTimeSeconds=1).get("Messages") is None, key


def test_reads_reach_the_log_group_but_do_not_count(emulator):
    pipeline = build_pipeline(emulator)
    emulator.client("iam").list_users()
    wait_for(lambda: delivered(emulator, pipeline.group, pattern='{ $.eventName = "ListUsers" }'),
             "the read in the log group")
    emulator.control("POST", "tick")
    assert emulator.counters().get("metric_datapoints", 0) == 0
    alarms = emulator.client("cloudwatch").describe_alarms(AlarmNames=[pipeline.alarm])
    assert alarms["MetricAlarms"][0]["StateValue"] == "OK"


def test_log_delivery_waits_for_the_log_delay(emulator):
    pipeline = build_pipeline(emulator)
    emulator.settings(log_delay=3600)
    emulator.client("iam").create_group(GroupName="later")
    emulator.control("POST", "tick")
    assert delivered(emulator, pipeline.group, pattern='{ $.eventName = "CreateGroup" }') == []
    trail = emulator.client("cloudtrail")
    assert trail.lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "CreateGroup"}])["Events"], \
        "the lookup path does not wait for log delivery"


def test_a_stopped_trail_delivers_nothing(emulator):
    pipeline = build_pipeline(emulator)
    emulator.client("cloudtrail").stop_logging(Name="main")
    emulator.client("iam").create_group(GroupName="unseen")
    emulator.control("POST", "tick")
    assert delivered(emulator, pipeline.group, pattern='{ $.eventName = "CreateGroup" }') == []


def test_write_only_event_selectors_drop_reads(emulator):
    pipeline = build_pipeline(emulator)
    emulator.client("cloudtrail").put_event_selectors(
        TrailName="main",
        EventSelectors=[{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}])
    emulator.client("iam").list_groups()
    emulator.client("iam").create_group(GroupName="seen")
    wait_for(lambda: delivered(emulator, pipeline.group, pattern='{ $.eventName = "CreateGroup" }'),
             "the write in the log group")
    assert delivered(emulator, pipeline.group, pattern='{ $.eventName = "ListGroups" }') == []


def test_global_events_skip_trails_without_global_service_events(emulator):
    pipeline = build_pipeline(emulator, global_events=False, multi_region=False)
    emulator.client("iam").create_group(GroupName="global")
    emulator.client("sns").create_topic(Name="regional")
    wait_for(lambda: delivered(emulator, pipeline.group, pattern='{ $.eventName = "CreateTopic" }'),
             "the regional event in the log group")
    assert delivered(emulator, pipeline.group, pattern='{ $.eventName = "CreateGroup" }') == []


def test_injected_records_flow_through_the_pipeline(emulator):
    pipeline = build_pipeline(emulator)
    record = {"eventSource": "iam.amazonaws.com", "eventName": "DeactivateMFADevice",
              "readOnly": False, "awsRegion": "us-east-1", "recipientAccountId": ACCOUNT}
    emulator.control("POST", "events", [record], query="retime=1")
    alarm = json.loads(receive_alarm(emulator, pipeline)["Message"])
    assert alarm["NewStateValue"] == "ALARM"


def queue_ages(emulator, queue_name: str, region: str = "us-east-1") -> list[float]:
    cloudwatch = emulator.client("cloudwatch", region)
    from datetime import datetime, timedelta, timezone
    now = datetime.now(timezone.utc)
    stats = cloudwatch.get_metric_statistics(
        Namespace="AWS/SQS", MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": queue_name}],
        StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=1),
        Period=60, Statistics=["Maximum"])
    return [point["Maximum"] for point in stats["Datapoints"]]


def test_queue_age_is_published_and_sets_off_an_alarm_on_a_stalled_consumer(emulator):
    sqs = emulator.client("sqs")
    queue_url = sqs.create_queue(QueueName="stalled")["QueueUrl"]
    sns = emulator.client("sns")
    humans = sns.create_topic(Name="humans")["TopicArn"]
    copy_url = sqs.create_queue(QueueName="humans-copy")["QueueUrl"]
    sns.subscribe(TopicArn=humans, Protocol="sqs",
                  Endpoint=f"arn:aws:sqs:us-east-1:{ACCOUNT}:humans-copy")
    emulator.client("cloudwatch").put_metric_alarm(
        AlarmName="consumer-stalled", Namespace="AWS/SQS",
        MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": "stalled"}], Statistic="Maximum",
        Period=10, EvaluationPeriods=1, Threshold=2,
        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching",
        AlarmActions=[humans])
    # An empty queue's oldest message is 0 seconds old.
    wait_for(lambda: queue_ages(emulator, "stalled"), "a datapoint for the empty queue")
    assert max(queue_ages(emulator, "stalled")) == 0

    sqs.send_message(QueueUrl=queue_url, MessageBody="nobody reads me")
    wait_for(lambda: max(queue_ages(emulator, "stalled")) >= 2, "the message's age growing")

    def alarm_message() -> dict | None:
        for message in sqs.receive_message(QueueUrl=copy_url, WaitTimeSeconds=1).get(
                "Messages", []):
            alarm = json.loads(json.loads(message["Body"])["Message"])
            if alarm["AlarmName"] == "consumer-stalled":
                return alarm
        return None

    alarm = wait_for(alarm_message, "the stalled-consumer alarm on the humans' topic")
    assert alarm["NewStateValue"] == "ALARM"
    assert alarm["Trigger"]["Dimensions"] == [{"value": "stalled", "name": "QueueName"}]
