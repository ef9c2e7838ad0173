"""The soak's faults: a schedule drawn from one seed (so ``--seed`` replays it), and how each
fault is put in force and lifted, through the emulator's control endpoints (``faults``,
``smtp``), the HTTP sink's scripted answers and the state directory's own tmpfs.

Kinds (each a stretch with a start and an end, except the kills, which are moments):

- ``kill``: ``kill -9`` of the daemon, restarted 1-5 s later as systemd would;
- ``smtp-down``: the SMTP sink refuses connections and drops open sessions;
- ``webhook-5xx`` / ``webhook-429``: the webhook notifier's endpoint answers 503, then 429 with
  ``Retry-After``;
- ``lookup-throttle`` (bursts), ``lookup-5xx``: LookupEvents answered ``ThrottlingException``,
  or 503 for half of the calls;
- ``latency``: 400 ms added to every CloudTrail, CloudWatch Logs, SNS and SQS call;
- ``sqs-receive``: 80 % of SQS ``ReceiveMessage`` calls (the alarm path's queue) answered 503;
- ``disk-full``: the state directory's tmpfs filled to the last byte;
- ``read-only``: the state directory remounted read-only. A mount with a file open for writing
  cannot be made read-only, so this stretch starts with a kill: the daemon is restarted on the
  read-only directory, as a host whose disk went read-only would restart it.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import random
import subprocess
from pathlib import Path
from typing import Any

from harness.procs import Emulator


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How many and how long, per mode."""

    kills: int
    smtp_down_s: float
    webhook_s: float  # each of the two stretches (5xx, then 429)
    throttle_bursts: int
    throttle_s: float  # one burst
    stretch_s: float  # lookup-5xx, latency, sqs-receive: each
    disk_s: float  # disk-full, then read-only: each


@dataclasses.dataclass(frozen=True)
class Fault:
    kind: str
    start: float  # seconds after the visible span starts
    end: float  # == start for a kill

    def describe(self) -> str:
        if self.kind == "kill":
            return f"{self.start:7.1f} s  kill -9"
        return f"{self.start:7.1f} s  {self.kind} for {self.end - self.start:.0f} s"


def schedule(rng: random.Random, sizes: Sizes, span: float) -> list[Fault]:
    """The faults of one run over a visible span of ``span`` seconds: every stretch starts
    within the span, the kills at least 8 s apart (a restart takes up to 5 s)."""
    faults: list[Fault] = []

    def stretch(kind: str, length: float) -> Fault:
        start = rng.uniform(0.05 * span, max(0.05 * span, 0.85 * span - length))
        return Fault(kind, round(start, 1), round(start + length, 1))

    faults.append(stretch("smtp-down", sizes.smtp_down_s))
    five = stretch("webhook-5xx", sizes.webhook_s)
    faults.append(five)
    gap = rng.uniform(5, 30)
    faults.append(Fault("webhook-429", round(five.end + gap, 1), round(five.end + gap + sizes.webhook_s, 1)))
    for _ in range(sizes.throttle_bursts):
        faults.append(stretch("lookup-throttle", sizes.throttle_s))
    for kind in ("lookup-5xx", "latency", "sqs-receive"):
        faults.append(stretch(kind, sizes.stretch_s))
    full = stretch("disk-full", sizes.disk_s)
    faults.append(full)
    faults.append(Fault("read-only", full.end, round(full.end + sizes.disk_s, 1)))
    kills: list[float] = []
    while len(kills) < sizes.kills:
        moment = round(rng.uniform(0.03 * span, span), 1)
        if all(abs(moment - other) >= 8 for other in kills):
            kills.append(moment)
    faults += [Fault("kill", moment, moment) for moment in kills]
    return sorted(faults, key=lambda f: (f.start, f.kind))


# --- putting faults in force


