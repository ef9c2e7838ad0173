"""The test-only control endpoint, under ``/_iamwatchd/``.

| method and path            | what it does                                                     |
|----------------------------|------------------------------------------------------------------|
| GET  /_iamwatchd/health    | ``{"ok": true}`` once the server answers                         |
| GET  /_iamwatchd/counters  | LookupEvents calls, throttled calls, records, deliveries, alarms |
| GET  /_iamwatchd/counters/accounts | per account: ``assume_role_calls`` (by the account of the |
|                            | role named; refused ones too, also in ``assume_role_refused``), |
|                            | ``lookup_events_calls`` and ``lookup_events_throttled`` (calls  |
|                            | made in the account, every region)                              |
| GET  /_iamwatchd/settings  | the timing knobs; POST a JSON object to change some of them      |
| POST /_iamwatchd/faults    | ``{"services": ["cloudtrail"], "throttle": true, "fail_next": 2,  |
|                            | "error_rate": 0.1, "seed": 1, "latency_ms": 200}``; DELETE clears |
|                            | every set, ``DELETE ?name=N`` one. ``"name": N`` keeps sets apart |
|                            | (all in force at once; default ``default``), ``"operations":      |
|                            | ["ReceiveMessage"]`` narrows a set to those operations            |
|                            | ``fail_code`` / ``fail_status``: fail_next's shape (default 500  |
|                            | InternalFailure; ``"fail_code": ""``: a page without a code)     |
| POST /_iamwatchd/events    | inject recorded CloudTrail records (see ``inject``)              |
| GET  /_iamwatchd/events    | every stored record with its account, region and visibility      |
| POST /_iamwatchd/tick      | run one delivery and alarm-evaluation step now                   |
| POST /_iamwatchd/smtp      | ``{"paused": true}`` refuses SMTP connections until ``false``;    |
|                            | ``{"data_delay": 3}`` holds each DATA 3 s (``holding``: how many) |
| POST /_iamwatchd/reset     | forget all records, counters, faults and every moto resource     |
| POST /_iamwatchd/confirm   | ``{"subscription_arn": ARN}``: the recipient clicks the e-mail's  |
|                            | confirmation link                                                |
"""

from __future__ import annotations

import json
import random
import uuid
from typing import TYPE_CHECKING, Any, Callable, Iterable
from urllib.parse import parse_qs

from moto.core import DEFAULT_ACCOUNT_ID

from .state import Faults, clock, format_event_time, parse_event_time

if TYPE_CHECKING:
    from .gateway import Gateway

PREFIX = "/_iamwatchd/"


class BadRequest(Exception):
    pass


def _json(start_response: Callable, status: str, payload: Any) -> Iterable[bytes]:
    body = json.dumps(payload, indent=1).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return environ["wsgi.input"].read(length) if length else b""


