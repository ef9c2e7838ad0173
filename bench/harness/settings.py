"""The run's fixed settings: where the repository, the generated data and the results live,
the account and key the emulator answers for, the LookupEvents page size and rate limit, and the
two modes (quick, full) with each figure's size."""

from __future__ import annotations

import dataclasses
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent  # bench/harness/settings.py
WORK = ROOT / "bench" / "work"
RESULTS = ROOT / "bench" / "results"
DEFAULT_RECORDS = ROOT / "tests" / "data" / "cloudtrail" / "records.jsonl.gz"
ACCOUNT = "123456789012"  # moto's default account: the one the emulator's root key belongs to
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"  # tests/e2e/emulator.rs ROOT_ACCESS_KEY
PAGE = 50  # LookupEvents MaxResults
API_RATE = 2.0  # LookupEvents requests/s per account and region (AWS)


@dataclasses.dataclass(frozen=True)
class Mode:
    name: str
    mutations: int  # figure 1: N (reads are 10 N)
    latency_records: int  # figure 2
    latency_span: float  # figure 2: visibility spread over this many seconds
    corpus_bytes: int  # figure 3
    idle_seconds: int  # figure 4: polling time before the idle sample
    store_events: int  # figure 4
    accounts_window: int  # figure 6: seconds of the quiet window, per run


# Figure 1's N: the goal is 10,000 mutations + 100,000 reads, which is 2,200 pages and so
# 1,100 s at the API limit by itself, more than the whole 15-minute budget of a full run. The
# drain is linear in the backlog (pages at a fixed rate, mail keeping pace), so 3,000 (full,
# 660 pages, 330 s) and 200 (quick, 44 pages) measure the same ratio with less start-up weight in
# the larger one; `--only drain --mutations 10000` runs the goal's size (about 19 minutes).
# Figure 4's idle daemon polls from the start of the run, alongside the other figures, so a full
# run measures it after the goal's 10 minutes without adding them to the wall time.
# Figure 6's window holds at least one sweep of every stream (sweep_interval 5 m).
QUICK = Mode("quick", 200, 30, 30.0, 200 << 20, 60, 1_000_000, 300)
FULL = Mode("full", 3000, 150, 60.0, 1 << 30, 600, 1_000_000, 600)
