"""AWS::CloudTrail::Trail in a stack: CloudTrail's prerequisite checks fail the stack.

In-process (see cfn_support.py); the stacks are deployed with boto3.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from cfn_support import STACK, Aws, create, failure, safety_net_template, update


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
