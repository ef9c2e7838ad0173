"""The filter-pattern evaluator installed into moto (``filterpattern.install``), in process:
FilterLogEvents and PutMetricFilter through boto3 use it and reject malformed patterns."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws


from iamwatchd_emulator.filterpattern import install


def j(**fields: object) -> str:
    return json.dumps(fields)


GROUP = "/iamwatchd/test"
STREAM = "trail"
MESSAGES = [
    j(eventSource="iam.amazonaws.com", eventName="CreateUser"),
    j(eventSource="iam.amazonaws.com", eventName="GetUser"),
    j(eventSource="iam.amazonaws.com", eventName="DeleteRole", errorCode="AccessDenied"),
    j(eventSource="s3.amazonaws.com", eventName="CreateBucket"),
    "ERROR plain text line",
    "WARN another plain line",
]


@pytest.fixture
def logs():
    install()
    with mock_aws():
        client = boto3.client("logs", region_name="us-east-1")
        client.create_log_group(logGroupName=GROUP)
        client.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
        now = int(time.time() * 1000)
        client.put_log_events(
            logGroupName=GROUP,
            logStreamName=STREAM,
            logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(MESSAGES)],
        )
        yield client


def _filtered(client, pattern: str | None) -> list[str]:
    arguments = {"logGroupName": GROUP}
    if pattern is not None:
        arguments["filterPattern"] = pattern
    return [event["message"] for event in client.filter_log_events(**arguments)["events"]]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (None, MESSAGES),
        ("", MESSAGES),
        ('{ $.eventSource = "iam.amazonaws.com" }', MESSAGES[:3]),
        ('{ ($.eventSource = "iam.amazonaws.com") && ($.eventName != "Get*")'
         ' && ($.eventName != "List*") }', [MESSAGES[0], MESSAGES[2]]),
        ('{ $.errorCode = "*" }', [MESSAGES[2]]),
        ("{ $.errorCode NOT EXISTS }", [MESSAGES[0], MESSAGES[1], MESSAGES[3]]),
        ("?ERROR ?WARN", MESSAGES[4:]),
        ('"plain text"', [MESSAGES[4]]),
        ("[level = WARN, ...]", [MESSAGES[5]]),
    ],
)
def test_filter_log_events_uses_the_evaluator(logs, pattern, expected) -> None:
    assert _filtered(logs, pattern) == expected


@pytest.mark.parametrize("pattern", ["{ $.a = }", "{ $.a == 1 }", "%regex%", "[a, a]"])
def test_filter_log_events_rejects_malformed_patterns(logs, pattern) -> None:
    with pytest.raises(ClientError) as caught:
        _filtered(logs, pattern)
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidParameterException"
    assert error["Message"].startswith("Invalid filter pattern: ")


def _put_metric_filter(client, pattern: str, metric_value: str = "1") -> None:
    client.put_metric_filter(
        logGroupName=GROUP,
        filterName="IamChanges",
        filterPattern=pattern,
        metricTransformations=[
            {
                "metricName": "IamChanges",
                "metricNamespace": "iamwatchd",
                "metricValue": metric_value,
            }
        ],
    )


def test_put_metric_filter_accepts_a_valid_pattern(logs) -> None:
    pattern = '{ ($.eventSource = "iam.amazonaws.com") && ($.eventName != "Get*") }'
    _put_metric_filter(logs, pattern, "$.count")
    (stored,) = logs.describe_metric_filters(logGroupName=GROUP)["metricFilters"]
    assert stored["filterPattern"] == pattern


@pytest.mark.parametrize(
    ("pattern", "metric_value", "message_start"),
    [
        ("{ ($.eventSource = iam.amazonaws.com }", "1", "Invalid metric filter pattern: "),
        ("{ $.eventName = Create* ", "1", "Invalid metric filter pattern: "),
        ("ERROR", "$.latency", "Invalid metric value: "),
    ],
)
def test_put_metric_filter_rejects_malformed_input(logs, pattern, metric_value, message_start):
    with pytest.raises(ClientError) as caught:
        _put_metric_filter(logs, pattern, metric_value)
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidParameterException"
    assert error["Message"].startswith(message_start)
    assert logs.describe_metric_filters(logGroupName=GROUP)["metricFilters"] == []


def test_install_is_idempotent() -> None:
    from moto.logs import models

    install()
    filter_log_events = models.LogsBackend.filter_log_events
    put_metric_filter = models.LogsBackend.put_metric_filter
    install()
    assert models.LogsBackend.filter_log_events is filter_log_events
    assert models.LogsBackend.put_metric_filter is put_metric_filter
    # one layer of validation around moto's own method, not two
    assert not hasattr(filter_log_events.__wrapped__, "__wrapped__")
    assert models.EventMessageFilter("{ $.a = 1 }").matches('{"a": 1}')
    assert not models.EventMessageFilter("{ $.a = 1 }").matches('{"a": 2}')
