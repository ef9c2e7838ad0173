"""What the test_cfn_* modules share: iamwatchd's safety-net stack shape and boto3 helpers.

The tests are in-process (moto's ``mock_aws``, through the ``aws`` fixture of conftest.py): each
deploys this stack shape with boto3 CloudFormation calls and then looks at every resource through
its own service API, as the daemon and an administrator would. Nothing here is asynchronous.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import boto3

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
STACK = "iamwatchd"
TRAIL_NAME = "iamwatchd-trail"
FILTER_NAME = "iamwatchd-iam-changes"
PATTERN = '{ $.eventSource = "iam.amazonaws.com" }'
NEW_PATTERN = '{ ($.eventSource = "iam.amazonaws.com") && ($.eventName = "CreateUser") }'
EMAIL = "admin@example.com"
LOG_OBJECTS = "${TrailBucket.Arn}/iamwatchd/AWSLogs/${AWS::AccountId}/*"
#: The project's own stack, as `iamwatchd template` prints it and `iamwatchd deploy` deploys it.
PROJECT_TEMPLATE = (
    pathlib.Path(__file__).resolve().parents[3] / "deploy" / "iamwatchd.template.json"
)


def project_template() -> dict[str, Any]:
    return json.loads(PROJECT_TEMPLATE.read_text(encoding="utf-8"))


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


def create(aws: Aws, template: dict[str, Any], stack: str = STACK, **parameters: str) -> None:
    aws.cfn.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )


def update(aws: Aws, template: dict[str, Any], **parameters: str) -> None:
    aws.cfn.update_stack(
        StackName=STACK,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )


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
