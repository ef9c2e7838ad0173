"""CloudFormation stacks with the resource types iamwatchd_emulator.cfn adds to moto.

In-process (moto's ``mock_aws``): each test deploys iamwatchd's safety-net stack shape with boto3
CloudFormation calls and then looks at every resource through its own service API, as the daemon
and an administrator would. Nothing here is asynchronous.
"""

from __future__ import annotations

import copy
import json
import pathlib
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from iamwatchd_emulator import cfn  # noqa: E402

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
STACK = "iamwatchd"
TRAIL_NAME = "iamwatchd-trail"
FILTER_NAME = "iamwatchd-iam-changes"
PATTERN = '{ $.eventSource = "iam.amazonaws.com" }'
NEW_PATTERN = '{ ($.eventSource = "iam.amazonaws.com") && ($.eventName = "CreateUser") }'
EMAIL = "admin@example.com"
LOG_OBJECTS = "${TrailBucket.Arn}/iamwatchd/AWSLogs/${AWS::AccountId}/*"


def safety_net_template() -> dict[str, Any]:
    """Every resource shape iamwatchd's stack uses: bucket + policy, trail to a log group through
    a role, metric filter, alarm -> topic (+ policy) -> e-mail and SQS (+ queue policy)."""
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "iamwatchd safety net",
        "Parameters": {
            "AlertEmail": {"Type": "String", "Default": EMAIL},
            "FilterPattern": {"Type": "String", "Default": PATTERN},
            "AlarmThreshold": {"Type": "Number", "Default": 1},
            "TrailLogging": {
                "Type": "String",
                "Default": "true",
                "AllowedValues": ["true", "false"],
            },
        },
        "Resources": {
            # Listed before what it depends on: creation order must come from DependsOn and
            # references, not from the template's order.
            "Trail": {
                "Type": "AWS::CloudTrail::Trail",
                "DependsOn": "TrailBucketPolicy",
                "Properties": {
                    "TrailName": TRAIL_NAME,
                    "S3BucketName": {"Ref": "TrailBucket"},
                    "S3KeyPrefix": "iamwatchd",
                    "IsLogging": {"Ref": "TrailLogging"},
                    "IsMultiRegionTrail": True,
                    "IncludeGlobalServiceEvents": True,
                    "EnableLogFileValidation": "true",
                    "CloudWatchLogsLogGroupArn": {"Fn::GetAtt": ["TrailLogGroup", "Arn"]},
                    "CloudWatchLogsRoleArn": {"Fn::GetAtt": ["TrailLogsRole", "Arn"]},
                    "EventSelectors": [
                        {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}
                    ],
                    "Tags": [{"Key": "app", "Value": "iamwatchd"}],
                },
            },
            "TrailBucket": {"Type": "AWS::S3::Bucket"},
            "TrailBucketPolicy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {
                    "Bucket": {"Ref": "TrailBucket"},
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "AclCheck",
                                "Effect": "Allow",
                                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                                "Action": "s3:GetBucketAcl",
                                "Resource": {"Fn::GetAtt": ["TrailBucket", "Arn"]},
                            },
                            {
                                "Sid": "Write",
                                "Effect": "Allow",
                                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                                "Action": "s3:PutObject",
                                "Resource": {"Fn::Sub": LOG_OBJECTS},
                                "Condition": {
                                    "StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}
                                },
                            },
                        ],
                    },
                },
            },
            "TrailLogGroup": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {"LogGroupName": "iamwatchd/cloudtrail", "RetentionInDays": 90},
            },
            "TrailLogsRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    },
                    "Policies": [
                        {
                            "PolicyName": "deliver",
                            "PolicyDocument": {
                                "Version": "2012-10-17",
                                "Statement": [
                                    {
                                        "Effect": "Allow",
                                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                                        "Resource": {"Fn::GetAtt": ["TrailLogGroup", "Arn"]},
                                    }
                                ],
                            },
                        }
                    ],
                },
            },
            "IamChangesFilter": {
                "Type": "AWS::Logs::MetricFilter",
                "Properties": {
                    "FilterName": FILTER_NAME,
                    "LogGroupName": {"Ref": "TrailLogGroup"},
                    "FilterPattern": {"Ref": "FilterPattern"},
                    "MetricTransformations": [
                        {
                            "MetricName": "IamChangeCount",
                            "MetricNamespace": "iamwatchd",
                            "MetricValue": "1",
                            "DefaultValue": 0,
                        }
                    ],
                },
            },
            # No AlarmName: CloudFormation generates one and must keep it across updates.
            "IamChangesAlarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "AlarmDescription": "IAM changed",
                    "Namespace": "iamwatchd",
                    "MetricName": "IamChangeCount",
                    "Statistic": "Sum",
                    "Period": "300",
                    "EvaluationPeriods": 1,
                    "Threshold": {"Ref": "AlarmThreshold"},
                    "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                    "TreatMissingData": "notBreaching",
                    "AlarmActions": [{"Ref": "AlarmTopic"}],
                },
            },
            "AlarmTopic": {
                "Type": "AWS::SNS::Topic",
                "Properties": {"TopicName": "iamwatchd-alarm"},
            },
            "AlarmTopicPolicy": {
                "Type": "AWS::SNS::TopicPolicy",
                "Properties": {
                    "Topics": [{"Ref": "AlarmTopic"}],
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "CloudWatchPublishes",
                                "Effect": "Allow",
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                "Action": "sns:Publish",
                                "Resource": {"Ref": "AlarmTopic"},
                            }
                        ],
                    },
                },
            },
            "EmailSubscription": {
                "Type": "AWS::SNS::Subscription",
                "Properties": {
                    "TopicArn": {"Ref": "AlarmTopic"},
                    "Protocol": "email",
                    "Endpoint": {"Ref": "AlertEmail"},
                },
            },
            "AlarmQueue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"QueueName": "iamwatchd-alarms"},
            },
            "AlarmQueuePolicy": {
                "Type": "AWS::SQS::QueuePolicy",
                "Properties": {
                    "Queues": [{"Ref": "AlarmQueue"}],
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "sns.amazonaws.com"},
                                "Action": "sqs:SendMessage",
                                "Resource": {"Fn::GetAtt": ["AlarmQueue", "Arn"]},
                                "Condition": {
                                    "ArnEquals": {"aws:SourceArn": {"Ref": "AlarmTopic"}}
                                },
                            }
                        ],
                    },
                },
            },
            "QueueSubscription": {
                "Type": "AWS::SNS::Subscription",
                "Properties": {
                    "TopicArn": {"Ref": "AlarmTopic"},
                    "Protocol": "sqs",
                    "Endpoint": {"Fn::GetAtt": ["AlarmQueue", "Arn"]},
                    "RawMessageDelivery": "false",
                },
            },
        },
        "Outputs": {
            "TrailName": {"Value": {"Ref": "Trail"}},
            "TrailArn": {"Value": {"Fn::GetAtt": ["Trail", "Arn"]}},
            "FilterName": {"Value": {"Ref": "IamChangesFilter"}},
            "AlarmName": {"Value": {"Ref": "IamChangesAlarm"}},
            "AlarmArn": {"Value": {"Fn::GetAtt": ["IamChangesAlarm", "Arn"]}},
            "TopicArn": {"Value": {"Ref": "AlarmTopic"}},
            "EmailSubscriptionArn": {"Value": {"Ref": "EmailSubscription"}},
            "QueueSubscriptionArn": {"Value": {"Ref": "QueueSubscription"}},
            "QueueUrl": {"Value": {"Ref": "AlarmQueue"}},
            "QueuePolicyId": {"Value": {"Ref": "AlarmQueuePolicy"}},
            "TopicPolicyId": {"Value": {"Ref": "AlarmTopicPolicy"}},
            "BucketPolicyRef": {"Value": {"Ref": "TrailBucketPolicy"}},
            "BucketName": {"Value": {"Ref": "TrailBucket"}},
        },
    }


