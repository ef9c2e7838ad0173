"""Tests of the emulator's HTTP sink, with the standard library's urllib as the client.

The sink stores a request before it answers, so a test can read the record as soon as its
request returned; only the slow-answer test waits, for a request sent from another thread.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from standardwebhooks.webhooks import Webhook

from iamwatchd_emulator.http_sink import HttpSink, HttpSinkConfig, webhook
from iamwatchd_emulator.http_sink.checks import Request

CLIENT_TIMEOUT_S = 10  # guards against a hang; never relied on for ordering
RECORD_NAME = re.compile(r"^\d{6}\.json$")
ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"  # 32 characters

# The Standard Webhooks spec's published test vector.
VECTOR_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
VECTOR_ID = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk"
VECTOR_TIMESTAMP = "1649367553"
VECTOR_BODY = b'{"email":"test@example.com","username":"test_user"}'
VECTOR_SIGNATURE = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="


@pytest.fixture
def sink(tmp_path: Path):
    sink = HttpSink(HttpSinkConfig(directory=tmp_path / "http"))
    sink.start()
    yield sink
    sink.stop()


class Reply:
    def __init__(self, status: int, headers: Any, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


def send(sink: HttpSink, path: str, body: Any = None, *, raw: bytes | None = None,
         method: str = "POST", headers: dict[str, str] | None = None) -> Reply:
    """One request; ``body`` is sent as JSON (with its content type), ``raw`` as given."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    fields = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(sink.url + path, data=data, method=method, headers=fields)
    try:
        with urllib.request.urlopen(request, timeout=CLIENT_TIMEOUT_S) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.headers, error.read())


def control(sink: HttpSink, operation: str, body: Any) -> Reply:
    return send(sink, f"/_sink/{operation}", body)


def last(sink: HttpSink) -> dict[str, Any]:
    return sink.store.records()[-1]


def problems(sink: HttpSink, path: str, body: Any = None, **options: Any) -> list[str]:
    send(sink, path, body, **options)
    return last(sink)["problems"]


# -- storage ------------------------------------------------------------------------------


def test_every_request_is_one_json_file_with_the_documented_fields(sink: HttpSink):
    reply = send(sink, "/other/thing?a=1&b=2", {"x": 1}, headers={"X-Custom": "yes"})
    assert reply.status == 200
    send(sink, "/other/binary", raw=b"\xff\xfe", method="PUT")

    names = sorted(os.listdir(sink.config.directory))
    assert names == ["000001.json", "000002.json"]
    first = json.loads((sink.config.directory / names[0]).read_text())
    assert list(first) == ["seq", "received_at", "method", "path", "query", "headers", "body",
                           "status", "kind", "problems", "signature_verified"]
    assert first["seq"] == 1 and first["method"] == "POST"
    assert (first["path"], first["query"]) == ("/other/thing", "a=1&b=2")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["received_at"])
    assert first["headers"]["x-custom"] == "yes"
    assert all(name == name.lower() for name in first["headers"])
    assert json.loads(first["body"]) == {"x": 1}
    assert (first["status"], first["kind"], first["problems"]) == (200, "other", [])
    assert first["signature_verified"] is None

    second = json.loads((sink.config.directory / names[1]).read_text())
    assert "body" not in second and base64.b64decode(second["body_base64"]) == b"\xff\xfe"
    assert second["method"] == "PUT"


def test_records_are_renamed_into_place_and_numbering_continues(tmp_path: Path):
    directory = tmp_path / "http"
    first = HttpSink(HttpSinkConfig(directory=directory))
    first.start()
    try:
        send(first, "/other", {})
    finally:
        first.stop()
    # A leftover temporary file (a writer that died) is neither listed nor counted.
    (directory / ".incoming-x.tmp").write_text("{half")
    second = HttpSink(HttpSinkConfig(directory=directory))
    second.start()
    try:
        send(second, "/other", {})
        assert [record["seq"] for record in second.store.records()] == [1, 2]
    finally:
        second.stop()
    assert sorted(name for name in os.listdir(directory) if RECORD_NAME.match(name)) == [
        "000001.json", "000002.json"]


