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