class Aws:
    """boto3 clients for the services a stack touches."""

    def __init__(self) -> None:
        def client(service: str) -> Any:
            return boto3.client(service, region_name=REGION)

        self.cfn = client("cloudformation")
        self.cloudtrail = client("cloudtrail")
        self.logs = client("logs")
        self.cloudwatch = client("cloudwatch")
        self.sns = client("sns")
        self.sqs = client("sqs")
        self.s3 = client("s3")
        self.iam = client("iam")

    def outputs(self, stack: str = STACK) -> dict[str, str]:
        description = self.cfn.describe_stacks(StackName=stack)["Stacks"][0]
        return {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}

    def status(self, stack: str = STACK) -> str:
        return self.cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]

    def events(self, stack: str = STACK) -> list[dict[str, Any]]:
        """Stack events oldest first (the API answers newest first)."""
        return list(reversed(self.cfn.describe_stack_events(StackName=stack)["StackEvents"]))


@pytest.fixture
def aws() -> Iterator[Aws]:
    cfn.install()
    with mock_aws():
        yield Aws()


def create(aws: Aws, template: dict[str, Any], stack: str = STACK, **parameters: str) -> None:
    aws.cfn.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )


def only_alarm(aws: Aws) -> dict[str, Any]:
    alarms = aws.cloudwatch.describe_alarms()["MetricAlarms"]
    assert len(alarms) == 1, alarms
    return alarms[0]


