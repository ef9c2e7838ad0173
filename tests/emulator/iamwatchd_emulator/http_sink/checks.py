"""What every validator shares: the received request, the answer, and small typed checks.

A validator turns one ``Request`` into a list of problems (strings, empty = valid).  The checks
here append to such a list instead of raising, so one request reports everything wrong with it,
each problem naming the JSON path of the offending value (``blocks[2].text.text``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

#: The media type every platform here documents for its request body.
JSON_MEDIA_TYPE = "application/json"


@dataclass
class Request:
    """One request as the sink received it; ``headers`` has lower-cased names."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    """What the sink answers: status, header fields, body, and seconds to wait first."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0

    @classmethod
    def text(cls, status: int, text: str) -> Answer:
        return cls(status, {"Content-Type": "text/plain; charset=utf-8"}, text.encode())

    @classmethod
    def json(cls, status: int, value: Any) -> Answer:
        return cls(status, {"Content-Type": JSON_MEDIA_TYPE}, json.dumps(value).encode())


class Problems(list):
    """The problems found in one request, in the order they were found."""

    def add(self, where: str, what: str) -> None:
        self.append(f"{where}: {what}" if where else what)


def json_post(request: Request, problems: Problems) -> Any:
    """The parsed JSON body of a POST with a JSON content type, or None (with a problem).

    Slack, Teams Workflows, PagerDuty and Standard Webhooks all document a JSON body sent with
    ``POST`` and ``Content-Type: application/json``.
    """
    if request.method != "POST":
        problems.add("", f"method {request.method}, the platform expects POST")
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE:
        problems.add("", f"content-type {media_type or 'missing'}, expected {JSON_MEDIA_TYPE}")
    try:
        return json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        problems.add("", f"body is not JSON: {error}")
        return None


def json_object(request: Request, problems: Problems) -> dict[str, Any] | None:
    """``json_post``, and the body must be a JSON object."""
    body = json_post(request, problems)
    if body is not None and not isinstance(body, dict):
        problems.add("", f"body is a JSON {type(body).__name__}, expected an object")
        return None
    return body


def validate_object(
    request: Request,
    rules: Callable[[Problems, dict[str, Any]], None],
    *,
    size_limit: int | None = None,
    limit_name: str = "",
) -> Problems:
    """The problems of a request whose body is a JSON object: ``size_limit`` bytes at most
    (``limit_name`` names the documented limit), a JSON POST, then ``rules(problems, body)``."""
    problems = Problems()
    if size_limit is not None:
        size(problems, request.body, size_limit, limit_name)
    body = json_object(request, problems)
    if body is not None:
        rules(problems, body)
    return problems


def string(
    problems: Problems,
    where: str,
    value: Any,
    *,
    limit: int | None = None,
    required: bool = True,
    non_empty: bool = False,
) -> str | None:
    """``value`` must be a string (``None`` is fine unless ``required``), of at most ``limit``
    characters, not empty when ``non_empty``.  Returns it when it is a string."""
    if value is None:
        if required:
            problems.add(where, "missing")
        return None
    if not isinstance(value, str):
        problems.add(where, f"expected a string, got {type(value).__name__}")
        return None
    if non_empty and not value:
        problems.add(where, "empty")
    if limit is not None and len(value) > limit:
        problems.add(where, f"{len(value)} characters, the limit is {limit}")
    return value


def array(
    problems: Problems, where: str, value: Any, *, limit: int | None = None, required: bool = True
) -> list[Any]:
    """``value`` must be a list of at most ``limit`` items; returns it (or [] when it is not)."""
    if value is None:
        if required:
            problems.add(where, "missing")
        return []
    if not isinstance(value, list):
        problems.add(where, f"expected a list, got {type(value).__name__}")
        return []
    if limit is not None and len(value) > limit:
        problems.add(where, f"{len(value)} items, the limit is {limit}")
    return value


def mapping(problems: Problems, where: str, value: Any, *, required: bool = True) -> dict[str, Any]:
    """``value`` must be a JSON object; returns it (or {} when it is not)."""
    if value is None:
        if required:
            problems.add(where, "missing")
        return {}
    if not isinstance(value, dict):
        problems.add(where, f"expected an object, got {type(value).__name__}")
        return {}
    return value


def one_of(problems: Problems, where: str, value: Any, allowed: tuple[str, ...]) -> None:
    """``value`` must be one of ``allowed``."""
    if value not in allowed:
        problems.add(where, f"{json.dumps(value)} is not one of {', '.join(allowed)}")


def size(problems: Problems, body: bytes, limit: int, what: str) -> None:
    """The raw body must be at most ``limit`` bytes (``what`` names the documented limit)."""
    if len(body) > limit:
        problems.add("", f"body is {len(body)} bytes, over {what} ({limit} bytes)")
