"""CloudTrail ``LookupEvents``, shaped like the real API (JSON 1.1 protocol).

Real behaviour reproduced because the daemon's correctness depends on it:
- exactly one lookup attribute per call (``InvalidLookupAttributesException`` otherwise);
- ``MaxResults`` 1–50, newest first, 90 days of history;
- a ``NextToken`` is only valid with exactly the same parameters (``InvalidNextTokenException``);
- a per account+region request rate (default 2/s) answered with ``ThrottlingException``.

Pagination is a cursor (the position of the last event returned), not an offset, so events that
become visible between pages never shift later pages.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from .records import resources_of, username_of
from .state import RETENTION_SECONDS, EmulatorState, StoredEvent

ATTRIBUTE_KEYS = {
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
}


class ApiError(Exception):
    """An error answered in the JSON protocol's shape (``__type`` and ``message``)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status

    def body(self) -> bytes:
        return json.dumps({"__type": self.code, "message": self.message}).encode()


def _attribute_matches(event: StoredEvent, key: str, value: str) -> bool:
    record = event.record
    if key == "EventId":
        return record.get("eventID") == value
    if key == "EventName":
        return record.get("eventName") == value
    if key == "ReadOnly":
        return str(record.get("readOnly")).lower() == value.lower()
    if key == "Username":
        return username_of(record) == value
    if key == "EventSource":
        return record.get("eventSource") == value
    if key == "AccessKeyId":
        return (record.get("userIdentity") or {}).get("accessKeyId") == value
    field = "ResourceType" if key == "ResourceType" else "ResourceName"
    return any(r[field] == value for r in resources_of(record))


def _number(params: dict[str, Any], name: str) -> float | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ApiError("ValidationException", f"{name} must be a timestamp") from None


def _validate(params: dict[str, Any]) -> tuple[str | None, str | None, int]:
    attributes = params.get("LookupAttributes") or []
    if len(attributes) > 1:
        raise ApiError(
            "InvalidLookupAttributesException",
            "You cannot specify more than one lookup attribute per request.",
        )
    key = value = None
    if attributes:
        key = attributes[0].get("AttributeKey")
        value = attributes[0].get("AttributeValue")
        if key not in ATTRIBUTE_KEYS:
            raise ApiError(
                "InvalidLookupAttributesException",
                f"Lookup attribute key {key!r} is not valid; valid keys: {sorted(ATTRIBUTE_KEYS)}.",
            )
        if not value:
            raise ApiError(
                "InvalidLookupAttributesException", "AttributeValue must not be empty."
            )
    max_results = params.get("MaxResults", 50)
    if not isinstance(max_results, int) or not 1 <= max_results <= 50:
        raise ApiError(
            "InvalidMaxResultsException", "MaxResults must be an integer between 1 and 50."
        )
    category = params.get("EventCategory")
    if category not in (None, "insight"):
        raise ApiError("InvalidEventCategoryException", f"EventCategory {category!r} is not valid.")
    return key, value, max_results


def _token_fingerprint(params: dict[str, Any]) -> str:
    stable = {k: v for k, v in params.items() if k != "NextToken"}
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()[:16]


def _encode_token(params: dict[str, Any], last: StoredEvent) -> str:
    cursor = {"f": _token_fingerprint(params), "t": last.event_time, "s": last.seq}
    return base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode()


def _decode_token(params: dict[str, Any]) -> tuple[float, int] | None:
    token = params.get("NextToken")
    if token is None:
        return None
    try:
        cursor = json.loads(base64.urlsafe_b64decode(token.encode()))
        position = (float(cursor["t"]), int(cursor["s"]))
        fingerprint = cursor["f"]
    except (ValueError, KeyError, TypeError):
        raise ApiError("InvalidNextTokenException", "Invalid NextToken.") from None
    if fingerprint != _token_fingerprint(params):
        raise ApiError(
            "InvalidNextTokenException",
            "The NextToken is not valid for these parameters; a token is only valid with the "
            "exact parameters of the call that returned it.",
        )
    return position


def _event_json(event: StoredEvent) -> dict[str, Any]:
    record = event.record
    item: dict[str, Any] = {
        "EventId": record.get("eventID"),
        "EventName": record.get("eventName"),
        "ReadOnly": str(bool(record.get("readOnly"))).lower(),
        "EventTime": event.event_time,
        "EventSource": record.get("eventSource"),
        "Resources": resources_of(record),
        "CloudTrailEvent": json.dumps(record),
    }
    access_key = (record.get("userIdentity") or {}).get("accessKeyId")
    if access_key:
        item["AccessKeyId"] = access_key
    username = username_of(record)
    if username:
        item["Username"] = username
    return item


def lookup_events(
    state: EmulatorState, account: str, region: str, params: dict[str, Any], now: float
) -> dict[str, Any]:
    """Answers one LookupEvents call, or raises ApiError."""
    with state.lock:
        state.counters["lookup_events_calls"] += 1
        state.count_for(account, "lookup_events_calls")
        if not state.limiter.admit((account, region), state.settings.lookup_rate, now):
            state.counters["lookup_events_throttled"] += 1
            state.count_for(account, "lookup_events_throttled")
            raise ApiError("ThrottlingException", "Rate exceeded")
    key, value, max_results = _validate(params)
    start = _number(params, "StartTime")
    end = _number(params, "EndTime")
    if start is not None and end is not None and start > end:
        raise ApiError("InvalidTimeRangeException", "StartTime must be before EndTime.")
    start = max(start if start is not None else 0.0, now - RETENTION_SECONDS)
    end = end if end is not None else now
    cursor = _decode_token(params)

    below = min(cursor, (end, float("inf"))) if cursor is not None else (end, float("inf"))
    page: list[StoredEvent] = []
    more = False
    with state.lock:
        for event in state.newest_first(account, region, below):
            if event.event_time < start:
                break
            if event.visible_at > now:
                continue
            if key is not None and not _attribute_matches(event, key, value or ""):
                continue
            if len(page) == max_results:
                more = True
                break
            page.append(event)
    response: dict[str, Any] = {"Events": [_event_json(e) for e in page]}
    if more:
        response["NextToken"] = _encode_token(params, page[-1])
    return response
