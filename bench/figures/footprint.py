"""Figure 4, footprint: an idle ``iamwatchd run`` with the shipped poller defaults, started
first on core 1 and sampled (RSS split into anonymous and file-backed, CPU) after the mode's
idle time, and a store filled with seen eventIDs by ``fill_store``: its size on disk and the
RSS of a daemon started on it."""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path
from typing import Any

from harness.procs import (Daemon, Emulator, fresh, log, poller_config, proc_cpu_s, proc_rss_kb,
                           wait_for)
from harness.settings import API_RATE, WORK, Mode

# --- figure 4


def disk_bytes(state: Path) -> int:
    return sum(p.stat().st_size for p in state.iterdir() if p.is_file())


def footprint_idle_start(args: argparse.Namespace) -> tuple[Emulator, Daemon]:
    """Starts an emulator and a daemon with the shipped poller defaults, both on core 1."""
    work = fresh(WORK / "idle")
    emulator = Emulator(work, lookup_rate=API_RATE, cpu="1")
    daemon = Daemon(args.bin, emulator, work / "daemon",
                    poller_config(requests_per_second=1.0), cpu="1")
    wait_for("the idle daemon to start", 60, daemon.running)
    return emulator, daemon


def footprint_store(args: argparse.Namespace, mode: Mode, emulator: Emulator) -> dict[str, Any]:
    """A store filled with ``mode.store_events`` seen events: its size, and the RSS of a daemon
    started on it (on core 1, next to the idle one, which it does not disturb)."""
    log(f"figure 4: filling a store with {mode.store_events:,} seen events")
    state = fresh(WORK / "store1m" / "state")
    started = time.perf_counter()
    subprocess.run([str(args.fill_store), str(state), str(mode.store_events)], check=True,
                   stdout=subprocess.DEVNULL)
    fill_s = time.perf_counter() - started
    size = disk_bytes(state)
    big = Daemon(args.bin, emulator, WORK / "store1m" / "daemon",
                 poller_config(requests_per_second=1.0), cpu="1", state=state)
    try:
        wait_for("the daemon on the big store to start", 120, big.running)
        calls = emulator.counters()["lookup_events_calls"]
        # Two poll cycles past start-up, so the numbers include a running poller, not just open().
        wait_for("two polls on the big store", 60,
                 lambda: emulator.counters()["lookup_events_calls"] >= calls + 2, every=0.5)
        time.sleep(1)
        rss, hwm = proc_rss_kb(big.proc.pid)
    finally:
        big.stop()
    return {
        "seen_events": mode.store_events,
        "fill_s": round(fill_s, 1),
        "disk_mb": round(size / 2**20, 1),
        "bytes_per_event": round(size / mode.store_events),
        "rss_mb": round(rss / 1024, 1),
        "peak_rss_mb": round(hwm / 1024, 1),
    }


def footprint(args: argparse.Namespace, mode: Mode, emulator: Emulator, daemon: Daemon,
              warmed_at: float, cpu_at_warm: float) -> dict[str, Any]:
    # The big store first: it fits into the idle daemon's remaining minutes.
    store = footprint_store(args, mode, emulator)
    remaining = mode.idle_seconds - (time.time() - daemon.started)
    if remaining > 0:
        log(f"figure 4: polling idle for {remaining:.0f}s more")
        time.sleep(remaining)
    rss, hwm = proc_rss_kb(daemon.proc.pid)
    cpu = proc_cpu_s(daemon.proc.pid) - cpu_at_warm
    window = time.time() - warmed_at
    # What the kernel counts in RSS splits into the process's own memory and pages of the
    # binary (code, constants) mapped from the page cache; the report shows both.
    rollup = {}
    for line in Path(f"/proc/{daemon.proc.pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        rollup[key] = int(value.split()[0])
    idle = {
        "polled_s": round(time.time() - daemon.started),
        "rss_mb": round(rss / 1024, 1),
        "peak_rss_mb": round(hwm / 1024, 1),
        "anonymous_mb": round(rollup.get("Anonymous", 0) / 1024, 1),
        "file_backed_mb": round((rss - rollup.get("Anonymous", 0)) / 1024, 1),
        "cpu_percent": round(100 * cpu / window, 3),
        "lookup_calls": emulator.counters()["lookup_events_calls"],
    }
    daemon.stop()
    return {"idle": idle, "store": store}
