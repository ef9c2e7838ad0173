"""The control endpoint: injection, faults, counters, settings, reset."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from conftest import lookup_all, records_of

RECORD = {
    "eventTime": "2030-01-01T00:00:00Z",
    "eventSource": "iam.amazonaws.com",
    "eventName": "PutRolePolicy",
    "awsRegion": "us-east-1",
    "recipientAccountId": "123456789012",
    "readOnly": False,
}


def test_injects_json_list_trail_file_and_jsonl(emulator):
    as_list = emulator.control("POST", "events", [RECORD, RECORD], query="retime=1")
    as_trail_file = emulator.control("POST", "events", {"Records": [RECORD]}, query="retime=1")
    jsonl = (json.dumps(RECORD) + "\n\n" + json.dumps(RECORD) + "\n").encode()
    as_jsonl = emulator.control("POST", "events", raw=jsonl, query="retime=1")
    assert [a[1]["accepted"] for a in (as_list, as_trail_file, as_jsonl)] == [2, 1, 2]
    events = lookup_all(emulator.client("cloudtrail"))
    assert len([e for e in events if e["EventName"] == "PutRolePolicy"]) == 5
    assert len({e["EventId"] for e in events}) == len(events), "injection assigns eventIDs"


def test_bad_input_is_refused_whole_with_a_reason(emulator):
    status, answer = emulator.control("POST", "events", [RECORD, {"eventSource": "x"}])
    assert status == 400 and "item 1" in answer["error"]
    status, answer = emulator.control("POST", "events", raw=b'{"eventName": "A"}\nnot json\n')
    assert status == 400 and "line 2" in answer["error"]
    assert emulator.counters().get("records", 0) == 0


def test_account_and_region_overrides_and_delays(emulator):
    status, _ = emulator.control("POST", "events", [RECORD], query="retime=1&region=eu-west-1")
    assert status == 200
    west = records_of(lookup_all(emulator.client("cloudtrail", "eu-west-1")))
    assert [r["awsRegion"] for r in west if r["eventName"] == "PutRolePolicy"] == ["eu-west-1"]
    _, answer = emulator.control("POST", "events", [{"record": RECORD, "lookupDelay": 3600}],
                                 query="retime=1")
    hidden = answer["eventIds"][0]
    assert hidden not in [e["EventId"] for e in lookup_all(emulator.client("cloudtrail"))]
    [stored] = [e for e in emulator.control("GET", "events")[1]
                if e["record"]["eventID"] == hidden]
    assert stored["visibleAt"] > stored["logAt"]


def test_throttle_fault_applies_to_the_chosen_services_only(emulator):
    status, _ = emulator.control("POST", "faults", {"services": ["iam"], "throttle": True})
    assert status == 200
    with pytest.raises(ClientError) as excinfo:
        emulator.client("iam").list_users()
    assert excinfo.value.response["Error"]["Code"] == "Throttling"
    emulator.client("sns").list_topics()  # not in scope
    emulator.control("DELETE", "faults")
    emulator.client("iam").list_users()


def test_fail_next_is_deterministic_and_json_services_get_json_errors(emulator):
    emulator.control("POST", "faults", {"services": ["cloudtrail"], "fail_next": 2})
    trail = emulator.client("cloudtrail")
    for _ in range(2):
        with pytest.raises(ClientError) as excinfo:
            trail.lookup_events()
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert excinfo.value.response["Error"]["Code"] == "InternalFailure"
    trail.lookup_events()
    assert emulator.counters()["faults_failed"] == 2


@pytest.mark.parametrize(
    ("code", "status", "seen_code"),
    [
        ("RequestLimitExceeded", 400, "RequestLimitExceeded"),
        ("RequestTimeout", 408, "RequestTimeout"),
        ("", 502, "502"),
    ],
)
def test_fail_next_takes_the_shape_asked_for(emulator, code, status, seen_code):
    answer = emulator.control(
        "POST", "faults", {"services": ["cloudtrail"], "fail_next": 1, "fail_code": code, "fail_status": status}
    )[1]
    shape = answer["sets"]["default"]
    assert (shape["fail_code"], shape["fail_status"]) == (code, status)
    trail = emulator.client("cloudtrail")  # one attempt: botocore would retry these shapes
    with pytest.raises(ClientError) as excinfo:
        trail.lookup_events()
    error = excinfo.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == status
    # A body without an AWS error code: botocore names the error by the HTTP status.
    assert error["Error"]["Code"] == seen_code
    trail.lookup_events()
    assert emulator.counters()["faults_failed"] == 1


def test_named_fault_sets_are_in_force_together_and_lifted_one_by_one(emulator):
    emulator.control("POST", "faults", {"name": "lookup", "services": ["cloudtrail"],
                                        "throttle": True})
    status, answer = emulator.control("POST", "faults", {"name": "queue", "services": ["sqs"],
                                                         "fail_next": 5})
    assert status == 200 and sorted(answer["sets"]) == ["lookup", "queue"]
    with pytest.raises(ClientError) as excinfo:
        emulator.client("cloudtrail").lookup_events()
    assert excinfo.value.response["Error"]["Code"] == "ThrottlingException"
    with pytest.raises(ClientError) as excinfo:
        emulator.client("sqs").list_queues()
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500

    status, answer = emulator.control("DELETE", "faults", query="name=lookup")
    assert status == 200 and sorted(answer["sets"]) == ["queue"]
    emulator.client("cloudtrail").lookup_events()
    with pytest.raises(ClientError):
        emulator.client("sqs").list_queues()
    emulator.control("DELETE", "faults")
    emulator.client("sqs").list_queues()
    assert emulator.control("GET", "faults")[1]["sets"] == {}


def test_a_fault_set_scoped_to_operations_leaves_the_others_alone(emulator):
    sqs = emulator.client("sqs")
    url = sqs.create_queue(QueueName="faulty")["QueueUrl"]
    emulator.control("POST", "faults", {"name": "receive", "services": ["sqs"],
                                        "operations": ["ReceiveMessage"], "error_rate": 1.0})
    sqs.send_message(QueueUrl=url, MessageBody="kept")  # not in scope
    with pytest.raises(ClientError) as excinfo:
        sqs.receive_message(QueueUrl=url)
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert emulator.control("GET", "faults")[1]["sets"]["receive"]["operations"] == [
        "ReceiveMessage"]
    emulator.control("DELETE", "faults", query="name=receive")
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url)["Messages"]] == ["kept"]


def test_unknown_fault_or_setting_is_refused(emulator):
    status, answer = emulator.control("POST", "faults", {"throttel": True})
    assert status == 400 and "throttel" in answer["error"]
    status, answer = emulator.control("POST", "settings", {"lookup_dealy": 1})
    assert status == 400 and "lookup_dealy" in answer["error"]


def test_reset_forgets_records_and_moto_resources(emulator):
    emulator.client("iam").create_user(UserName="temp")
    emulator.settings(lookup_delay=99)
    assert emulator.control("POST", "reset")[0] == 200
    assert emulator.client("iam").list_users()["Users"] == []
    assert emulator.control("GET", "settings")[1]["lookup_delay"] == 0
    names = {e["EventName"] for e in lookup_all(emulator.client("cloudtrail"))}
    assert "CreateUser" not in names


def test_unknown_control_path_is_404(emulator):
    status, answer = emulator.control("GET", "nope")
    assert status == 404 and "nope" in answer["error"]


def test_smtp_can_be_taken_down_and_brought_back_on_the_same_port(emulator):
    import smtplib

    status, answer = emulator.control("POST", "smtp", {"paused": True})
    assert status == 200 and answer == {"paused": True, "port": emulator.smtp_port, "holding": 0}
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP("127.0.0.1", emulator.smtp_port, timeout=5)
    assert emulator.control("POST", "smtp", {"paused": False})[1]["paused"] is False
    with smtplib.SMTP("127.0.0.1", emulator.smtp_port, timeout=5) as client:
        client.sendmail("a@example.com", ["b@example.com"], b"Subject: back\r\n\r\nhello\r\n")
    assert emulator.control("POST", "smtp", {"paused": "yes"})[0] == 400


def test_smtp_data_delay_holds_each_message_in_flight(emulator):
    import smtplib
    import threading
    import time

    assert emulator.control("POST", "smtp", {"data_delay": 1.5})[0] == 200

    def send():
        with smtplib.SMTP("127.0.0.1", emulator.smtp_port, timeout=10) as client:
            client.sendmail("a@example.com", ["b@example.com"], b"Subject: slow\r\n\r\nhi\r\n")

    started = time.monotonic()
    sender = threading.Thread(target=send)
    sender.start()
    deadline = started + 5
    while emulator.control("GET", "smtp")[1]["holding"] != 1:
        assert time.monotonic() < deadline, "the message is never held"
        time.sleep(0.05)
    sender.join()
    assert time.monotonic() - started >= 1.5, "answered only after the delay"
    assert emulator.control("GET", "smtp")[1]["holding"] == 0
    assert emulator.control("POST", "smtp", {"data_delay": 0})[0] == 200
    assert emulator.control("POST", "smtp", {"data_delay": -1})[0] == 400
    assert emulator.control("POST", "smtp", {})[0] == 400


def test_confirm_refuses_unknown_subscriptions_and_bad_bodies(emulator):
    # The positive path (a stack's pending e-mail subscription) is covered by the Rust
    # end-to-end test of `iamwatchd check`.
    unknown = "arn:aws:sns:us-east-1:123456789012:topic:00000000-0000-0000-0000-000000000000"
    status, answer = emulator.control("POST", "confirm", {"subscription_arn": unknown})
    assert status == 400 and "cannot confirm" in answer["error"]
    assert emulator.control("POST", "confirm", {"arn": unknown})[0] == 400
