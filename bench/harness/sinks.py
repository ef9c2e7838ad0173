"""What the soak reads back: every message each notifier's sink received (the SMTP sink's
``.eml`` files, the HTTP sink's request records, the SNS notifier's SQS queue), each with its
arrival time and the eventIDs it names, and the daemon's Prometheus endpoint."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
import re
import urllib.request
from pathlib import Path
from typing import Any, Iterable

from harness.procs import mail_ms

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclasses.dataclass(frozen=True)
class Delivery:
    """One message a sink accepted: when (unix seconds) and the UUIDs its content names."""

    at: float
    ids: frozenset[str]


def mail_text(raw: bytes) -> tuple[str, str]:
    """(From header, every decoded text part and header) of one ``.eml`` file."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    parts = [str(value) for value in message.values()]
    for part in message.walk():
        if part.get_content_maintype() == "multipart":
            continue
        payload = part.get_payload(decode=True) or b""
        parts.append(payload.decode("utf-8", "replace"))
    return str(message.get("From", "")), "\n".join(parts)


class MailReader:
    """The daemon's mails in the SMTP sink's maildir (other senders, such as the emulator's
    SNS e-mail subscription, are left out), each file parsed once across calls."""

    def __init__(self, maildir: Path, sender: str) -> None:
        self.maildir, self.sender = maildir, sender
        self._parsed: dict[str, Delivery | None] = {}

    def deliveries(self) -> list[Delivery]:
        for path in self.maildir.iterdir():
            if path.name.endswith(".eml") and path.name not in self._parsed:
                sender, text = mail_text(path.read_bytes())
                self._parsed[path.name] = (Delivery(mail_ms(path) / 1000, frozenset(UUID.findall(text)))
                                           if self.sender in sender else None)
        return [d for d in self._parsed.values() if d is not None]


class HttpReader:
    """The accepted (2xx) requests the HTTP sink stored under one path prefix per notifier,
    each record file read once across calls."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._records: dict[str, dict[str, Any]] = {}

    def _load(self) -> None:
        for path in self.directory.glob("*.json"):
            if path.name not in self._records:
                try:
                    self._records[path.name] = json.loads(path.read_text())
                except ValueError:
                    continue  # being written (the store renames into place; a stray temp file)

    def deliveries(self, prefix: str) -> list[Delivery]:
        self._load()
        out = []
        for record in self._records.values():
            if not record.get("path", "").startswith(prefix) or record.get("status", 500) >= 300:
                continue
            received = record["received_at"].replace("Z", "+00:00")
            out.append(Delivery(_iso_seconds(received), frozenset(UUID.findall(record.get("body", "")))))
        return out

    def answered(self, prefix: str) -> dict[int, int]:
        """How many requests under ``prefix`` got each status (the refused ones included)."""
        self._load()
        counts: dict[int, int] = {}
        for record in self._records.values():
            if record.get("path", "").startswith(prefix):
                counts[record["status"]] = counts.get(record["status"], 0) + 1
        return counts


def _iso_seconds(text: str) -> float:
    import datetime

    return datetime.datetime.fromisoformat(text).timestamp()


class QueueReader:
    """The SNS notifier's queue read all along in a thread of its own (moto's ReceiveMessage
    costs time in proportion to the queue, so a queue left to fill up takes minutes to read at
    the end), except while ``paused()`` says so (the soak's SQS receive errors are meant for
    the daemon); ``stop()`` reads what is left and returns every message."""

    def __init__(self, sqs: Any, queue_url: str, paused: Any) -> None:
        import threading

        self.sqs, self.queue_url, self.paused = sqs, queue_url, paused
        self.deliveries: list[Delivery] = []
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.paused():
                    self._stop.wait(1)
                    continue
                drain_queue(self.sqs, self.queue_url, rounds=20, into=self.deliveries,
                            seen=self.seen)
            except Exception:  # noqa: BLE001 - a fault began mid-call; the messages stay queued
                self._stop.wait(1)

    def stop(self) -> list[Delivery]:
        self._stop.set()
        self._thread.join()
        return drain_queue(self.sqs, self.queue_url, into=self.deliveries, seen=self.seen)


def drain_queue(sqs: Any, queue_url: str, rounds: int | None = None,
                into: list[Delivery] | None = None, seen: set[str] | None = None) -> list[Delivery]:
    """The messages of the SNS notifier's queue (raw delivery: the body is the SNS message),
    added to ``into`` as received (so a failing call loses none), deleted once recorded, until
    the queue is empty or after ``rounds`` receives; the arrival time is SQS's
    ``SentTimestamp`` (the publish); a message seen before (its delete failed, so SQS handed
    it out again) is not counted twice (``seen``: the MessageIds so far). Returns ``into``."""
    out = [] if into is None else into
    seen = set() if seen is None else seen
    while rounds is None or rounds > 0:
        rounds = None if rounds is None else rounds - 1
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                     AttributeNames=["SentTimestamp"], WaitTimeSeconds=1)
        messages = answer.get("Messages", [])
        if not messages:
            return out
        for message in messages:
            if message["MessageId"] in seen:
                continue
            seen.add(message["MessageId"])
            out.append(Delivery(int(message["Attributes"]["SentTimestamp"]) / 1000,
                                frozenset(UUID.findall(message["Body"]))))
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
    return out


# --- the daemon's Prometheus endpoint

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text format: ``{(name, ((label, value), ...)): value}``."""
    samples = {}
    for line in text.splitlines():
        match = SAMPLE.match(line.strip())
        if match is None or line.startswith("#"):
            continue
        labels = tuple(sorted(LABEL.findall(match.group(2) or "")))
        samples[(match.group(1), labels)] = float(match.group(3))
    return samples


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
    """The daemon's metrics now, or None when it does not answer (not up yet, or wedged)."""
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return parse_metrics(response.read().decode())
    except OSError:
        return None


def per_notifier(samples: dict | None, name: str) -> dict[str, float]:
    """``{notifier: value}`` of one metric with a ``notifier`` label."""
    out: dict[str, float] = {}
    for (metric, labels), value in (samples or {}).items():
        if metric == name:
            out[dict(labels).get("notifier", "")] = value
    return out


def total(samples: dict | None, name: str) -> float:
    """The sum of one metric over its labels (0 when absent)."""
    return sum(v for (metric, _), v in (samples or {}).items() if metric == name)


def ids_in(deliveries: Iterable[Delivery], wanted: set[str]) -> list[tuple[float, str]]:
    """(time, eventID) for each delivery naming one of ``wanted``."""
    return [(d.at, i) for d in deliveries for i in d.ids & wanted]