def test_control_lists_records_with_a_path_filter_and_is_not_stored(sink: HttpSink):
    send(sink, "/slack/ops", {"text": "one"})
    send(sink, "/slack/dev", {"text": "two"})
    send(sink, "/teams/ops", {})
    everything = send(sink, "/_sink/requests", method="GET").json()
    assert [record["seq"] for record in everything] == [1, 2, 3]
    only = send(sink, "/_sink/requests?path=/slack/ops", method="GET").json()
    assert [record["path"] for record in only] == ["/slack/ops"]
    assert len(sink.store.records()) == 3


@pytest.mark.parametrize("operation, body, message", [
    ("script", {"responses": []}, "path"),
    ("script", {"path": "/slack"}, "responses and/or default"),
    ("script", {"path": "/slack", "responses": [{"status": 99}]}, "status"),
    ("script", {"path": "/slack", "responses": [{"status": 200, "delay": -1}]}, "delay"),
    ("script", {"path": "/slack", "responses": [{"status": 200, "colour": "red"}]}, "colour"),
    ("script", {"path": "/slack", "default": {"status": 200, "headers": {"a": 1}}}, "headers"),
    ("secret", {"path": "/webhook"}, "secret"),
    ("script", [1, 2], "object"),
])
def test_malformed_control_requests_are_answered_400(sink: HttpSink, operation, body, message):
    reply = control(sink, operation, body)
    assert reply.status == 400
    assert message in reply.json()["error"]


def test_malformed_control_json_and_unknown_operations(sink: HttpSink):
    assert "expected an object" in control(sink, "script", None).json()["error"]
    reply = send(sink, "/_sink/script", raw=b"{nope")
    assert reply.status == 400 and "not JSON" in reply.json()["error"]
    assert send(sink, "/_sink/nothing", {}).status == 404
    assert sink.store.records() == []


# -- scripted answers ---------------------------------------------------------------------


def test_scripted_429_with_retry_after_then_the_default(sink: HttpSink):
    assert control(sink, "script", {"path": "/slack/ops", "responses": [
        {"status": 429, "headers": {"Retry-After": "2"},
         "body": {"ok": False, "error": "rate_limited"}},
    ]}).status == 200
    limited = send(sink, "/slack/ops/channel", {"text": "hi"})
    assert limited.status == 429 and limited.headers["Retry-After"] == "2"
    assert limited.json() == {"ok": False, "error": "rate_limited"}
    accepted = send(sink, "/slack/ops/channel", {"text": "hi"})
    assert (accepted.status, accepted.body) == (200, b"ok")
    assert [record["status"] for record in sink.store.records()] == [429, 200]


def test_the_longest_prefix_with_answers_left_wins(sink: HttpSink):
    control(sink, "script", {"path": "/other", "responses": [{"status": 501}]})
    control(sink, "script", {"path": "/other/a", "responses": [{"status": 502}, {"status": 503}]})
    statuses = [send(sink, "/other/a", {}).status for _ in range(4)]
    assert statuses == [502, 503, 501, 200]


def test_standing_answer_until_reset_with_the_queue_first(sink: HttpSink):
    control(sink, "script", {"path": "/teams", "default": {"status": 500, "body": "down"},
                             "responses": [{"status": 429}]})
    assert [send(sink, "/teams/x", {}).status for _ in range(3)] == [429, 500, 500]
    assert control(sink, "reset", {}).status == 200
    assert send(sink, "/teams/x", {}).status == 202
    assert len(sink.store.records()) == 4, "reset keeps the records"


