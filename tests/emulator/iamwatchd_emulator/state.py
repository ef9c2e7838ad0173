"""The emulator's own state, beside moto's backends.

moto keeps the resources (users, trails, log groups, alarms, topics). What moto does not have lives
here: the CloudTrail event history that LookupEvents serves and the trail delivers, the timing
knobs (visibility and delivery delays, the LookupEvents rate limit), fault switches and counters.

Everything is guarded by one lock: the server is threaded and the delivery pump runs beside it.
Time comes from ``clock()`` so that every delay is measured against one source.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from collections.abc import Iterator
from typing import Any

#: LookupEvents only returns events of the last 90 days.
RETENTION_SECONDS = 90 * 24 * 3600


def clock() -> float:
    """Seconds since the epoch; the one time source for delays and rate limits."""
    return time.time()


def parse_event_time(value: str) -> float:
    """Parses a CloudTrail ``eventTime`` (``2023-07-10T12:20:31Z``, with or without fraction)."""
    text = value.strip().replace(" ", "T")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def format_event_time(epoch: float) -> str:
    """Formats like CloudTrail: whole seconds, UTC, ``Z``."""
    return datetime.fromtimestamp(int(epoch), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


#: What is counted per account: AssumeRole calls by the account of the role they name
#: (refused ones included, and also counted as refused), LookupEvents calls in the caller's
#: account (all regions) and those of them answered ThrottlingException.
ACCOUNT_COUNTERS = ("assume_role_calls", "assume_role_refused", "lookup_events_calls",
                    "lookup_events_throttled")


@dataclass
class Settings:
    """Timing knobs, settable at start-up (command line) and at run time (control endpoint)."""

    #: Seconds from an API call until its record is visible in LookupEvents (real AWS: ~minutes).
    lookup_delay: float = 0.0
    #: Seconds from an API call until a logging trail delivers it to its log group (real: ~5 min).
    log_delay: float = 0.0
    #: LookupEvents requests admitted per second per account+region; 0 switches the limit off.
    lookup_rate: float = 2.0
    #: Whether the emulator records its own LookupEvents calls, as real CloudTrail does.
    record_lookups: bool = True
    #: How often the delivery pump and the alarm evaluation run, in seconds.
    tick: float = 0.2

    def update(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if key not in self.__dataclass_fields__:
                raise ValueError(f"unknown setting {key!r}; known: {sorted(self.__dataclass_fields__)}")
            current = getattr(self, key)
            setattr(self, key, type(current)(value))


@dataclass
class Faults:
    """Fault injection, scoped to a set of services (empty = all services) and, within them,
    to a set of operations (empty = all operations; ``ReceiveMessage``, ``LookupEvents``)."""

    services: set[str] = field(default_factory=set)
    operations: set[str] = field(default_factory=set)
    #: Answer every request in scope with a throttling error.
    throttle: bool = False
    #: Answer this many of the next requests in scope with an error (deterministic): by
    #: default HTTP 500 InternalFailure; ``fail_code`` / ``fail_status`` give other shapes.
    fail_next: int = 0
    #: The error code of a ``fail_next`` answer (``RequestLimitExceeded``, ``RequestTimeout``,
    #: ...); empty: a body without one, as a load balancer's 502 page has.
    fail_code: str = "InternalFailure"
    #: The HTTP status of a ``fail_next`` answer.
    fail_status: int = 500
    #: Probability of an HTTP 503 for each request in scope, drawn from a seeded generator.
    error_rate: float = 0.0
    #: Added latency per request in scope, in milliseconds.
    latency_ms: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def applies_to(self, service: str, operation: str | None = None) -> bool:
        """Whether a request to ``service`` (and ``operation``, when known) is in scope."""
        if self.services and service not in self.services:
            return False
        return not self.operations or operation in self.operations


@dataclass
class StoredEvent:
    """One CloudTrail record and where and when it becomes visible."""

    seq: int
    account: str
    region: str
    event_time: float
    visible_at: float
    log_at: float
    record: dict[str, Any]
    #: When CloudTrail recorded it (API call or injection); trails deliver what they were logging.
    recorded_at: float = 0.0
    delivered: bool = False

    @property
    def sort_key(self) -> tuple[float, int]:
        return (self.event_time, self.seq)


class RateLimiter:
    """At most ``rate`` admitted requests in any one-second window, per key.

    A sliding window rather than a token bucket: "2 requests per second" then means exactly that,
    and a client that paces itself at the documented rate is never refused.
    """

    def __init__(self) -> None:
        self._admitted: dict[tuple[str, str], deque[float]] = {}

    def admit(self, key: tuple[str, str], rate: float, now: float) -> bool:
        if rate <= 0:
            return True
        window = self._admitted.setdefault(key, deque())
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= rate:
            return False
        window.append(now)
        return True

    def reset(self) -> None:
        self._admitted.clear()


class EmulatorState:
    """The event history plus knobs, faults and counters; one per server process."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.lock = threading.RLock()
        self.settings = settings or Settings()
        self._initial_settings = dataclasses.replace(self.settings)
        #: Fault sets by name, all in force at once (``default``: the one set POSTed without a
        #: name); the first one that answers a request in its scope wins, in name order.
        self.faults: dict[str, Faults] = {}
        self.counters: Counter[str] = Counter()
        #: Counters per account (``ACCOUNT_COUNTERS``): what one daemon watching many accounts
        #: costs each of them.
        self.account_counters: dict[str, Counter[str]] = {}
        self.limiter = RateLimiter()
        self._seq = itertools.count()
        # Per (account, region): events sorted by (event_time, seq).
        self._events: dict[tuple[str, str], list[StoredEvent]] = {}
        self._keys: dict[tuple[str, str], list[tuple[float, int]]] = {}
        # Events not yet delivered to log groups, in arrival order.
        self._undelivered: list[StoredEvent] = []

    def count_for(self, account: str, name: str) -> None:
        """Adds one to ``name`` (one of ``ACCOUNT_COUNTERS``) of ``account``."""
        with self.lock:
            self.account_counters.setdefault(account, Counter())[name] += 1

    def counters_by_account(self) -> dict[str, dict[str, int]]:
        """Every account that any counter of ``ACCOUNT_COUNTERS`` moved for, with all of them
        (0 where it did not move)."""
        with self.lock:
            return {account: {name: counts[name] for name in ACCOUNT_COUNTERS}
                    for account, counts in sorted(self.account_counters.items())}

    # -- the event history -------------------------------------------------------------------

    def add_event(
        self,
        record: dict[str, Any],
        account: str,
        region: str,
        lookup_delay: float | None = None,
        log_delay: float | None = None,
    ) -> StoredEvent:
        """Stores a record; it becomes visible after the delays (defaults: the settings)."""
        now = clock()
        with self.lock:
            lookup_delay = self.settings.lookup_delay if lookup_delay is None else lookup_delay
            log_delay = self.settings.log_delay if log_delay is None else log_delay
            event = StoredEvent(
                seq=next(self._seq),
                account=account,
                region=region,
                event_time=parse_event_time(record["eventTime"]),
                visible_at=now + lookup_delay,
                log_at=now + log_delay,
                record=record,
                recorded_at=now,
            )
            key = (account, region)
            keys = self._keys.setdefault(key, [])
            index = bisect.bisect(keys, event.sort_key)
            keys.insert(index, event.sort_key)
            self._events.setdefault(key, []).insert(index, event)
            self._undelivered.append(event)
            self.counters["records"] += 1
            return event

    def newest_first(self, account: str, region: str, below: tuple[float, float]) -> Iterator[StoredEvent]:
        """Events of one account+region ordered before ``below`` (eventTime, seq), newest first.

        Call with ``lock`` held; visibility and retention are the caller's to check.
        """
        keys = self._keys.get((account, region), [])
        events = self._events.get((account, region), [])
        for index in range(bisect.bisect_left(keys, below) - 1, -1, -1):
            yield events[index]

    def take_due_for_delivery(self, now: float) -> list[StoredEvent]:
        """Removes and returns the events whose log delivery time has come, oldest first."""
        with self.lock:
            due = [e for e in self._undelivered if e.log_at <= now]
            if due:
                self._undelivered = [e for e in self._undelivered if e.log_at > now]
            return due

    def all_events(self) -> list[StoredEvent]:
        with self.lock:
            return sorted(
                (e for events in self._events.values() for e in events), key=lambda e: e.seq
            )

    def reset(self) -> None:
        with self.lock:
            self._events.clear()
            self._keys.clear()
            self._undelivered.clear()
            self.counters.clear()
            self.account_counters.clear()
            self.limiter.reset()
            self.faults = {}
            self.settings = dataclasses.replace(self._initial_settings)