def _object(environ: dict[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(_body(environ) or b"{}")
    except ValueError as error:
        raise BadRequest(f"body is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise BadRequest("body must be a JSON object")
    return value


def parse_records(raw: bytes) -> list[Any]:
    """Records from a JSON list, a ``{"Records": [...]}`` trail file, one object, or JSONL."""
    text = raw.decode("utf-8")
    try:
        value = json.loads(text)
    except ValueError:
        items = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except ValueError as error:
                raise BadRequest(f"line {number} is not JSON: {error}") from None
        return items
    if isinstance(value, dict) and isinstance(value.get("Records"), list):
        return value["Records"]
    return value if isinstance(value, list) else [value]


def inject(gateway: "Gateway", environ: dict[str, Any]) -> dict[str, Any]:
    """Stores recorded CloudTrail records as if CloudTrail had just recorded them.

    Each item is a record, or ``{"record": {...}, "lookupDelay": s, "logDelay": s}``. Query
    parameters: ``lookup_delay`` / ``log_delay`` (defaults for all items), ``retime=1`` (set
    eventTime to now, keeping the records' relative order), ``account`` / ``region`` (override
    recipientAccountId / awsRegion). All items are checked before any is stored.
    """
    query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    items = parse_records(_body(environ))
    now = clock()
    prepared = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadRequest(f"item {index} is not an object")
        record = item.get("record", item) if "record" in item else item
        if not isinstance(record, dict) or not record.get("eventName"):
            raise BadRequest(f"item {index} has no eventName")
        record = dict(record)
        record.setdefault("eventID", str(uuid.uuid4()))
        if query.get("retime") == "1" or not record.get("eventTime"):
            record["eventTime"] = format_event_time(now)
        else:
            try:
                parse_event_time(str(record["eventTime"]))
            except ValueError:
                raise BadRequest(f"item {index} has an unreadable eventTime") from None
        account = query.get("account") or str(record.get("recipientAccountId") or DEFAULT_ACCOUNT_ID)
        region = query.get("region") or str(record.get("awsRegion") or "us-east-1")
        record["recipientAccountId"], record["awsRegion"] = account, region
        lookup_delay = item.get("lookupDelay", query.get("lookup_delay"))
        log_delay = item.get("logDelay", query.get("log_delay"))
        prepared.append((record, account, region, lookup_delay, log_delay))
    for record, account, region, lookup_delay, log_delay in prepared:
        gateway.state.add_event(
            record,
            account,
            region,
            None if lookup_delay is None else float(lookup_delay),
            None if log_delay is None else float(log_delay),
        )
    return {"accepted": len(prepared), "eventIds": [p[0]["eventID"] for p in prepared]}


def set_faults(gateway: "Gateway", values: dict[str, Any]) -> dict[str, Any]:
    """Puts one fault set in force, replacing the set of the same ``name`` (default
    ``default``) and leaving the other sets as they are."""
    known = {"name", "services", "operations", "throttle", "fail_next", "fail_code",
             "fail_status", "error_rate", "latency_ms", "seed"}
    unknown = set(values) - known
    if unknown:
        raise BadRequest(f"unknown fault(s) {sorted(unknown)}; known: {sorted(known)}")
    name = values.get("name", "default")
    if not isinstance(name, str) or not name:
        raise BadRequest('"name" must be a non-empty string')
    faults = Faults(
        services=set(values.get("services") or []),
        operations=set(values.get("operations") or []),
        throttle=bool(values.get("throttle", False)),
        fail_next=int(values.get("fail_next", 0)),
        fail_code=str(values.get("fail_code", "InternalFailure")),
        fail_status=int(values.get("fail_status", 500)),
        error_rate=float(values.get("error_rate", 0.0)),
        latency_ms=int(values.get("latency_ms", 0)),
        rng=random.Random(values.get("seed", 0)),
    )
    with gateway.state.lock:
        gateway.state.faults[name] = faults
    return describe_faults(gateway)


def clear_faults(gateway: "Gateway", environ: dict[str, Any]) -> dict[str, Any]:
    """Lifts the set named by ``?name=``, or every set without it."""
    name = parse_qs(environ.get("QUERY_STRING", "")).get("name", [None])[-1]
    with gateway.state.lock:
        if name is None:
            gateway.state.faults.clear()
        else:
            gateway.state.faults.pop(name, None)
    return describe_faults(gateway)


def _describe_set(faults: Faults) -> dict[str, Any]:
    return {
        "services": sorted(faults.services),
        "operations": sorted(faults.operations),
        "throttle": faults.throttle,
        "fail_next": faults.fail_next,
        "fail_code": faults.fail_code,
        "fail_status": faults.fail_status,
        "error_rate": faults.error_rate,
        "latency_ms": faults.latency_ms,
    }


def describe_faults(gateway: "Gateway") -> dict[str, Any]:
    """The ``default`` set's fields at the top (an empty set when none is in force), and every
    set in force by name under ``sets``."""
    with gateway.state.lock:
        sets = {name: _describe_set(f) for name, f in sorted(gateway.state.faults.items())}
    return {**sets.get("default", _describe_set(Faults())), "sets": sets}


def list_events(gateway: "Gateway") -> list[dict[str, Any]]:
    return [
        {
            "account": e.account,
            "region": e.region,
            "visibleAt": e.visible_at,
            "logAt": e.log_at,
            "record": e.record,
        }
        for e in gateway.state.all_events()
    ]


def smtp_control(gateway: "Gateway", environ: dict[str, Any], method: str) -> dict[str, Any]:
    """Takes the SMTP sink down (connections refused) or brings it back on the same port."""
    if gateway.smtp is None:
        raise BadRequest("the emulator runs without an SMTP sink (--no-smtp)")
    if method == "POST":
        body = _object(environ)
        paused = body.get("paused")
        delay = body.get("data_delay")
        if paused is None and delay is None:
            raise BadRequest('expected {"paused": true|false} and/or {"data_delay": seconds}')
        if paused is not None and not isinstance(paused, bool):
            raise BadRequest('expected {"paused": true} or {"paused": false}')
        if delay is not None and (
            isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0
        ):
            raise BadRequest('expected {"data_delay": seconds >= 0}')
        if delay is not None:
            gateway.smtp.slow_data(float(delay))
        if paused and not gateway.smtp.paused:
            gateway.smtp.pause()
        elif paused is False and gateway.smtp.paused:
            gateway.smtp.resume()
    return {"paused": gateway.smtp.paused, "port": gateway.smtp.port,
            "holding": gateway.smtp.holding}


def reset(gateway: "Gateway") -> dict[str, Any]:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()
    gateway.state.reset()
    return {"reset": True}


def confirm(environ: dict[str, Any]) -> dict[str, Any]:
    """Confirms a pending e-mail subscription, as its recipient clicking the link would."""
    from moto.sns.exceptions import SNSNotFoundError

    from .cfn import confirm_subscription

    arn = _object(environ).get("subscription_arn")
    if not isinstance(arn, str):
        raise BadRequest('expected {"subscription_arn": "arn:aws:sns:..."}')
    try:
        confirm_subscription(arn)
    except (SNSNotFoundError, ValueError) as error:
        raise BadRequest(f"cannot confirm {arn}: {error}") from None
    return {"confirmed": arn}


def handle(gateway: "Gateway", environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
    method = environ.get("REQUEST_METHOD", "GET")
    name = environ.get("PATH_INFO", "")[len(PREFIX):].strip("/")
    state = gateway.state
    try:
        if (method, name) == ("GET", "health"):
            return _json(start_response, "200 OK", {"ok": True})
        if (method, name) == ("GET", "counters"):
            with state.lock:
                return _json(start_response, "200 OK", dict(state.counters))
        if (method, name) == ("GET", "counters/accounts"):
            return _json(start_response, "200 OK", state.counters_by_account())
        if name == "settings" and method in ("GET", "POST"):
            if method == "POST":
                try:
                    with state.lock:
                        state.settings.update(_object(environ))
                except (ValueError, TypeError) as error:
                    raise BadRequest(str(error)) from None
            return _json(start_response, "200 OK", vars(state.settings))
        if name == "faults" and method in ("GET", "POST", "DELETE"):
            if method == "POST":
                return _json(start_response, "200 OK", set_faults(gateway, _object(environ)))
            if method == "DELETE":
                return _json(start_response, "200 OK", clear_faults(gateway, environ))
            return _json(start_response, "200 OK", describe_faults(gateway))
        if name == "events" and method == "POST":
            return _json(start_response, "200 OK", inject(gateway, environ))
        if name == "events" and method == "GET":
            return _json(start_response, "200 OK", list_events(gateway))
        if (method, name) == ("POST", "tick"):
            gateway.pump.run_once()
            return _json(start_response, "200 OK", {"ticked": True})
        if name == "smtp" and method in ("GET", "POST"):
            return _json(start_response, "200 OK", smtp_control(gateway, environ, method))
        if (method, name) == ("POST", "confirm"):
            return _json(start_response, "200 OK", confirm(environ))
        if (method, name) == ("POST", "reset"):
            return _json(start_response, "200 OK", reset(gateway))
    except BadRequest as error:
        return _json(start_response, "400 Bad Request", {"error": str(error)})
    return _json(start_response, "404 Not Found", {"error": f"no control operation {method} {name}"})