def test_a_standing_answer_is_lifted_alone_keeping_secrets_and_other_prefixes(sink: HttpSink):
    control(sink, "secret", {"path": "/webhook/soar", "secret": VECTOR_SECRET})
    control(sink, "script", {"path": "/webhook/soar", "default": {"status": 503}})
    control(sink, "script", {"path": "/teams", "default": {"status": 500}})
    assert send(sink, "/webhook/soar", {}).status == 503
    assert control(sink, "script", {"path": "/webhook/soar", "default": None}).status == 200
    assert send(sink, "/teams/x", {}).status == 500, "another prefix keeps its answer"
    signed = send(sink, "/webhook/soar", raw=VECTOR_BODY, headers={
        "webhook-id": VECTOR_ID, "webhook-timestamp": VECTOR_TIMESTAMP,
        "webhook-signature": VECTOR_SIGNATURE})
    assert signed.status != 503
    assert sink.store.records()[-1]["signature_verified"] is not None, "the secret stays"


def test_slow_answer_is_stored_before_the_delay(sink: HttpSink):
    control(sink, "script", {"path": "/pagerduty", "responses": [{"status": 503, "delay": 2.0}]})
    started = time.monotonic()
    slow: list[Reply] = []
    client = threading.Thread(target=lambda: slow.append(send(sink, "/pagerduty", {})))
    client.start()
    # The only wait here: for the client thread's request to reach the server.
    record = wait_for(lambda: sink.store.records(), "the slow request's record")[0]
    assert record["status"] == 503, "stored with the status it is going to get"
    assert client.is_alive(), "while the answer is still being delayed"
    client.join(CLIENT_TIMEOUT_S)
    assert slow[0].status == 503 and time.monotonic() - started >= 2.0


# -- Slack --------------------------------------------------------------------------------


def slack_message(**changes: Any) -> dict[str, Any]:
    message = {
        "text": "CreateUser by alice &lt;admin&gt;",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "IAM change"}},
            {"type": "section", "block_id": "what",
             "text": {"type": "mrkdwn", "text": "*CreateUser* by `alice`"},
             "fields": [{"type": "mrkdwn", "text": "*Account*\n123456789012"}]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "iamwatchd"}]},
            {"type": "divider"},
            {"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Open"},
                 "url": "https://console.aws.amazon.com/"}]},
        ],
    }
    message.update(changes)
    return message


def test_a_valid_slack_message(sink: HttpSink):
    reply = send(sink, "/slack/ops", slack_message())
    assert (reply.status, reply.body) == (200, b"ok")
    assert reply.headers["Content-Type"].startswith("text/plain")
    assert last(sink)["problems"] == [] and last(sink)["kind"] == "slack"


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


@pytest.mark.parametrize("blocks, expected", [
    ([section("hello <!channel>")], "unescaped mrkdwn control sequence <!"),
    ([section("<https://evil.example|click>")], "unescaped mrkdwn control sequence <http"),
    ([section("a <@U123> b <#C1>")], "control sequence <#, <@"),
    ([section("1 < 2")], "unescaped mrkdwn <"),
    ([{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}],
     "151 characters, the limit is 150"),
    ([{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}], "not one of plain_text"),
    ([section("x" * 3001)], "3001 characters, the limit is 3000"),
    ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}], "11 items"),
    ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}], "2001 characters"),
    ([{"type": "section", "text": {"type": "markdown", "text": "x"}}], "not one of plain_text"),
    ([{"type": "section", "text": {"type": "mrkdwn", "text": 5}}], "expected a string"),
    ([{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}], "11 items"),
    ([{"type": "actions", "elements": [{"type": "button", "text": {
        "type": "plain_text", "text": "b" * 76}, "url": "https://x"}]}], "76 characters"),
    ([{"type": "actions", "elements": [{"type": "button", "text": {
        "type": "plain_text", "text": "b"}, "url": "https://x/" + "u" * 3000}]}],
     "the limit is 3000"),
    ([{"type": "divider", "block_id": "b" * 256}], "256 characters, the limit is 255"),
    ([{"type": "video"}], '"video" is not one of'),
    ([{"type": "divider"}] * 51, "51 items, the limit is 50"),
    ([section("x" * 2500)] * 5, "12500 characters of text in all blocks"),
])
def test_slack_rules(sink: HttpSink, blocks, expected):
    found = problems(sink, "/slack/ops", slack_message(blocks=blocks))
    assert any(expected in problem for problem in found), found