def only_filter(aws: Aws) -> dict[str, Any]:
    filters = aws.logs.describe_metric_filters(logGroupName="iamwatchd/cloudtrail")["metricFilters"]
    assert len(filters) == 1, filters
    return filters[0]


def failure(aws: Aws, stack: str) -> dict[str, Any]:
    failed = [e for e in aws.events(stack) if e["ResourceStatus"] == "CREATE_FAILED"]
    assert len(failed) == 1, aws.events(stack)
    return failed[0]


def test_install_registers_every_type_once_and_is_idempotent() -> None:
    from moto.cloudformation import parsing

    cfn.install()
    parsing.get_model_map()  # populate the cache, as parsing any template would
    cfn.install()
    model_map = parsing.get_model_map()
    for cls in cfn.RESOURCE_CLASSES:
        assert model_map[cls.cloudformation_type()] is cls
        assert cls in cfn.CloudFormationModel.__subclasses__()
    wrapped = parsing.parse_and_create_resource
    cfn.install()
    assert parsing.parse_and_create_resource is wrapped


def test_stack_creates_every_resource(aws: Aws) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        create(aws, safety_net_template())
    skipped = [str(w.message) for w in caught if "not supported" in str(w.message)]
    assert skipped == []
    assert aws.status() == "CREATE_COMPLETE"
    outputs = aws.outputs()
    bucket = outputs["BucketName"]

    # The bucket policy, as S3 returns it.
    policy = json.loads(aws.s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["AclCheck", "Write"]
    assert (
        policy["Statement"][1]["Resource"] == f"arn:aws:s3:::{bucket}/iamwatchd/AWSLogs/{ACCOUNT}/*"
    )

    # The trail: configuration, logging, selectors, tags.
    (trail,) = aws.cloudtrail.describe_trails(trailNameList=[TRAIL_NAME])["trailList"]
    assert trail["S3BucketName"] == bucket
    assert trail["S3KeyPrefix"] == "iamwatchd"
    assert trail["IsMultiRegionTrail"] is True
    assert trail["IncludeGlobalServiceEvents"] is True
    assert trail["LogFileValidationEnabled"] is True
    assert trail["CloudWatchLogsLogGroupArn"].startswith(
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:iamwatchd/cloudtrail"
    )
    (role,) = aws.iam.list_roles()["Roles"]
    assert trail["CloudWatchLogsRoleArn"] == role["Arn"]
    assert aws.cloudtrail.get_trail_status(Name=TRAIL_NAME)["IsLogging"] is True
    selectors = aws.cloudtrail.get_event_selectors(TrailName=TRAIL_NAME)["EventSelectors"]
    assert selectors == [
        {
            "ReadWriteType": "WriteOnly",
            "IncludeManagementEvents": True,
            "DataResources": [],
            "ExcludeManagementEventSources": [],
        }
    ]
    tags = aws.cloudtrail.list_tags(ResourceIdList=[trail["TrailARN"]])["ResourceTagList"]
    assert tags[0]["TagsList"] == [{"Key": "app", "Value": "iamwatchd"}]

    # The metric filter.
    metric_filter = only_filter(aws)
    assert metric_filter["filterName"] == FILTER_NAME
    assert metric_filter["filterPattern"] == PATTERN
    assert metric_filter["metricTransformations"] == [
        {
            "metricName": "IamChangeCount",
            "metricNamespace": "iamwatchd",
            "metricValue": "1",
            "defaultValue": 0.0,
        }
    ]

    # The alarm, with a generated name.
    alarm = only_alarm(aws)
    assert alarm["AlarmName"].startswith(f"{STACK}-IamChangesAlarm-")
    assert alarm["AlarmDescription"] == "IAM changed"
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "iamwatchd",
        "IamChangeCount",
        "Sum",
    )
    assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["Threshold"]) == (300, 1, 1.0)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["ActionsEnabled"] is True
    assert alarm["AlarmActions"] == [outputs["TopicArn"]]

    # The topic's policy and subscriptions: e-mail waits for its recipient, SQS does not.
    topic_policy = json.loads(
        aws.sns.get_topic_attributes(TopicArn=outputs["TopicArn"])["Attributes"]["Policy"]
    )
    assert topic_policy["Statement"][0]["Sid"] == "CloudWatchPublishes"
    subscriptions = aws.sns.list_subscriptions_by_topic(TopicArn=outputs["TopicArn"])[
        "Subscriptions"
    ]
    by_protocol = {s["Protocol"]: s for s in subscriptions}
    assert set(by_protocol) == {"email", "sqs"}
    assert by_protocol["email"]["Endpoint"] == EMAIL
    assert by_protocol["email"]["SubscriptionArn"] == "PendingConfirmation"
    queue_arn = aws.sqs.get_queue_attributes(
        QueueUrl=outputs["QueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert by_protocol["sqs"]["Endpoint"] == queue_arn
    assert by_protocol["sqs"]["SubscriptionArn"] == outputs["QueueSubscriptionArn"]
    email_attributes = aws.sns.get_subscription_attributes(
        SubscriptionArn=outputs["EmailSubscriptionArn"]
    )["Attributes"]
    assert email_attributes["PendingConfirmation"] == "true"
    sqs_attributes = aws.sns.get_subscription_attributes(
        SubscriptionArn=outputs["QueueSubscriptionArn"]
    )["Attributes"]
    assert (sqs_attributes["PendingConfirmation"], sqs_attributes["RawMessageDelivery"]) == (
        "false",
        "false",
    )

    # The queue policy.
    queue_policy = json.loads(
        aws.sqs.get_queue_attributes(QueueUrl=outputs["QueueUrl"], AttributeNames=["Policy"])[
            "Attributes"
        ]["Policy"]
    )
    assert queue_policy["Statement"][0]["Condition"] == {
        "ArnEquals": {"aws:SourceArn": outputs["TopicArn"]}
    }


def test_outputs_resolve_ref_and_getatt(aws: Aws) -> None:
    create(aws, safety_net_template())
    outputs = aws.outputs()
    alarm = only_alarm(aws)
    assert outputs["TrailName"] == TRAIL_NAME
    assert outputs["TrailArn"] == f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/{TRAIL_NAME}"
    assert outputs["FilterName"] == FILTER_NAME
    assert outputs["AlarmName"] == alarm["AlarmName"]
    assert outputs["AlarmArn"] == alarm["AlarmArn"]
    assert outputs["EmailSubscriptionArn"].startswith(outputs["TopicArn"] + ":")
    assert outputs["QueuePolicyId"].startswith(f"{STACK}-AlarmQueuePolicy-")
    assert outputs["TopicPolicyId"].startswith(f"{STACK}-AlarmTopicPolicy-")
    assert outputs["BucketPolicyRef"] == outputs["BucketName"]

    resources = {
        r["LogicalResourceId"]: r
        for r in aws.cfn.describe_stack_resources(StackName=STACK)["StackResources"]
    }
    assert resources["Trail"]["ResourceType"] == "AWS::CloudTrail::Trail"
    assert resources["Trail"]["PhysicalResourceId"] == TRAIL_NAME
    assert resources["IamChangesAlarm"]["PhysicalResourceId"] == alarm["AlarmName"]


def test_sqs_subscription_delivers_the_sns_envelope(aws: Aws) -> None:
    create(aws, safety_net_template())
    outputs = aws.outputs()
    aws.sns.publish(TopicArn=outputs["TopicArn"], Message='{"AlarmName": "x"}', Subject="ALARM")
    (message,) = aws.sqs.receive_message(QueueUrl=outputs["QueueUrl"])["Messages"]
    envelope = json.loads(message["Body"])
    assert envelope["Type"] == "Notification"
    assert json.loads(envelope["Message"]) == {"AlarmName": "x"}


def test_confirming_the_email_subscription(aws: Aws) -> None:
    create(aws, safety_net_template())
    outputs = aws.outputs()
    cfn.confirm_subscription(outputs["EmailSubscriptionArn"])
    subscriptions = aws.sns.list_subscriptions_by_topic(TopicArn=outputs["TopicArn"])[
        "Subscriptions"
    ]
    assert outputs["EmailSubscriptionArn"] in [s["SubscriptionArn"] for s in subscriptions]
    attributes = aws.sns.get_subscription_attributes(
        SubscriptionArn=outputs["EmailSubscriptionArn"]
    )
    assert attributes["Attributes"]["PendingConfirmation"] == "false"


def execute_change_set(
    aws: Aws, name: str, kind: str, template: dict[str, Any], **parameters: str
) -> None:
    """Creates and executes a change set, as `iamwatchd deploy` does."""
    aws.cfn.create_change_set(
        StackName=STACK,
        ChangeSetName=name,
        ChangeSetType=kind,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    aws.cfn.execute_change_set(StackName=STACK, ChangeSetName=name)


def update(aws: Aws, template: dict[str, Any], **parameters: str) -> None:
    aws.cfn.update_stack(
        StackName=STACK,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )


def test_update_changes_alarm_and_filter_in_place(aws: Aws) -> None:
    template = safety_net_template()
    create(aws, template)
    before = only_alarm(aws)
    aws.cloudwatch.set_alarm_state(
        AlarmName=before["AlarmName"], StateValue="ALARM", StateReason="a test put it there"
    )

    update(aws, template, AlarmThreshold="3", FilterPattern=NEW_PATTERN, TrailLogging="false")

    assert aws.status() == "UPDATE_COMPLETE"
    after = only_alarm(aws)
    assert after["Threshold"] == 3.0
    # Same alarm, not a replacement: generated name, ARN and state survive.
    assert (after["AlarmName"], after["AlarmArn"]) == (before["AlarmName"], before["AlarmArn"])
    assert (after["StateValue"], after["StateReason"]) == ("ALARM", "a test put it there")
    assert only_filter(aws)["filterPattern"] == NEW_PATTERN
    assert aws.cloudtrail.get_trail_status(Name=TRAIL_NAME)["IsLogging"] is False
    assert aws.outputs()["AlarmName"] == before["AlarmName"]


def test_update_replaces_a_renamed_alarm(aws: Aws) -> None:
    template = safety_net_template()
    create(aws, template)
    renamed = copy.deepcopy(template)
    renamed["Resources"]["IamChangesAlarm"]["Properties"]["AlarmName"] = "iamwatchd-iam-changes"

    update(aws, renamed)

    assert only_alarm(aws)["AlarmName"] == "iamwatchd-iam-changes"
    assert aws.outputs()["AlarmName"] == "iamwatchd-iam-changes"


def test_update_sees_parameters_used_through_fn_sub(aws: Aws) -> None:
    template = safety_net_template()
    template["Parameters"]["EventName"] = {"Type": "String", "Default": "CreateUser"}
    template["Resources"]["IamChangesFilter"]["Properties"]["FilterPattern"] = {
        "Fn::Sub": '{ $.eventName = "${EventName}" }'
    }
    create(aws, template)
    assert only_filter(aws)["filterPattern"] == '{ $.eventName = "CreateUser" }'

    update(aws, template, EventName="DeleteUser")

    assert only_filter(aws)["filterPattern"] == '{ $.eventName = "DeleteUser" }'


def test_change_sets_create_and_update_with_outputs(aws: Aws) -> None:
    """iamwatchd deploys through change sets; moto creates their resources in template order."""
    template = safety_net_template()
    execute_change_set(aws, "create", "CREATE", template)
    assert aws.status() == "CREATE_COMPLETE"
    assert aws.outputs()["TrailName"] == TRAIL_NAME
    assert aws.cloudtrail.get_trail_status(Name=TRAIL_NAME)["IsLogging"] is True

    execute_change_set(aws, "update", "UPDATE", template, AlarmThreshold="5")
    assert aws.status() == "UPDATE_COMPLETE"
    assert only_alarm(aws)["Threshold"] == 5.0
    assert aws.outputs()["AlarmName"] == only_alarm(aws)["AlarmName"]


def test_delete_stack_removes_everything(aws: Aws) -> None:
    create(aws, safety_net_template())
    outputs = aws.outputs()

    aws.cfn.delete_stack(StackName=STACK)

    assert aws.cloudtrail.describe_trails()["trailList"] == []
    assert aws.logs.describe_metric_filters()["metricFilters"] == []
    assert aws.cloudwatch.describe_alarms()["MetricAlarms"] == []
    assert aws.sns.list_subscriptions()["Subscriptions"] == []
    assert aws.sns.list_topics()["Topics"] == []
    with pytest.raises(ClientError) as queue_gone:
        aws.sqs.get_queue_attributes(QueueUrl=outputs["QueueUrl"])
    assert "NonExistentQueue" in queue_gone.value.response["Error"]["Code"]
    with pytest.raises(ClientError) as bucket_gone:
        aws.s3.get_bucket_policy(Bucket=outputs["BucketName"])
    assert bucket_gone.value.response["Error"]["Code"] == "NoSuchBucket"


def test_removing_policies_from_the_template_detaches_them(aws: Aws) -> None:
    template = safety_net_template()
    create(aws, template)
    outputs = aws.outputs()
    without = copy.deepcopy(template)
    for logical_id, output in (
        ("AlarmQueuePolicy", "QueuePolicyId"),
        ("AlarmTopicPolicy", "TopicPolicyId"),
    ):
        del without["Resources"][logical_id]
        del without["Outputs"][output]

    update(aws, without)

    queue = aws.sqs.get_queue_attributes(QueueUrl=outputs["QueueUrl"], AttributeNames=["All"])
    assert "Policy" not in queue["Attributes"]
    topic_policy = json.loads(
        aws.sns.get_topic_attributes(TopicArn=outputs["TopicArn"])["Attributes"]["Policy"]
    )
    assert topic_policy["Id"] == "__default_policy_ID"


def test_trail_with_missing_bucket_fails_and_rolls_back(aws: Aws) -> None:
    template = safety_net_template()
    resources = template["Resources"]
    for logical_id in ("TrailBucket", "TrailBucketPolicy"):
        del resources[logical_id]
    del resources["Trail"]["DependsOn"]
    resources["Trail"]["Properties"]["S3BucketName"] = "no-such-bucket"
    template["Outputs"] = {}

    create(aws, template)

    assert aws.status() == "ROLLBACK_COMPLETE"
    description = aws.cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    assert description["Description"] == "iamwatchd safety net"
    assert "Outputs" not in description
    failed = failure(aws, STACK)
    assert (failed["LogicalResourceId"], failed["ResourceType"]) == (
        "Trail",
        "AWS::CloudTrail::Trail",
    )
    reason = failed["ResourceStatusReason"]
    assert reason.startswith(
        'Resource handler returned message: "S3 bucket no-such-bucket does not exist!'
    )
    assert "Service: CloudTrail, Status Code: 400" in reason
    assert "HandlerErrorCode: NotFound" in reason
    stack_statuses = [
        (e["ResourceStatus"], e.get("ResourceStatusReason"))
        for e in aws.events(STACK)
        if e["LogicalResourceId"] == STACK
    ]
    assert stack_statuses == [
        ("CREATE_IN_PROGRESS", "User Initiated"),
        (
            "ROLLBACK_IN_PROGRESS",
            "The following resource(s) failed to create: [Trail]. Rollback requested by user.",
        ),
        ("ROLLBACK_COMPLETE", None),
    ]
    # What was created before the failure is gone again, and describing the stack does not
    # bring it back.
    assert aws.logs.describe_log_groups()["logGroups"] == []
    assert aws.iam.list_roles()["Roles"] == []
    assert aws.cfn.describe_stack_resources(StackName=STACK)["StackResources"] == []
    assert aws.logs.describe_log_groups()["logGroups"] == []
    assert aws.cloudtrail.describe_trails()["trailList"] == []
    with pytest.raises(ClientError) as refused:
        update(aws, template)
    assert "ROLLBACK_COMPLETE state and can not be updated" in str(refused.value)
    aws.cfn.delete_stack(StackName=STACK)


def test_trail_created_before_its_bucket_policy_fails(aws: Aws) -> None:
    """Without DependsOn the trail may be created first; CloudTrail then refuses the bucket."""
    template = safety_net_template()
    template["Resources"]["TrailBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"].pop()

    create(aws, template)

    assert aws.status() == "ROLLBACK_COMPLETE"
    reason = failure(aws, STACK)["ResourceStatusReason"]
    assert "Incorrect S3 bucket policy is detected for bucket: " in reason
    assert aws.s3.list_buckets()["Buckets"] == []


def test_missing_required_property_fails_like_schema_validation(aws: Aws) -> None:
    template = safety_net_template()
    del template["Resources"]["Trail"]["Properties"]["IsLogging"]

    create(aws, template)

    failed = failure(aws, STACK)
    assert failed["ResourceStatusReason"] == (
        "Properties validation failed for resource Trail with message: "
        "#: required key [IsLogging] not found"
    )


def test_metric_filter_needs_its_log_group(aws: Aws) -> None:
    template = safety_net_template()
    template["Resources"]["IamChangesFilter"]["Properties"]["LogGroupName"] = "no/such/group"

    create(aws, template)

    failed = failure(aws, STACK)
    assert failed["LogicalResourceId"] == "IamChangesFilter"
    assert "The specified log group does not exist." in failed["ResourceStatusReason"]
    assert aws.status() == "ROLLBACK_COMPLETE"


def test_named_alarm_that_already_exists_fails(aws: Aws) -> None:
    aws.cloudwatch.put_metric_alarm(
        AlarmName="taken",
        MetricName="m",
        Namespace="n",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )
    template = safety_net_template()
    template["Resources"]["IamChangesAlarm"]["Properties"]["AlarmName"] = "taken"

    create(aws, template)

    assert failure(aws, STACK)["ResourceStatusReason"] == (
        "Resource of type 'AWS::CloudWatch::Alarm' with identifier 'taken' already exists."
    )
    # The pre-existing alarm is not the stack's to delete on rollback.
    assert [a["AlarmName"] for a in aws.cloudwatch.describe_alarms()["MetricAlarms"]] == ["taken"]


def test_failed_change_set_creation_rolls_back(aws: Aws) -> None:
    template = safety_net_template()
    template["Resources"]["Trail"]["Properties"]["S3BucketName"] = "no-such-bucket"
    execute_change_set(aws, "create", "CREATE", template)

    assert aws.status() == "ROLLBACK_COMPLETE"
    assert "no-such-bucket does not exist" in failure(aws, STACK)["ResourceStatusReason"]
    change_set = aws.cfn.describe_change_set(StackName=STACK, ChangeSetName="create")
    assert change_set["ExecutionStatus"] == "EXECUTE_FAILED"
    assert aws.sns.list_topics()["Topics"] == []


def test_failed_update_rolls_back_to_the_previous_template(aws: Aws) -> None:
    template = safety_net_template()
    create(aws, template)
    bucket = aws.outputs()["BucketName"]
    broken = copy.deepcopy(template)
    broken["Resources"]["Trail"]["Properties"]["S3BucketName"] = "no-such-bucket"

    update(aws, broken, AlarmThreshold="3")

    assert aws.status() == "UPDATE_ROLLBACK_COMPLETE"
    failed = [e for e in aws.events() if e["ResourceStatus"] == "UPDATE_FAILED"]
    assert [e["LogicalResourceId"] for e in failed] == ["Trail"]
    assert "S3 bucket no-such-bucket does not exist!" in failed[0]["ResourceStatusReason"]
    assert [e["ResourceStatus"] for e in aws.events() if e["LogicalResourceId"] == STACK][-4:] == [
        "UPDATE_IN_PROGRESS",
        "UPDATE_ROLLBACK_IN_PROGRESS",
        "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
        "UPDATE_ROLLBACK_COMPLETE",
    ]
    (trail,) = aws.cloudtrail.describe_trails(trailNameList=[TRAIL_NAME])["trailList"]
    assert trail["S3BucketName"] == bucket
    assert only_alarm(aws)["Threshold"] == 1.0
    body = aws.cfn.get_template(StackName=STACK)["TemplateBody"]
    body = json.loads(body) if isinstance(body, str) else body
    assert body["Resources"]["Trail"]["Properties"]["S3BucketName"] == {"Ref": "TrailBucket"}
    # The stack can be updated again.
    update(aws, template, AlarmThreshold="2")
    assert aws.status() == "UPDATE_COMPLETE"
    assert only_alarm(aws)["Threshold"] == 2.0


def test_failed_change_set_update_rolls_back(aws: Aws) -> None:
    template = safety_net_template()
    create(aws, template)
    broken = copy.deepcopy(template)
    broken["Resources"]["ExtraFilter"] = copy.deepcopy(broken["Resources"]["IamChangesFilter"])
    broken["Resources"]["ExtraFilter"]["Properties"].update(
        FilterName="extra", LogGroupName="no/such/group"
    )
    execute_change_set(aws, "broken", "UPDATE", broken)

    assert aws.status() == "UPDATE_ROLLBACK_COMPLETE"
    failed = [e for e in aws.events() if e["ResourceStatus"] == "CREATE_FAILED"]
    assert [e["LogicalResourceId"] for e in failed] == ["ExtraFilter"]
    assert "The specified log group does not exist." in failed[0]["ResourceStatusReason"]
    assert (
        aws.cfn.describe_change_set(StackName=STACK, ChangeSetName="broken")["ExecutionStatus"]
        == "EXECUTE_FAILED"
    )
    assert only_filter(aws)["filterName"] == FILTER_NAME
    assert aws.outputs()["TrailName"] == TRAIL_NAME


def test_update_honours_conditions_and_keeps_the_log_group(aws: Aws) -> None:
    """A parameter change reaching a condition-excluded resource leaves it out; a condition
    that flips creates or deletes its resource; a log group (no in-place update in moto) keeps
    existing, with its new retention."""
    template = safety_net_template()
    template["Parameters"]["Extra"] = {
        "Type": "String",
        "Default": "false",
        "AllowedValues": ["true", "false"],
    }
    template["Parameters"]["Retention"] = {"Type": "Number", "Default": 90}
    template["Conditions"] = {"WithExtra": {"Fn::Equals": [{"Ref": "Extra"}, "true"]}}
    extra = copy.deepcopy(template["Resources"]["IamChangesAlarm"])
    extra["Condition"] = "WithExtra"
    template["Resources"]["ExtraAlarm"] = extra
    template["Resources"]["TrailLogGroup"]["Properties"]["RetentionInDays"] = {"Ref": "Retention"}
    create(aws, template)
    assert aws.status() == "CREATE_COMPLETE"
    assert len(aws.cloudwatch.describe_alarms()["MetricAlarms"]) == 1

    update(aws, template, AlarmThreshold="3", Retention="30")
    assert aws.status() == "UPDATE_COMPLETE", aws.events()
    assert only_alarm(aws)["Threshold"] == 3.0
    group = aws.logs.describe_log_groups(logGroupNamePrefix="iamwatchd/cloudtrail")["logGroups"]
    assert group[0]["retentionInDays"] == 30
    assert aws.outputs()["TrailName"] == TRAIL_NAME  # GetAtt on the log group still resolves

    update(aws, template, AlarmThreshold="3", Retention="30", Extra="true")
    assert aws.status() == "UPDATE_COMPLETE", aws.events()
    assert len(aws.cloudwatch.describe_alarms()["MetricAlarms"]) == 2

    update(aws, template, AlarmThreshold="3", Retention="30", Extra="false")
    assert aws.status() == "UPDATE_COMPLETE", aws.events()
    assert only_alarm(aws)["Threshold"] == 3.0
