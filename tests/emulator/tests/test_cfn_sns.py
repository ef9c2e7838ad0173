"""AWS::SNS::Subscription in a stack: SQS delivery, e-mail confirmation.

In-process (see cfn_support.py); the stacks are deployed with boto3.
"""

from __future__ import annotations

import json

from cfn_support import Aws, create, safety_net_template
from iamwatchd_emulator import cfn


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