def test_slack_fallback_text_and_body(sink: HttpSink):
    assert any("40001 characters" in p
               for p in problems(sink, "/slack/x", slack_message(text="t" * 40_001)))
    assert any("<!" in p for p in problems(sink, "/slack/x", {"text": "<!here> deploy"}))
    assert problems(sink, "/slack/x", {"text": "<!here>", "mrkdwn": False}) == []
    assert any("neither text nor blocks" in p for p in problems(sink, "/slack/x", {}))
    assert any("not JSON" in p for p in problems(sink, "/slack/x", raw=b"payload=x"))
    assert any("content-type" in p for p in problems(
        sink, "/slack/x", {"text": "x"}, headers={"Content-Type": "text/plain"}))


# -- Teams --------------------------------------------------------------------------------


def teams_card(body: list[Any] | None = None, **changes: Any) -> dict[str, Any]:
    content = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body if body is not None else [
            {"type": "TextBlock", "text": "IAM change", "weight": "Bolder"},
            {"type": "FactSet", "facts": [{"title": "Event", "value": "CreateUser"}]},
            {"type": "Container", "items": [{"type": "TextBlock", "text": "in a container"}]},
            {"type": "ColumnSet", "columns": [
                {"type": "Column", "items": [{"type": "TextBlock", "text": "column"}]}]},
        ],
        "actions": [{"type": "Action.OpenUrl", "title": "Open", "url": "https://x.example"}],
    }
    content.update(changes)
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
         "content": content}]}


def test_a_valid_teams_card(sink: HttpSink):
    reply = send(sink, "/teams/ops", teams_card())
    assert (reply.status, reply.body) == (202, b"")
    assert last(sink)["problems"] == []


@pytest.mark.parametrize("message, expected", [
    (teams_card(version="1.5"), "1.5 is newer than 1.4"),
    (teams_card(version="1.10"), "1.10 is newer than 1.4"),
    (teams_card(version=1.2), "expected a string"),
    (teams_card(body=[]), "body: empty"),
    (teams_card(body=[{"type": "Image", "url": "x"}]), '"Image" is not one of'),
    (teams_card(body=[{"type": "FactSet", "facts": [{"title": "t", "value": 3}]}]),
     "facts[0].value: expected a string"),
    (teams_card(body=[{"type": "Container", "items": [{"type": "TextBlock"}]}]),
     "items[0].text: missing"),
    (teams_card(actions=[{"type": "Action.OpenUrl"}]), "actions[0].url: missing"),
    (teams_card(type="MessageCard"), '"MessageCard" is not one of AdaptiveCard'),
    ({**teams_card(), "type": "card"}, '"card" is not one of message'),
    ({"type": "message", "attachments": []}, "0 attachments, expected exactly 1"),
    ({"@type": "MessageCard", "text": "legacy connector card"}, "attachments: missing"),
])
def test_teams_rules(sink: HttpSink, message, expected):
    found = problems(sink, "/teams/ops", message)
    assert any(expected in problem for problem in found), found


def test_teams_schema_required_and_oversize_card(sink: HttpSink):
    card = teams_card()
    del card["attachments"][0]["content"]["$schema"]
    assert any("$schema: missing" in p for p in problems(sink, "/teams/ops", card))
    big = teams_card(body=[{"type": "TextBlock", "text": "x" * (28 * 1024)}])
    assert any("over the 28 KB Teams message limit" in p for p in problems(sink, "/teams/ops", big))
    assert last(sink)["status"] == 202, "Teams' own limit, but the sink answers as scripted"


# -- PagerDuty ----------------------------------------------------------------------------


