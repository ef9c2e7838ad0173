"""AWS::CloudWatch::Alarm in a stack: updated in place (name and state kept), replaced when
renamed, refused when the name is taken.

In-process (see cfn_support.py); the stacks are deployed with boto3.
"""

from __future__ import annotations

import copy

from cfn_support import (
    NEW_PATTERN,
    STACK,
    TRAIL_NAME,
    Aws,
    create,
    failure,
    only_alarm,
    only_filter,
    safety_net_template,
    update,
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
