"""What tests tell the sink through ``/_sink/``: scripted answers, standing answers, secrets.

All three are keyed by a path prefix.  For a request, the answer is, in this order:

1. the next queued answer of the longest prefix that still has one (each is used once);
2. the standing ``default`` of the longest matching prefix;
3. the platform's own answer for the request's kind (``None`` here; the server decides).

The webhook secret is likewise the one of the longest matching prefix.  ``reset()`` forgets all
of it.  A lock makes every method safe from the server's request threads.
"""

from __future__ import annotations

import collections
import json
import threading
from typing import Any

from .checks import JSON_MEDIA_TYPE, Answer

_ANSWER_KEYS = {"status", "headers", "body", "delay"}


class ControlError(ValueError):
    """A malformed control request; its message is what the sink answers with 400."""


def parse_answer(value: Any, where: str) -> Answer:
    """An answer from its JSON form ``{"status", "headers"?, "body"?, "delay"?}``.

    ``body`` is sent as UTF-8 when a string and as JSON (with a JSON content type unless
    ``headers`` names one) otherwise; ``delay`` is seconds to wait before answering.
    """
    if not isinstance(value, dict):
        raise ControlError(f"{where}: expected an object with status, headers, body, delay")
    unknown = sorted(set(value) - _ANSWER_KEYS)
    if unknown:
        raise ControlError(f"{where}: unknown field(s) {', '.join(unknown)}")
    status = value.get("status")
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ControlError(f"{where}.status: expected an HTTP status code 100-599")
    headers = value.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(name, str) and isinstance(text, str) for name, text in headers.items()
    ):
        raise ControlError(f"{where}.headers: expected an object of strings")
    delay = value.get("delay", 0)
    if not isinstance(delay, (int, float)) or isinstance(delay, bool) or delay < 0:
        raise ControlError(f"{where}.delay: expected a number of seconds >= 0")
    body = value.get("body")
    headers = dict(headers)
    if body is None:
        data = b""
    elif isinstance(body, str):
        data = body.encode("utf-8")
    else:
        data = json.dumps(body).encode("utf-8")
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = JSON_MEDIA_TYPE
    return Answer(status, headers, data, float(delay))


def parse_prefix(value: Any) -> str:
    """The ``path`` of a control request: a path prefix starting with ``/``."""
    if not isinstance(value, str) or not value.startswith("/"):
        raise ControlError("path: expected a path prefix starting with /")
    if value.startswith("/_sink/"):
        raise ControlError("path: /_sink/ is the control endpoint, not a sink path")
    return value


def _longest(prefixes: Any, path: str) -> str | None:
    matching = [prefix for prefix in prefixes if path.startswith(prefix)]
    return max(matching, key=len, default=None)


class Scripts:
    """The scripted answers, standing answers and secrets described in the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, collections.deque[Answer]] = {}
        self._defaults: dict[str, Answer] = {}
        self._secrets: dict[str, str] = {}

    def script(self, body: Any) -> None:
        """``{"path", "responses"?: [answer...], "default"?: answer | null}``: queue answers
        and/or set the standing one for a prefix (``null`` lifts it, leaving the other
        prefixes' answers and the secrets as they are)."""
        if not isinstance(body, dict):
            raise ControlError("expected an object with path and responses and/or default")
        unknown = sorted(set(body) - {"path", "responses", "default"})
        if unknown:
            raise ControlError(f"unknown field(s) {', '.join(unknown)}")
        prefix = parse_prefix(body.get("path"))
        if "responses" not in body and "default" not in body:
            raise ControlError("expected responses and/or default")
        responses = body.get("responses", [])
        if not isinstance(responses, list):
            raise ControlError("responses: expected a list of answers")
        answers = [parse_answer(item, f"responses[{index}]")
                   for index, item in enumerate(responses)]
        lift = "default" in body and body["default"] is None
        default = parse_answer(body["default"], "default") if "default" in body and not lift \
            else None
        with self._lock:
            self._queues.setdefault(prefix, collections.deque()).extend(answers)
            if default is not None:
                self._defaults[prefix] = default
            if lift:
                self._defaults.pop(prefix, None)

    def secret(self, body: Any) -> None:
        """``{"path", "secret"}``: verify Standard Webhooks signatures under ``path``."""
        if not isinstance(body, dict) or set(body) != {"path", "secret"}:
            raise ControlError("expected an object with exactly path and secret")
        prefix = parse_prefix(body["path"])
        if not isinstance(body["secret"], str) or not body["secret"]:
            raise ControlError("secret: expected a non-empty string (whsec_...)")
        with self._lock:
            self._secrets[prefix] = body["secret"]

    def reset(self) -> None:
        """Forget every scripted answer, standing answer and secret."""
        with self._lock:
            self._queues.clear()
            self._defaults.clear()
            self._secrets.clear()

    def next_answer(self, path: str) -> Answer | None:
        """The scripted answer for a request to ``path`` (consuming a queued one), or None."""
        with self._lock:
            queued = _longest((prefix for prefix, queue in self._queues.items() if queue), path)
            if queued is not None:
                return self._queues[queued].popleft()
            standing = _longest(self._defaults, path)
            return None if standing is None else self._defaults[standing]

    def secret_for(self, path: str) -> str | None:
        """The secret registered for the longest prefix of ``path``, or None."""
        with self._lock:
            prefix = _longest(self._secrets, path)
            return None if prefix is None else self._secrets[prefix]
