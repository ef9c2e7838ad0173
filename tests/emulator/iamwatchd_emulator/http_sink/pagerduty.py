"""PagerDuty Events API v2 (``POST /v2/enqueue``): the event fields as PagerDuty documents them.

From PagerDuty's developer documentation (Events API v2 overview and "Send an Alert Event"):

* ``routing_key``: the integration key, 32 characters;
* ``event_action``: ``trigger``, ``acknowledge`` or ``resolve``;
* ``dedup_key``: at most 255 characters.  PagerDuty makes it optional (a trigger without one
  opens a new alert every time), but iamwatchd always sends one so that retries and follow-up
  events hit the same alert, so the sink requires it;
* ``payload`` (required for ``trigger``): ``summary`` non-empty and at most 1,024 characters,
  ``source`` non-empty, ``severity`` one of critical/error/warning/info, optional ``timestamp``
  in ISO 8601, ``custom_details`` an object, ``component``/``group``/``class`` strings;
* ``links``: objects with a string ``href`` and an optional string ``text``;
* the whole request is at most 512 KB.

PagerDuty answers an accepted event ``202`` with ``{"status": "success", "message": "Event
processed", "dedup_key": ...}``, and an invalid one ``400`` with ``{"status": "invalid event",
"message": "Event object is invalid", "errors": [...]}``; the default answer does the same.
"""

from __future__ import annotations

import datetime
from typing import Any

from .checks import (
    Answer,
    Problems,
    Request,
    array,
    json_object,
    mapping,
    one_of,
    string,
    validate_object,
)

SIZE_LIMIT = 512 * 1024
ROUTING_KEY_LENGTH = 32
DEDUP_KEY_LIMIT = 255
SUMMARY_LIMIT = 1_024
EVENT_ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")


def default_answer(request: Request, problems: list[str]) -> Answer:
    """PagerDuty's answer: 202 with the dedup key, or 400 listing the problems."""
    if problems:
        return Answer.json(400, {"status": "invalid event", "message": "Event object is invalid",
                                 "errors": problems})
    body = json_object(request, Problems())
    return Answer.json(202, {"status": "success", "message": "Event processed",
                             "dedup_key": (body or {}).get("dedup_key")})


def validate(request: Request) -> list[str]:
    """Every documented rule the request breaks (see the module docstring)."""
    return validate_object(request, _event, size_limit=SIZE_LIMIT,
                           limit_name="the 512 KB Events API limit")


def _event(problems: Problems, event: dict[str, Any]) -> None:
    key = string(problems, "routing_key", event.get("routing_key"))
    if key is not None and len(key) != ROUTING_KEY_LENGTH:
        problems.add("routing_key", f"{len(key)} characters, an integration key has "
                     f"{ROUTING_KEY_LENGTH}")
    one_of(problems, "event_action", event.get("event_action"), EVENT_ACTIONS)
    string(problems, "dedup_key", event.get("dedup_key"), limit=DEDUP_KEY_LIMIT, non_empty=True)
    if event.get("event_action") == "trigger" or "payload" in event:
        _payload(problems, event.get("payload"))
    for index, link in enumerate(array(problems, "links", event.get("links"), required=False)):
        link = mapping(problems, f"links[{index}]", link)
        string(problems, f"links[{index}].href", link.get("href"), non_empty=True)
        string(problems, f"links[{index}].text", link.get("text"), required=False)


def _payload(problems: Problems, payload: Any) -> None:
    payload = mapping(problems, "payload", payload)
    if not payload:
        return
    string(problems, "payload.summary", payload.get("summary"), limit=SUMMARY_LIMIT,
           non_empty=True)
    string(problems, "payload.source", payload.get("source"), non_empty=True)
    one_of(problems, "payload.severity", payload.get("severity"), SEVERITIES)
    timestamp = string(problems, "payload.timestamp", payload.get("timestamp"), required=False)
    if timestamp is not None:
        try:
            datetime.datetime.fromisoformat(timestamp)
        except ValueError:
            problems.add("payload.timestamp", f"{timestamp!r} is not an ISO 8601 date-time")
    mapping(problems, "payload.custom_details", payload.get("custom_details"), required=False)
    for name in ("component", "group", "class"):
        string(problems, f"payload.{name}", payload.get(name), required=False)
