"""AWS::Logs::MetricFilter in a stack.

In-process (see cfn_support.py); the stacks are deployed with boto3.
"""

from __future__ import annotations

from cfn_support import STACK, Aws, create, failure, safety_net_template


def test_metric_filter_needs_its_log_group(aws: Aws) -> None:
    template = safety_net_template()
    template["Resources"]["IamChangesFilter"]["Properties"]["LogGroupName"] = "no/such/group"

    create(aws, template)

    failed = failure(aws, STACK)
    assert failed["LogicalResourceId"] == "IamChangesFilter"
    assert "The specified log group does not exist." in failed["ResourceStatusReason"]
    assert aws.status() == "ROLLBACK_COMPLETE"
