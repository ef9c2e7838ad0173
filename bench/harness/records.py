"""The records the figures feed the daemon and the scanners: the rule catalogue as the crate
writes it to ``bench/catalogue.json`` (so the baselines select exactly what the rules do), the public
records file's lines and its IAM templates (mutations, reads), a template resampled with a new
id and time, and figure 3's corpus of trail files."""

from __future__ import annotations

import datetime
import gzip
import json
import random
import time
import uuid
from pathlib import Path

from harness.procs import fresh
from harness.settings import ACCOUNT, ROOT, WORK

# --- the rule catalogue, as the crate writes it (bench/catalogue.json, kept current by a unit
# test), so the baselines select exactly what the rules do


def catalogue() -> dict:
    """``{"iam": {"eventSource", "readPrefixes"}, "rules": [{"category", "when": [[path, test,
    value], ...]}]}``: a record is a finding when it is an IAM mutation or passes every test of
    a rule."""
    path = ROOT / "bench" / "catalogue.json"
    if not path.is_file():
        raise SystemExit("bench: bench/catalogue.json is missing; `IAMWATCHD_WRITE_CATALOGUE=1 "
                         "cargo test --lib the_benchmarks_copy` writes it")
    return json.loads(path.read_text())


# --- synthetic IAM records, shaped like the public corpus's


def record_lines(records: Path) -> list[str]:
    """The non-empty lines of a records.jsonl file, gzipped (.gz) or not."""
    if records.suffix == ".gz":
        with gzip.open(records, "rt", encoding="utf-8") as file:
            text = file.read()
    else:
        text = records.read_text()
    return [line for line in text.splitlines() if line.strip()]


def load_templates(records: Path, prefixes: list[str]) -> tuple[list[dict], list[dict]]:
    mutations, reads = [], []
    for line in record_lines(records):
        record = json.loads(line)
        if record.get("eventSource") != "iam.amazonaws.com" or not record.get("eventName"):
            continue
        (reads if record["eventName"].startswith(tuple(prefixes)) else mutations).append(record)
    return mutations, reads


def event_time(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def resample(template: dict, rng: random.Random, when: float) -> dict:
    record = dict(template)
    record["eventID"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    record["requestID"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    record["eventTime"] = event_time(when)
    record["recipientAccountId"] = ACCOUNT
    record["awsRegion"] = "us-east-1"
    return record


# --- figure 3's corpus


def corpus(records: Path, size: int) -> tuple[Path, int]:
    """``{"Records": [...]}`` files resampled from the public records (new ids and times),
    about 8 MB each, reused across runs when the same size already exists."""
    directory = WORK / f"corpus-{size >> 20}MB"
    done = directory / "COUNT"
    if done.exists():
        return directory, int(done.read_text())
    fresh(directory)
    lines = record_lines(records)
    # Each template serialised once, with markers where the new id and time go.
    marked = []
    for line in lines:
        record = json.loads(line)
        record["eventID"], record["eventTime"] = "@ID@", "@TIME@"
        marked.append(json.dumps(record, separators=(",", ":")))
    rng = random.Random(3)
    start = time.time() - 30 * 86400
    written = count = number = 0
    while written < size:
        parts, part_bytes = [], 0
        while part_bytes < (8 << 20) and written + part_bytes < size:
            text = rng.choice(marked)
            when = event_time(start + count * 2.0)
            text = text.replace('"@ID@"', f'"{uuid.UUID(int=rng.getrandbits(128), version=4)}"', 1)
            text = text.replace('"@TIME@"', f'"{when}"', 1)
            parts.append(text)
            part_bytes += len(text) + 1
            count += 1
        body = '{"Records":[' + ",".join(parts) + "]}"
        (directory / f"{ACCOUNT}_CloudTrail_us-east-1_{number:05d}.json").write_text(body)
        written += len(body)
        number += 1
    done.write_text(str(count))
    return directory, count
