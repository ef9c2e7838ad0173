"""LookupEvents behaves like the real API: parameters, pagination, retention, rate limit, delays."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from conftest import lookup_all, records_of, wait_for


def error_code(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def inject(emulator, records, query: str = "") -> list[str]:
    status, answer = emulator.control("POST", "events", records, query=query)
    assert status == 200, answer
    return answer["eventIds"]


def record(name: str, when: datetime, source: str = "iam.amazonaws.com", **extra) -> dict:
    return {
        "eventVersion": "1.08",
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "readOnly": name.startswith(("Get", "List")),
        "recipientAccountId": "123456789012",
        "userIdentity": {"type": "IAMUser", "userName": "carol", "accessKeyId": "AKIACAROL"},
        **extra,
    }


def test_an_iam_call_is_found_newest_first(emulator):
    iam = emulator.client("iam")
    for name in ("first", "second", "third"):
        iam.create_user(UserName=name)
    events = lookup_all(
        emulator.client("cloudtrail"),
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateUser"}],
    )
    assert [r["requestParameters"]["userName"] for r in records_of(events)] == [
        "third", "second", "first"]
    event = events[0]
    assert set(event) >= {"EventId", "EventName", "ReadOnly", "AccessKeyId", "EventTime",
                          "EventSource", "Username", "Resources", "CloudTrailEvent"}
    assert event["ReadOnly"] == "false"
    assert event["Username"] == "root"
    assert event["EventId"] == json.loads(event["CloudTrailEvent"])["eventID"]
    assert {"ResourceType": "AWS::IAM::User", "ResourceName": "third"} in event["Resources"]


def test_pagination_follows_next_token_and_token_is_bound_to_parameters(emulator):
    now = datetime.now(timezone.utc)
    ids = inject(emulator, [record("CreateRole", now - timedelta(seconds=i)) for i in range(7)])
    trail = emulator.client("cloudtrail")
    attribute = [{"AttributeKey": "EventName", "AttributeValue": "CreateRole"}]
    events = lookup_all(trail, LookupAttributes=attribute, MaxResults=2)
    assert [e["EventId"] for e in events] == ids  # injected newest first
    page = trail.lookup_events(LookupAttributes=attribute, MaxResults=2)
    with pytest.raises(ClientError) as excinfo:
        trail.lookup_events(LookupAttributes=attribute, MaxResults=3, NextToken=page["NextToken"])
    assert error_code(excinfo) == "InvalidNextTokenException"
    with pytest.raises(ClientError) as excinfo:
        trail.lookup_events(NextToken="not-a-token")
    assert error_code(excinfo) == "InvalidNextTokenException"


def test_events_arriving_between_pages_do_not_shift_later_pages(emulator):
    now = datetime.now(timezone.utc)
    ids = inject(emulator, [record("TagRole", now - timedelta(seconds=10 + i)) for i in range(4)])
    trail = emulator.client("cloudtrail")
    attribute = [{"AttributeKey": "EventName", "AttributeValue": "TagRole"}]
    first = trail.lookup_events(LookupAttributes=attribute, MaxResults=2)
    inject(emulator, [record("TagRole", now)])  # newer than everything: lands before page 1
    second = trail.lookup_events(LookupAttributes=attribute, MaxResults=2,
                                 NextToken=first["NextToken"])
    assert [e["EventId"] for e in first["Events"] + second["Events"]] == ids


def test_parameter_validation(emulator):
    trail = emulator.client("cloudtrail", validate=False)
    two = [{"AttributeKey": "EventName", "AttributeValue": "CreateUser"},
           {"AttributeKey": "EventSource", "AttributeValue": "iam.amazonaws.com"}]
    cases = [
        ({"LookupAttributes": two}, "InvalidLookupAttributesException"),
        ({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": ""}]},
         "InvalidLookupAttributesException"),
        ({"MaxResults": 51}, "InvalidMaxResultsException"),
        ({"MaxResults": 0}, "InvalidMaxResultsException"),
        ({"StartTime": datetime(2024, 2, 1), "EndTime": datetime(2024, 1, 1)},
         "InvalidTimeRangeException"),
    ]
    for params, code in cases:
        with pytest.raises(ClientError) as excinfo:
            trail.lookup_events(**params)
        assert error_code(excinfo) == code, params


def test_time_range_and_ninety_day_retention(emulator):
    now = datetime.now(timezone.utc)
    old, recent, ancient = inject(emulator, [
        record("DeleteRole", now - timedelta(days=89)),
        record("DeleteRole", now - timedelta(hours=1)),
        record("DeleteRole", now - timedelta(days=91)),
    ])
    trail = emulator.client("cloudtrail")
    attribute = [{"AttributeKey": "EventName", "AttributeValue": "DeleteRole"}]
    assert [e["EventId"] for e in lookup_all(trail, LookupAttributes=attribute)] == [recent, old]
    window = lookup_all(trail, LookupAttributes=attribute,
                        StartTime=now - timedelta(days=2), EndTime=now)
    assert [e["EventId"] for e in window] == [recent]
    assert ancient not in [e["EventId"] for e in lookup_all(
        trail, LookupAttributes=attribute, StartTime=now - timedelta(days=200))]


def test_each_attribute_key_selects_by_its_field(emulator):
    iam = emulator.client("iam")
    iam.create_user(UserName="dave")
    iam.list_users()
    trail = emulator.client("cloudtrail")

    def names(key: str, value: str) -> set[str]:
        events = lookup_all(trail, LookupAttributes=[{"AttributeKey": key, "AttributeValue": value}])
        return {e["EventName"] for e in events}

    assert names("ReadOnly", "false") == {"CreateUser"}
    assert "ListUsers" in names("ReadOnly", "true")
    assert names("EventSource", "iam.amazonaws.com") == {"CreateUser", "ListUsers"}
    assert names("ResourceName", "dave") == {"CreateUser"}
    assert names("ResourceType", "AWS::IAM::User") == {"CreateUser"}
    assert "CreateUser" in names("AccessKeyId", "AKIAIOSFODNN7EXAMPLE")
    assert names("Username", "root") >= {"CreateUser", "ListUsers"}
    event_id = lookup_all(trail, LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "CreateUser"}])[0]["EventId"]
    assert names("EventId", event_id) == {"CreateUser"}


def test_lookup_events_calls_are_recorded_like_real_cloudtrail(emulator):
    trail = emulator.client("cloudtrail")
    trail.lookup_events(MaxResults=1)
    events = lookup_all(trail, LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "LookupEvents"}])
    assert events and all(e["ReadOnly"] == "true" for e in events)
    emulator.settings(record_lookups=False)
    before = emulator.counters()["records"]
    trail.lookup_events(MaxResults=1)
    assert emulator.counters()["records"] == before


def test_rate_limit_is_per_account_and_region(emulator):
    emulator.settings(lookup_rate=2)
    east = emulator.client("cloudtrail", "us-east-1")
    west = emulator.client("cloudtrail", "us-west-2")
    outcomes = []
    for _ in range(6):
        try:
            east.lookup_events(MaxResults=1)
            outcomes.append("ok")
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])
    assert "ThrottlingException" in outcomes
    assert outcomes[:2] == ["ok", "ok"]
    west.lookup_events(MaxResults=1)  # another region has its own budget
    counters = emulator.counters()
    assert counters["lookup_events_throttled"] == outcomes.count("ThrottlingException")


def test_a_record_becomes_visible_after_its_lookup_delay(emulator):
    before_injection = time.monotonic()
    [event_id] = inject(emulator, [record("UpdateRole", datetime.now(timezone.utc))],
                        query="lookup_delay=0.5")
    trail = emulator.client("cloudtrail")

    def visible() -> bool:
        return any(e["EventId"] == event_id for e in trail.lookup_events()["Events"])

    assert not visible()
    wait_for(visible, "the delayed record")
    assert time.monotonic() - before_injection >= 0.5


def test_regional_services_are_recorded_in_their_region_and_iam_in_us_east_1(emulator):
    emulator.client("iam", "eu-west-1").create_group(GroupName="ops")
    emulator.client("sns", "eu-west-1").create_topic(Name="alerts")
    east = emulator.client("cloudtrail", "us-east-1")
    west = emulator.client("cloudtrail", "eu-west-1")
    by_name = [{"AttributeKey": "EventName", "AttributeValue": "CreateGroup"}]
    assert len(lookup_all(east, LookupAttributes=by_name)) == 1
    assert lookup_all(west, LookupAttributes=by_name) == []
    topic = [{"AttributeKey": "EventName", "AttributeValue": "CreateTopic"}]
    assert [r["awsRegion"] for r in records_of(lookup_all(west, LookupAttributes=topic))] == [
        "eu-west-1"]
    assert lookup_all(east, LookupAttributes=topic) == []