def pagerduty_event(**changes: Any) -> dict[str, Any]:
    event = {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "iamwatchd-3f1c",
        "payload": {"summary": "CreateUser by alice", "source": "iamwatchd",
                    "severity": "warning", "timestamp": "2026-12-02T00:45:00.000Z",
                    "component": "iam", "group": "123456789012", "class": "CreateUser",
                    "custom_details": {"eventName": "CreateUser"}},
        "links": [{"href": "https://console.aws.amazon.com/", "text": "Console"}],
    }
    event.update(changes)
    return event


def test_a_valid_pagerduty_event_gets_pagerdutys_answer(sink: HttpSink):
    reply = send(sink, "/pagerduty/v2/enqueue", pagerduty_event())
    assert reply.status == 202
    assert reply.json() == {"status": "success", "message": "Event processed",
                            "dedup_key": "iamwatchd-3f1c"}
    assert last(sink)["problems"] == []
    resolve = {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "k"}
    assert send(sink, "/pagerduty", resolve).status == 202


@pytest.mark.parametrize("event, expected", [
    (pagerduty_event(routing_key="k" * 33), "routing_key: 33 characters"),
    (pagerduty_event(event_action="open"), '"open" is not one of trigger'),
    (pagerduty_event(dedup_key="d" * 256), "dedup_key: 256 characters, the limit is 255"),
    ({**pagerduty_event(), "dedup_key": None}, "dedup_key: missing"),
    (pagerduty_event(payload={**pagerduty_event()["payload"], "severity": "high"}),
     '"high" is not one of critical'),
    (pagerduty_event(payload={**pagerduty_event()["payload"], "summary": "s" * 1025}),
     "1025 characters, the limit is 1024"),
    (pagerduty_event(payload={**pagerduty_event()["payload"], "summary": ""}), "summary: empty"),
    (pagerduty_event(payload={**pagerduty_event()["payload"], "source": None}), "source: missing"),
    (pagerduty_event(payload={**pagerduty_event()["payload"], "timestamp": "yesterday"}),
     "not an ISO 8601"),
    (pagerduty_event(payload={**pagerduty_event()["payload"], "custom_details": "x"}),
     "custom_details: expected an object"),
    (pagerduty_event(payload=None), "payload: missing"),
    (pagerduty_event(links=[{"text": "no href"}]), "links[0].href: missing"),
])
def test_pagerduty_rules_and_the_400_answer(sink: HttpSink, event, expected):
    reply = send(sink, "/pagerduty", event)
    assert reply.status == 400
    answer = reply.json()
    assert (answer["status"], answer["message"]) == ("invalid event", "Event object is invalid")
    assert any(expected in error for error in answer["errors"]), answer
    assert last(sink)["problems"] == answer["errors"] and last(sink)["status"] == 400


def test_pagerduty_oversize_and_scripted_answer_wins_over_400(sink: HttpSink):
    control(sink, "script", {"path": "/pagerduty", "responses": [{"status": 429}]})
    big = pagerduty_event(payload={**pagerduty_event()["payload"],
                                   "custom_details": {"x": "y" * 512 * 1024}})
    assert send(sink, "/pagerduty", big).status == 429
    assert any("over the 512 KB Events API limit" in p for p in last(sink)["problems"])


# -- Standard Webhooks --------------------------------------------------------------------


def vector_headers(**changes: str) -> dict[str, str]:
    headers = {"webhook-id": VECTOR_ID, "webhook-timestamp": VECTOR_TIMESTAMP,
               "webhook-signature": VECTOR_SIGNATURE}
    headers.update(changes)
    return headers


