"""Figures 1 and 2, the two that time mail against the emulator's LookupEvents limit: the
backlog drain (N mutations and 10 N reads, timed until the N-th mail) and the latency the
daemon adds (records becoming visible at random times, visibility to mail), with the
percentile they are reported by."""

from __future__ import annotations

import argparse
import math
import random
import re
import statistics
import time
from typing import Any

from harness.procs import Daemon, Emulator, fresh, log, mail_ms, poller_config, wait_for
from harness.records import resample
from harness.settings import ACCOUNT, API_RATE, PAGE, WORK, Mode

POLL_INTERVAL = 5.0  # figure 2's configured poll interval, seconds


# --- figure 1


def drain(args: argparse.Namespace, mode: Mode, templates: tuple[list, list]) -> dict[str, Any]:
    n = mode.mutations
    reads = 10 * n
    work = fresh(WORK / "drain")
    rng = random.Random(7)
    now = time.time()
    items = [resample(rng.choice(templates[0]), rng, now - rng.uniform(60, 3600)) for _ in range(n)]
    items += [resample(rng.choice(templates[1]), rng, now - rng.uniform(60, 3600)) for _ in range(reads)]
    rng.shuffle(items)
    emulator = Emulator(work, lookup_rate=API_RATE)
    try:
        log(f"figure 1: injecting {n} mutations + {reads} reads")
        emulator.inject(items, f"lookup_delay=0&account={ACCOUNT}&region=us-east-1")
        before = emulator.counters()
        pages = math.ceil((n + reads) / PAGE)
        limit_s = pages / API_RATE
        log(f"figure 1: draining; the API limit allows it in {limit_s:.0f}s")
        daemon = Daemon(args.bin, emulator, work / "daemon",
                        poller_config(requests_per_second=API_RATE, start_from="2h"))
        all_seen_at = None
        try:
            deadline = time.monotonic() + 3 * limit_s + 120
            while True:
                if all_seen_at is None and daemon.seen() >= n:
                    all_seen_at = time.time()
                mails = emulator.mails()
                if len(mails) >= n or time.monotonic() > deadline:
                    break
                daemon.running()  # fails if the daemon died
                time.sleep(0.25)
            after = emulator.counters()
            seen = daemon.seen()
        finally:
            daemon.stop()
        complete = len(mails) >= n
        times = sorted(mail_ms(p) / 1000 for p in mails)
        drain_s = (times[n - 1] if complete else time.time()) - daemon.started
        calls = after["lookup_events_calls"] - before["lookup_events_calls"]
        throttled = after["lookup_events_throttled"] - before["lookup_events_throttled"]
        return {
            "mutations": n,
            "reads": reads,
            "complete": complete,
            "mails": len(mails),
            "seen_in_store": seen,
            "min_pages": pages,
            "limit_s": round(limit_s, 1),
            "drain_s": round(drain_s, 1),
            "efficiency": round(limit_s / drain_s, 3),
            "lookup_calls": calls,
            "throttled": throttled,
            "pages_per_mutation": round(calls / n, 3),
            "min_pages_per_mutation": round(pages / n, 3),
            "all_seen_s": round(all_seen_at - daemon.started, 1) if all_seen_at else None,
            "mail_after_seen_s": round(times[n - 1] - all_seen_at, 1) if complete and all_seen_at else None,
            "mail_rate_per_s": round(len(times) / max(times[-1] - times[0], 1e-3), 1) if len(times) > 1 else None,
        }
    finally:
        emulator.stop()


# --- figure 2


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def latency(args: argparse.Namespace, mode: Mode, templates: tuple[list, list]) -> dict[str, Any]:
    work = fresh(WORK / "latency")
    rng = random.Random(11)
    emulator = Emulator(work, lookup_rate=API_RATE)
    daemon = Daemon(args.bin, emulator, work / "daemon",
                    poller_config(poll_interval=f"{POLL_INTERVAL:g}s", short_window="3m"))
    try:
        wait_for("the daemon to start", 60, daemon.running)
        wait_for("the first poll", 60, lambda: emulator.counters()["lookup_events_calls"] > 0)
        items = [{"record": resample(rng.choice(templates[0]), rng, time.time()),
                  "lookupDelay": round(rng.uniform(0.0, mode.latency_span), 3)}
                 for _ in range(mode.latency_records)]
        wanted = {item["record"]["eventID"] for item in items}
        log(f"figure 2: {len(items)} records becoming visible over {mode.latency_span:.0f}s")
        emulator.inject(items, f"retime=1&account={ACCOUNT}&region=us-east-1")
        visible = {e["record"]["eventID"]: e["visibleAt"] for e in emulator.control("GET", "events")
                   if e["record"].get("eventID") in wanted}
        wait_for("every latency mail", mode.latency_span + 120,
                 lambda: len(emulator.mails()) >= len(items), every=0.5)
        added = []
        for path in emulator.mails():
            text = path.read_text(errors="replace")
            ids = [i for i in set(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text))
                   if i in wanted]
            if len(ids) == 1:
                added.append(mail_ms(path) / 1000 - visible[ids[0]])
        if len(added) != len(items):
            raise SystemExit(f"bench: matched {len(added)} of {len(items)} latency mails to records")
        p99 = percentile(added, 0.99)
        return {
            "records": len(items),
            "visibility_span_s": mode.latency_span,
            "poll_interval_s": POLL_INTERVAL,
            "p50_s": round(percentile(added, 0.50), 3),
            "p99_s": round(p99, 3),
            "max_s": round(max(added), 3),
            "mean_s": round(statistics.fmean(added), 3),
            "goal_p99_s": POLL_INTERVAL + 0.25,
        }
    finally:
        daemon.stop()
        emulator.stop()
