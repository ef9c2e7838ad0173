"""KMS keys in stacks and the encryption of what iamwatchd's stack holds: the key and its policy,
KmsKeyId on the log group, KMSKeyId on the trail, KmsMasterKeyId on topics and queues (created
and updated in place), versioning and access logging on buckets, and the key-policy checks
CloudTrail and CloudWatch Logs make."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import boto3

from cfn_support import (
    REGION,
    STACK,
    Aws,
    create,
    execute_change_set,
    failure,
    project_template,
)

EMAIL = "admin@example.com"
#: The project's stack as it was shipped before it was encrypted (tests/data/stack/README.md).
UNENCRYPTED = pathlib.Path(__file__).resolve().parents[3] / "tests/data/stack/unencrypted.template.json"


def kms() -> Any:
    return boto3.client("kms", region_name=REGION)


def encryption_of(aws: Aws, outputs: dict[str, str]) -> dict[str, str | None]:
    """The key each part of the stack is encrypted with, as each service reports it."""
    trail = aws.cloudtrail.get_trail(Name=outputs["TrailArn"])["Trail"]
    (group,) = aws.logs.describe_log_groups(logGroupNamePrefix=outputs["LogGroupName"])["logGroups"]
    queue = aws.sqs.get_queue_attributes(QueueUrl=outputs["QueueUrl"], AttributeNames=["All"])
    return {
        "trail": trail.get("KmsKeyId"),
        "log group": group.get("kmsKeyId"),
        "topic": aws.sns.get_topic_attributes(TopicArn=outputs["TopicArn"])["Attributes"].get(
            "KmsMasterKeyId"),
        "notification topic": aws.sns.get_topic_attributes(
            TopicArn=outputs["NotificationTopicArn"])["Attributes"].get("KmsMasterKeyId"),
        "queue": queue["Attributes"].get("KmsMasterKeyId"),
    }


def test_the_project_stack_encrypts_everything_with_its_own_key(aws: Aws) -> None:
    create(aws, project_template(), NotificationEmail1=EMAIL)
    assert aws.status() == "CREATE_COMPLETE"
    outputs = aws.outputs()
    key = outputs["KmsKeyArn"]
    assert set(encryption_of(aws, outputs).values()) == {key}

    metadata = kms().describe_key(KeyId=key)["KeyMetadata"]
    assert metadata["KeyManager"] == "CUSTOMER" and metadata["Enabled"] is True
    assert kms().get_key_rotation_status(KeyId=key)["KeyRotationEnabled"] is True
    policy = json.loads(kms().get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    principals = {s["Sid"]: s["Principal"] for s in policy["Statement"]}
    assert principals["CloudWatchAlarmsPublishToTheEncryptedTopics"] == {
        "Service": "cloudwatch.amazonaws.com"}
    assert principals["CloudWatchLogsEncryptsTheLogGroup"] == {
        "Service": f"logs.{REGION}.amazonaws.com"}

    bucket = outputs["BucketName"]
    assert aws.s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    logging_target = aws.s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"]
    assert logging_target["TargetPrefix"] == "trail-bucket/"
    assert logging_target["TargetBucket"] != bucket


def test_an_unencrypted_stack_updates_in_place_to_the_encrypted_one(aws: Aws) -> None:
    old = json.loads(UNENCRYPTED.read_text(encoding="utf-8"))
    execute_change_set(aws, "create", "CREATE", old, NotificationEmail1=EMAIL)
    before = aws.outputs()
    assert "KmsKeyArn" not in before
    assert set(encryption_of(aws, before).values()) == {None}
    subscriptions = aws.sns.list_subscriptions_by_topic(TopicArn=before["TopicArn"])

    execute_change_set(aws, "update", "UPDATE", project_template(), NotificationEmail1=EMAIL)
    assert aws.status() == "UPDATE_COMPLETE", aws.events()
    after = aws.outputs()
    assert encryption_of(aws, after) == dict.fromkeys(encryption_of(aws, after), after["KmsKeyArn"])
    # In place: the same trail, log group, topics, queue and subscriptions.
    for name in ("TrailArn", "LogGroupName", "TopicArn", "NotificationTopicArn", "QueueUrl",
                 "BucketName", "AlarmArn"):
        assert after[name] == before[name], name
    assert aws.sns.list_subscriptions_by_topic(TopicArn=after["TopicArn"])[
        "Subscriptions"] == subscriptions["Subscriptions"]
    assert aws.s3.get_bucket_versioning(Bucket=after["BucketName"])["Status"] == "Enabled"


def test_a_given_key_is_used_and_no_key_is_created(aws: Aws) -> None:
    template = project_template()
    policy = template["Resources"]["Key"]["Properties"]["KeyPolicy"]
    text = json.dumps(policy).replace('{"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}',
                                      f'"logs.{REGION}.amazonaws.com"')
    given = kms().create_key(Policy=text, Description="the security team's key")["KeyMetadata"]
    keys_before = len(kms().list_keys()["Keys"])
    create(aws, template, NotificationEmail1=EMAIL, KmsKeyArn=given["Arn"])
    assert aws.status() == "CREATE_COMPLETE", aws.events()
    outputs = aws.outputs()
    assert outputs["KmsKeyArn"] == given["Arn"]
    assert set(encryption_of(aws, outputs).values()) == {given["Arn"]}
    assert len(kms().list_keys()["Keys"]) == keys_before


def key_without(principal: str) -> str:
    statements = [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
         "Action": "kms:Create*", "Resource": "*"},
    ]
    for service in ("cloudtrail.amazonaws.com", f"logs.{REGION}.amazonaws.com"):
        if service != principal:
            statements.append({"Effect": "Allow", "Principal": {"Service": service},
                               "Action": "kms:*", "Resource": "*"})
    return kms().create_key(Policy=json.dumps({"Statement": statements}))["KeyMetadata"]["Arn"]


def test_the_trail_and_the_log_group_need_their_grant_in_the_key_policy(aws: Aws) -> None:
    for principal, resource, error in (
        ("cloudtrail.amazonaws.com", "Trail", "does not allow cloudtrail.amazonaws.com"),
        (f"logs.{REGION}.amazonaws.com", "LogGroup", "not allowed to be used with log group"),
    ):
        stack = f"{STACK}-{resource.lower()}"
        create(aws, project_template(), stack=stack, NotificationEmail1=EMAIL,
               KmsKeyArn=key_without(principal))
        assert aws.status(stack) == "ROLLBACK_COMPLETE"
        failed = failure(aws, stack)
        assert failed["LogicalResourceId"] == resource
        assert error in failed["ResourceStatusReason"], failed


def test_a_key_policy_change_is_applied_in_place(aws: Aws) -> None:
    create(aws, project_template(), NotificationEmail1=EMAIL)
    key = aws.outputs()["KmsKeyArn"]
    template = project_template()
    statements = template["Resources"]["Key"]["Properties"]["KeyPolicy"]["Statement"]
    statements[:] = [s for s in statements if s["Sid"] != "SnsDeliversToTheEncryptedQueue"]
    execute_change_set(aws, "narrower", "UPDATE", template, NotificationEmail1=EMAIL)
    assert aws.status() == "UPDATE_COMPLETE", aws.events()
    assert aws.outputs()["KmsKeyArn"] == key
    policy = json.loads(kms().get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    assert "SnsDeliversToTheEncryptedQueue" not in [s["Sid"] for s in policy["Statement"]]