class StateDisk:
    """The daemon's state directory on a tmpfs of its own, so it can fill up and turn
    read-only without touching the rest of the machine (needs root, as ``mount`` does)."""

    def __init__(self, path: Path, size_mb: int) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        unmount(path)
        run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(path)])
        self.filler = path / "filler"

    def fill(self) -> int:
        """Writes zeros until the filesystem is full (the last pages a byte at a time); returns
        how many bytes that took."""
        written = 0
        with open(self.filler, "wb", buffering=0) as file:
            for size in (1 << 20, 4096, 1):
                chunk = b"\0" * size
                try:
                    while True:
                        written += file.write(chunk)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
        return written

    def unfill(self) -> None:
        self.filler.unlink(missing_ok=True)

    def read_only(self, on: bool) -> None:
        run(["mount", "-o", f"remount,{'ro' if on else 'rw'}", str(self.path)])

    def release(self) -> None:
        unmount(self.path)


def unmount(path: Path) -> None:
    if os.path.ismount(path):
        run(["umount", "-l", str(path)])


def run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"soak: {' '.join(command)} failed: {done.stderr.strip()} "
                         "(the soak mounts a tmpfs for the state directory: run it as root)")


class Injector:
    """Puts each stretch in force and lifts it; the kills and the read-only stretch's restart
    are the caller's (it owns the daemon)."""

    #: The webhook notifier's path in the HTTP sink.
    WEBHOOK = "/webhook/soak"

    def __init__(self, emulator: Emulator, disk: StateDisk, seed: int) -> None:
        self.emulator, self.disk, self.seed = emulator, disk, seed
        self.active: dict[str, Fault] = {}
        self.filled_bytes = 0

    def _faults(self, name: str, body: dict[str, Any] | None) -> None:
        if body is None:
            self.emulator.control("DELETE", f"faults?name={name}")
        else:
            self.emulator.control("POST", "faults", json.dumps({"name": name, **body}).encode())

    def begin(self, fault: Fault, index: int) -> None:
        self.active[f"{fault.kind}#{index}"] = fault
        kind = fault.kind
        if kind == "smtp-down":
            self.emulator.control("POST", "smtp", json.dumps({"paused": True}).encode())
        elif kind == "webhook-5xx":
            self.emulator.sink_control("script", {"path": self.WEBHOOK, "default": {"status": 503}})
        elif kind == "webhook-429":
            self.emulator.sink_control("script", {"path": self.WEBHOOK, "default": {
                "status": 429, "headers": {"Retry-After": "3"}}})
        elif kind == "lookup-throttle":
            self._faults(f"throttle{index}", {"services": ["cloudtrail"],
                                              "operations": ["LookupEvents"], "throttle": True})
        elif kind == "lookup-5xx":
            self._faults("lookup-5xx", {"services": ["cloudtrail"], "operations": ["LookupEvents"],
                                        "error_rate": 0.5, "seed": self.seed})
        elif kind == "latency":
            self._faults("latency", {"services": ["cloudtrail", "logs", "sns", "sqs"],
                                     "latency_ms": 400})
        elif kind == "sqs-receive":
            self._faults("sqs-receive", {"services": ["sqs"], "operations": ["ReceiveMessage"],
                                         "error_rate": 0.8, "seed": self.seed})
        elif kind == "disk-full":
            self.filled_bytes = self.disk.fill()
        elif kind == "read-only":
            self.disk.read_only(True)
        else:
            raise ValueError(f"unknown fault {kind}")

    def end(self, fault: Fault, index: int) -> None:
        self.active.pop(f"{fault.kind}#{index}", None)
        kind = fault.kind
        if kind == "smtp-down":
            self.emulator.control("POST", "smtp", json.dumps({"paused": False}).encode())
        elif kind in ("webhook-5xx", "webhook-429"):
            self.emulator.sink_control("script", {"path": self.WEBHOOK, "default": None})
        elif kind == "lookup-throttle":
            self._faults(f"throttle{index}", None)
        elif kind in ("lookup-5xx", "latency", "sqs-receive"):
            self._faults(kind, None)
        elif kind == "disk-full":
            self.disk.unfill()
        elif kind == "read-only":
            self.disk.read_only(False)

    def lift_all(self) -> None:
        for key, fault in list(self.active.items()):
            self.end(fault, int(key.rsplit("#", 1)[1]))
