"""Stack-level CloudFormation behaviour of iamwatchd_emulator.cfn: installation, a stack
with every added type, Outputs, change sets, deletion, updates (Fn::Sub, Conditions) and
failures rolled back like CloudFormation's.

In-process (see cfn_support.py); the stacks are deployed with boto3.
"""

from __future__ import annotations

import copy
import json
import warnings
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cfn_support import (
    ACCOUNT,
    EMAIL,
    FILTER_NAME,
    PATTERN,
    REGION,
    STACK,
    TRAIL_NAME,
    Aws,
    create,
    execute_change_set,
    failure,
    only_alarm,
    only_filter,
    project_template,
    safety_net_template,
    update,
)
from iamwatchd_emulator import cfn


def test_install_registers_every_type_once_and_is_idempotent() -> None:
    from moto.cloudformation import parsing
    from moto.cloudformation.models import Stack

    cfn.install()
    parsing.get_model_map()  # populate the cache, as parsing any template would
    cfn.install()
    model_map = parsing.get_model_map()
    for cls in cfn.RESOURCE_CLASSES:
        assert model_map[cls.cloudformation_type()] is cls
        assert cls in cfn.CloudFormationModel.__subclasses__()
    wrapped = parsing.parse_and_create_resource
    listing = Stack.stack_resources  # a patched property
    cfn.install()
    assert parsing.parse_and_create_resource is wrapped
    assert Stack.stack_resources is listing


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


def test_missing_required_property_fails_like_schema_validation(aws: Aws) -> None:
    template = safety_net_template()
    del template["Resources"]["Trail"]["Properties"]["IsLogging"]

    create(aws, template)

    failed = failure(aws, STACK)
    assert failed["ResourceStatusReason"] == (
        "Properties validation failed for resource Trail with message: "
        "#: required key [IsLogging] not found"
    )


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


def stack_resource_ids(resources: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(logical id, type, physical id) of each resource; fails naming a resource that lacks one."""
    for resource in resources:
        missing = [
            key
            for key in ("LogicalResourceId", "ResourceType", "PhysicalResourceId")
            if not resource.get(key)
        ]
        assert not missing, f"{missing} missing in {resource}"
    return sorted(
        (r["LogicalResourceId"], r["ResourceType"], r["PhysicalResourceId"]) for r in resources
    )


def assert_stack_resources(aws: Aws, template: dict[str, Any], left_out: set[str]) -> None:
    """DescribeStackResources and ListStackResources answer the same resources, each with its
    logical id, type and physical id: every template resource but those ``left_out``."""
    described = stack_resource_ids(
        aws.cfn.describe_stack_resources(StackName=STACK)["StackResources"]
    )
    listed = stack_resource_ids(
        aws.cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    )
    assert described == listed
    expected = {
        logical_id: resource["Type"]
        for logical_id, resource in template["Resources"].items()
        if logical_id not in left_out
    }
    assert {logical_id: kind for logical_id, kind, _ in described} == expected


def test_describe_stack_resources_has_no_resource_without_its_ids(aws: Aws) -> None:
    """The project's stack as `iamwatchd deploy --email ...` makes it has 19 of its template's 23
    resources: CisFilter, CisAlarm, EmailSubscription2 and EmailSubscription3 are left out by
    their Conditions. moto still listed those 4, without LogicalResourceId, ResourceType and
    PhysicalResourceId (empty in ListStackResources), and DescribeStackResources naming one of
    them was an internal error. CloudFormation lists only the resources the stack has."""
    template = project_template()
    conditioned_out = {"CisFilter", "CisAlarm", "EmailSubscription2", "EmailSubscription3"}
    execute_change_set(aws, "create", "CREATE", template, NotificationEmail1=EMAIL)
    assert aws.status() == "CREATE_COMPLETE"

    assert_stack_resources(aws, template, left_out=conditioned_out)
    only_cis_alarm = aws.cfn.describe_stack_resources(StackName=STACK, LogicalResourceId="CisAlarm")
    assert only_cis_alarm["StackResources"] == []
    with pytest.raises(ClientError) as not_in_stack:
        aws.cfn.describe_stack_resource(StackName=STACK, LogicalResourceId="CisAlarm")
    assert not_in_stack.value.response["Error"]["Code"] == "ValidationError"
    assert "Resource CisAlarm does not exist for stack iamwatchd" in str(not_in_stack.value)

    # An update that makes the condition true creates the resources, listed like any other.
    execute_change_set(
        aws, "cis-on", "UPDATE", template, NotificationEmail1=EMAIL, EnableCisFilter="true"
    )
    assert aws.status() == "UPDATE_COMPLETE"
    assert_stack_resources(
        aws, template, left_out={"EmailSubscription2", "EmailSubscription3"}
    )
    (cis_alarm,) = aws.cfn.describe_stack_resources(
        StackName=STACK, LogicalResourceId="CisAlarm"
    )["StackResources"]
    assert (cis_alarm["LogicalResourceId"], cis_alarm["ResourceType"]) == (
        "CisAlarm",
        "AWS::CloudWatch::Alarm",
    )
    alarm_names = [a["AlarmName"] for a in aws.cloudwatch.describe_alarms()["MetricAlarms"]]
    assert cis_alarm["PhysicalResourceId"] == f"{STACK}-cis-4-4-iam-policy-changes"
    assert cis_alarm["PhysicalResourceId"] in alarm_names
    detail = aws.cfn.describe_stack_resource(StackName=STACK, LogicalResourceId="CisAlarm")
    assert detail["StackResourceDetail"]["PhysicalResourceId"] == cis_alarm["PhysicalResourceId"]

    # An update that makes it false again deletes them, and they leave the listing again.
    execute_change_set(
        aws, "cis-off", "UPDATE", template, NotificationEmail1=EMAIL, EnableCisFilter="false"
    )
    assert aws.status() == "UPDATE_COMPLETE"
    assert_stack_resources(aws, template, left_out=conditioned_out)
    assert f"{STACK}-cis-4-4-iam-policy-changes" not in [
        a["AlarmName"] for a in aws.cloudwatch.describe_alarms()["MetricAlarms"]
    ]
