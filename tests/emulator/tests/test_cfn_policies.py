"""AWS::SNS::TopicPolicy, AWS::SQS::QueuePolicy, AWS::S3::BucketPolicy in a stack.

In-process (see cfn_support.py); the stacks are deployed with boto3.
"""

from __future__ import annotations

import copy
import json

from cfn_support import Aws, create, safety_net_template, update


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


def test_a_templates_inline_policies_are_json_text_and_the_account_listing_works(aws: Aws) -> None:
    document = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": "*"}]}
    template = {"Resources": {"Daemon": {"Type": "AWS::IAM::Role", "Properties": {
        "RoleName": "daemon",
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []},
        "Policies": [{"PolicyName": "poll", "PolicyDocument": document}]}}}}
    create(aws, template)
    iam = aws.iam
    stored = iam.get_role_policy(RoleName="daemon", PolicyName="poll")["PolicyDocument"]
    assert stored == document
    # The daemon's seed of the policy snapshots reads this; moto failed it for the whole
    # account when a stack had made a role with inline policies.
    details = iam.get_account_authorization_details(Filter=["Role"])["RoleDetailList"]
    (role,) = [r for r in details if r["RoleName"] == "daemon"]
    assert role["RolePolicyList"][0]["PolicyName"] == "poll"
    assert role["RolePolicyList"][0]["PolicyDocument"] == document