def test_the_spec_test_vector_verifies_at_its_own_time():
    assert webhook.signature_valid(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY,
                                   VECTOR_SIGNATURE)
    # Any one matching entry of a rotated list is enough.
    assert webhook.signature_valid(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY,
                                   "v1,AAAA v1a,xyz " + VECTOR_SIGNATURE)
    request = Request("POST", "/webhook/x", "", {"content-type": "application/json",
                                                  **vector_headers()}, VECTOR_BODY)
    assert webhook.validate(request, VECTOR_SECRET, now=int(VECTOR_TIMESTAMP) + 60) == ([], True)
    problems, verified = webhook.validate(request, VECTOR_SECRET, now=int(VECTOR_TIMESTAMP) + 301)
    assert verified is True and len(problems) == 1 and "behind" in problems[0]


def test_the_live_check_verifies_the_vector_and_flags_its_old_timestamp(sink: HttpSink):
    control(sink, "secret", {"path": "/webhook/x", "secret": VECTOR_SECRET})
    reply = send(sink, "/webhook/x", raw=VECTOR_BODY, headers=vector_headers())
    assert (reply.status, reply.body) == (200, b"")
    record = last(sink)
    assert record["signature_verified"] is True
    assert len(record["problems"]) == 1 and record["problems"][0].startswith("webhook-timestamp")


def test_tampered_body_wrong_secret_and_no_secret(sink: HttpSink):
    tampered = VECTOR_BODY.replace(b"test_user", b"admin")
    assert not webhook.signature_valid(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, tampered,
                                       VECTOR_SIGNATURE)
    assert not webhook.signature_valid("whsec_" + base64.b64encode(b"other" * 6).decode(),
                                       VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY, VECTOR_SIGNATURE)
    assert not webhook.signature_valid(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY,
                                       "v1,not-base64!")
    control(sink, "secret", {"path": "/webhook/x", "secret": VECTOR_SECRET})
    send(sink, "/webhook/x", raw=tampered, headers=vector_headers())
    assert last(sink)["signature_verified"] is False
    assert any("does not verify" in p for p in last(sink)["problems"])
    send(sink, "/webhook/unregistered", raw=tampered, headers=vector_headers())
    assert last(sink)["signature_verified"] is None


def test_a_fresh_signed_delivery_is_valid_and_missing_headers_are_not(sink: HttpSink):
    now = datetime.datetime.now(datetime.timezone.utc)
    body = json.dumps({"type": "iam.change", "timestamp": now.isoformat(), "data": {}})
    signature = Webhook(VECTOR_SECRET).sign("msg_1", now, body)
    control(sink, "secret", {"path": "/webhook", "secret": VECTOR_SECRET})
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": signature}
    send(sink, "/webhook/iam", raw=body.encode(), headers=headers)
    assert (last(sink)["problems"], last(sink)["signature_verified"]) == ([], True)
    found = problems(sink, "/webhook/iam", raw=body.encode(), headers={"webhook-id": "msg_1"})
    assert "webhook-timestamp: missing header" in found
    assert "webhook-signature: missing header" in found
    assert last(sink)["signature_verified"] is False
    assert any("is not v1,<base64>" in p for p in problems(
        sink, "/webhook/iam", raw=body.encode(), headers={**headers, "webhook-signature":
                                                          f"{signature} sha256=abc"}))
    later = str(int(now.timestamp()) + 3600)
    assert any("ahead of" in p for p in problems(
        sink, "/webhook/iam", raw=body.encode(), headers={**headers, "webhook-timestamp": later}))


def test_the_emulator_starts_the_sink_and_reports_it_on_the_ready_line(emulator):
    """The session emulator (tests/conftest.py) is started with --http-dir only: the sink is on
    by default and its READY line says where."""
    assert emulator.http_url.startswith("http://127.0.0.1:")
    request = urllib.request.Request(emulator.http_url + "/other/ready-line", data=b"{}",
                                     method="POST")
    with urllib.request.urlopen(request, timeout=CLIENT_TIMEOUT_S) as response:
        assert response.status == 200
    stored = [json.loads(path.read_text()) for path in sorted(emulator.http_dir.glob("*.json"))]
    assert stored[-1]["path"] == "/other/ready-line"
