"""The emulator serves the real public records (tests/data/cloudtrail) the way AWS would."""

from __future__ import annotations

import gzip
import json
from collections import Counter

from conftest import CORPUS, corpus_records, lookup_all, records_of, wait_for


#: The corpus spans many accounts; LookupEvents answers per account, so put them all in ours.
SAME_ACCOUNT = "retime=1&region=us-east-1&account=123456789012"


def injectable(records: list[dict]) -> list[dict]:
    """Records LookupEvents could hold: the corpus has hand-edited test records without names."""
    return [r for r in records if isinstance(r.get("eventName"), str) and r["eventName"]]


def test_lookup_by_event_source_returns_exactly_the_iam_records(emulator):
    records = injectable(corpus_records())
    status, answer = emulator.control("POST", "events", records, query=SAME_ACCOUNT)
    assert status == 200 and answer["accepted"] == len(records)
    events = lookup_all(emulator.client("cloudtrail"), LookupAttributes=[
        {"AttributeKey": "EventSource", "AttributeValue": "iam.amazonaws.com"}])
    expected = Counter(r["eventName"] for r in records if r.get("eventSource") == "iam.amazonaws.com")
    assert Counter(e["EventName"] for e in events) == expected
    # The records come back verbatim apart from the rewritten time, account and region.
    volatile = {"eventTime", "recipientAccountId", "awsRegion"}

    def stable(record: dict) -> dict:
        return {k: v for k, v in record.items() if k not in volatile}

    by_id: dict[str, list[dict]] = {}
    for record in records:
        by_id.setdefault(record.get("eventID", ""), []).append(stable(record))
    for record in records_of(events):
        # Hand-edited test records share ids like "12345": the record must be one of them.
        if record["eventID"] in by_id:  # else injection assigned the id the record lacked
            assert stable(record) in by_id[record["eventID"]]


def test_read_only_lookup_agrees_with_the_records(emulator):
    records = [r for r in injectable(corpus_records()) if isinstance(r.get("readOnly"), bool)]
    emulator.control("POST", "events", records, query=SAME_ACCOUNT)
    writes = lookup_all(emulator.client("cloudtrail"), LookupAttributes=[
        {"AttributeKey": "ReadOnly", "AttributeValue": "false"}])
    assert len(writes) == sum(1 for r in records if r["readOnly"] is False)


def test_a_whole_trail_file_goes_in_and_reaches_a_log_group(emulator):
    from test_delivery import build_pipeline, delivered

    pipeline = build_pipeline(emulator)
    path = sorted((CORPUS / "trail-files" / "invictus-ir").glob("*.json.gz"))[0]
    text = gzip.decompress(path.read_bytes())
    trail_file = json.loads(text)
    status, answer = emulator.control("POST", "events", raw=text, query=SAME_ACCOUNT)
    assert status == 200 and answer["accepted"] == len(trail_file["Records"])
    expected = {r["eventID"] for r in trail_file["Records"]}  # a multi-region trail gets all
    wait_for(lambda: {r["eventID"] for r in delivered(emulator, pipeline.group)} >= expected,
             "every record of the trail file in the log group")
