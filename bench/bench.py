"""iamwatchd benchmarks: how close the release binary gets to the physical limits,
side by side with baselines measured in the same run.

Run it through ``scripts/bench`` (which builds the release binary, installs jq and the venv);
``scripts/bench --help`` lists the options. Never part of ``scripts/test``: performance is
measured here, never asserted by timed tests.

Figures (each against its goal):

1. Backlog drain: the emulator, limited to 2 LookupEvents requests/s like AWS, holds N IAM
   mutations mixed with 10 N IAM reads; the daemon (budget 2 requests/s, ``start_from`` covering
   the backlog) is started and timed until the N-th mail is in the SMTP sink. The limit is
   (N + reads) / 50 pages at 2 pages/s.
2. Added latency: records become visible at random times; for each, visibility → mail in the
   sink, against the poll interval.
3. Scan throughput: ``iamwatchd scan --files`` on a resampled corpus vs jq and a plain Python
   json loop selecting the same events, each on one core (``taskset -c 0``).
4. Footprint: RSS and CPU of an idle ``iamwatchd run`` with the shipped poller defaults, started
   first and polling on core 1 while the other figures run (figure 3 pinned to core 0), sampled
   after 10 minutes (1 in quick mode); RSS with a store of 1,000,000 seen eventIDs, and that
   store's size on disk.
5. Burst digests: a synthetic apply through the library's digest plan on a simulated clock.
6. Accounts (only with ``--only accounts``: about 40 minutes): one daemon watching an
   organization of N member accounts (and N / 5) at a 10 s poll interval, with
   ``[accounts] streams`` "iam", "all", and "all" with ``listed_interval = "5m"``: CPU, RSS, added latency per account, AssumeRole
   calls and LookupEvents requests per member, throttles; the cost per member and a projection
   to 1,000 accounts.

Everything it generates lives under ``bench/work/`` (git-ignored); results go to
``bench/results/<date>-<mode>.json``.

This file is the entry point: the command line, the order the figures run in, the table and the
JSON written. The harness it builds on is in ``harness/`` (settings, processes, records), each
figure group in ``figures/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from figures.accounts import accounts
from figures.digests import digests
from figures.drain_latency import drain, latency
from figures.footprint import footprint, footprint_idle_start
from figures.scan import scan
from harness.procs import proc_cpu_s
from harness.records import catalogue, load_templates
from harness.settings import DEFAULT_RECORDS, FULL, QUICK, RESULTS, ROOT, WORK

# --- report


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    return {"cpu": model, "cores": os.cpu_count(), "ram_gb": round(mem_kb / 2**20, 1),
            "kernel": platform.release()}


def verdict(ok: bool) -> str:
    return "meets" if ok else "SHORT"


def table(r: dict[str, Any]) -> list[list[str]]:
    rows = []
    d = r.get("drain")
    if d:
        rows += [
            [f"1 drain N={d['mutations']:,} (+{d['reads']:,} reads)", f"{d['drain_s']:.0f} s",
             f"limit {d['limit_s']:.0f} s", f"{100 * d['efficiency']:.0f} % of limit",
             verdict(d["complete"] and d["efficiency"] >= 0.95)],
            ["1 throttling errors", str(d["throttled"]), "0", "", verdict(d["throttled"] == 0)],
            ["1 pages per mutation", f"{d['pages_per_mutation']:.3f}",
             f"min {d['min_pages_per_mutation']:.3f}",
             f"{d['pages_per_mutation'] / d['min_pages_per_mutation']:.2f}x", ""],
            ["1 all in store / last mail", f"{d['all_seen_s']} s / {d['drain_s']:.0f} s",
             "", f"mail {d['mail_rate_per_s']}/s", ""],
        ]
    lat = r.get("latency")
    if lat:
        goal = lat["goal_p99_s"]
        rows += [
            [f"2 added latency p50/p99/max ({lat['records']} records)",
             f"{lat['p50_s']:.2f}/{lat['p99_s']:.2f}/{lat['max_s']:.2f} s",
             f"p99 <= {goal:.2f} s (poll {lat['poll_interval_s']:g} s)",
             f"p99 {lat['p99_s'] / goal:.2f}x goal", verdict(lat["p99_s"] <= goal)],
        ]
    s = r.get("scan")
    if s:
        mb = s["corpus_bytes"] / 2**20
        rows += [
            [f"3 scan {mb:.0f} MB, {s['records']:,} records", f"{s['iamwatchd']['events_per_s']:,} ev/s",
             f"jq {s['jq']['events_per_s']:,} ev/s", f"{s['vs_jq']}x jq", verdict(s["vs_jq"] >= 10)],
            ["3 scan vs python json loop", f"{s['iamwatchd']['seconds']} s",
             f"python {s['python']['events_per_s']:,} ev/s", f"{s['vs_python']}x python", ""],
            ["3 same findings (iamwatchd/jq/python)",
             f"{s['iamwatchd']['found']}/{s['jq']['found']}/{s['python']['found']}", "equal", "",
             verdict(s["same_count"])],
        ]
    f = r.get("footprint")
    if f:
        idle, store = f["idle"], f["store"]
        rows += [
            [f"4 idle RSS after {idle['polled_s']} s polling", f"{idle['rss_mb']} MB", "<= 15 MB",
             f"{idle['rss_mb'] / 15:.2f}x goal", verdict(idle["rss_mb"] <= 15)],
            ["4 idle RSS: anonymous / file-backed (code)", f"{idle['anonymous_mb']} / {idle['file_backed_mb']} MB",
             "", "", ""],
            ["4 idle CPU", f"{idle['cpu_percent']} %", "", "", ""],
            [f"4 RSS with {store['seen_events']:,} seen ids", f"{store['rss_mb']} MB", "", "", ""],
            ["4 store on disk", f"{store['disk_mb']} MB", "", f"{store['bytes_per_event']} B/event", ""],
        ]
    g = r.get("digests")
    if g:
        # Goal: at most 1 % of the changes as messages, plus the CRITICAL ones (sent at once),
        # plus the other principal's one change.
        goal = g["changes"] // 100 + g["critical"] + 1
        per_1000 = 1000 * g["messages"] / g["changes"]
        rows += [
            [f"5 messages for a {g['changes']:,}-change apply ({g['critical']} CRITICAL)",
             f"{g['messages']} ({g['digests']} digests)", f"<= {goal}",
             f"{per_1000:.0f} per 1,000 changes", verdict(g["messages"] <= goal)],
            ["5 added delay of held findings p99/max", f"{g['held_delay_p99_s']:.0f}/{g['held_delay_max_s']:.0f} s",
             f"p99 <= {g['max_delay_s']} s (max_delay)", f"{g['held']} held",
             verdict(g["held_delay_p99_s"] <= g["max_delay_s"])],
        ]
    a = r.get("accounts")
    if a:
        rows += accounts_rows(a)
    return rows


def accounts_rows(a: dict[str, Any]) -> list[list[str]]:
    """Figure 6: per run its figures, the goals held at the target size; per stream choice the
    cost of one more member and the projection."""
    rows = []
    for run in a["runs"]:
        at_target = run["accounts"] == a["target_accounts"]
        head = f"6 {run['accounts']} accounts, streams {run.get('choice', run['streams'])}"
        lat = run["latency"]
        p99 = lat["p99_s"] if lat["p99_s"] is not None else float("inf")
        rows += [
            [f"{head}: RSS (anon / file)",
             f"{run['rss_mb']} MB ({run['anonymous_mb']} / {run['file_backed_mb']})",
             "<= 25 MB" if at_target else "", f"{run['rss_mb'] / 25:.2f}x goal" if at_target else "",
             verdict(run["rss_mb"] <= 25) if at_target else ""],
            [f"{head}: CPU over {run['window_s']:.0f} s", f"{run['cpu_percent']} % of a core",
             "<= 2 %" if at_target else "", f"load {run['loadavg_window_end'][0]}",
             verdict(run["cpu_percent"] <= 2) if at_target else ""],
            [f"{head}: added latency p50/p99/max ({lat['mailed']}/{lat['changes']} mailed)",
             f"{lat['p50_s']}/{lat['p99_s']}/{lat['max_s']} s", f"p99 <= {lat['goal_p99_s']} s",
             f"p99 stored {lat['detected']['p99_s']} s, mailed +{lat['delivered']['p99_s']} s",
             verdict(p99 <= lat["goal_p99_s"] and lat["mailed"] == lat["changes"])],
            [f"{head}: AssumeRole / h (window; since start)",
             f"{run['assume_role_per_hour']:,} ({run['assume_role_calls_since_start']:,})", "", "", ""],
            [f"{head}: LookupEvents / min per member (min-max)",
             f"{run['lookup_per_min_per_member']} ({run['lookup_per_min_member_min']}-"
             f"{run['lookup_per_min_member_max']})", "", "", ""],
            [f"{head}: throttles (window; since start)",
             f"{run['throttled_window']} ({run['throttled_since_start']})", "0", "",
             verdict(run["throttled_since_start"] == 0)],
            [f"{head}: stopped by SIGTERM", f"exit {run['exit_status']}"
             + (", panicked" if run["panicked"] else ""), "exit 0, no panic", "",
             verdict(run["exit_status"] == 0 and not run["panicked"])],
        ]
    for streams, cost in a["per_member"].items():
        small, large = cost["sizes"]
        rows += [
            [f"6 per member ({streams}, slope {small} to {large})",
             f"{cost['rss_kb']} KB RSS, {cost['cpu_percent']} % CPU", "", "", ""],
            [f"6 projected to 1,000 accounts ({streams})",
             f"{cost['projected_1000_rss_mb']} MB, {cost['projected_1000_cpu_percent']} % CPU",
             "", "", ""],
        ]
    return rows


def render(rows: list[list[str]]) -> str:
    header = ["figure", "measured", "goal / baseline", "ratio", "verdict"]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    line = lambda row: "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *map(line, rows)])


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller figures, under 2 minutes")
    parser.add_argument("--bin", type=Path, required=True, help="release iamwatchd binary")
    parser.add_argument("--fill-store", type=Path, required=True, help="release fill_store tool (bench/fill_store.rs)")
    parser.add_argument("--records", type=Path, default=DEFAULT_RECORDS,
                        help="public CloudTrail records to resample (default: %(default)s)")
    parser.add_argument("--digest-sim", type=Path, help="release digest_sim tool (bench/digest_sim.rs)")
    parser.add_argument("--only", choices=["drain", "latency", "scan", "footprint", "digests", "accounts"],
                        action="append",
                        help="run only these figures (repeatable; the result file name says which); "
                             "figure 6, accounts, runs only when named here")
    parser.add_argument("--mutations", type=int, help="figure 1's N (default: 200 quick, 3000 full)")
    parser.add_argument("--corpus-mb", type=int, help="figure 3's corpus size (default: 200 / 1024)")
    parser.add_argument("--accounts", type=int, default=100,
                        help="figure 6's member accounts (default: %(default)s; also run at a fifth of it)")
    parser.add_argument("--accounts-window", type=int,
                        help="figure 6's quiet window per run, seconds (default: 300 quick, 600 full)")
    args = parser.parse_args()
    if not args.records.is_file():
        raise SystemExit(f"bench: {args.records} is missing; pass --records with a records.jsonl(.gz)")
    mode = QUICK if args.quick else FULL
    if args.mutations:
        mode = dataclasses.replace(mode, mutations=args.mutations)
    if args.corpus_mb:
        mode = dataclasses.replace(mode, corpus_bytes=args.corpus_mb << 20)
    if args.accounts_window:
        mode = dataclasses.replace(mode, accounts_window=args.accounts_window)
    only = set(args.only or ["drain", "latency", "scan", "footprint", "digests"])
    rules = catalogue()
    templates = load_templates(args.records, rules["iam"]["readPrefixes"])
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.time()
    result: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": mode.name,
        "machine": machine(),
        "commit": subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                                 capture_output=True, text=True).stdout.strip(),
    }
    idle = None
    if "footprint" in only:
        idle = footprint_idle_start(args)
        warmed_at, cpu_at_warm = time.time(), proc_cpu_s(idle[1].proc.pid)
    try:
        if "drain" in only:
            result["drain"] = drain(args, mode, templates)
        if "latency" in only:
            result["latency"] = latency(args, mode, templates)
        if "scan" in only:
            result["scan"] = scan(args, mode, rules)
        if "digests" in only and args.digest_sim:
            result["digests"] = digests(args)
        if "accounts" in only:
            result["accounts"] = accounts(args, mode)
        if idle:
            result["footprint"] = footprint(args, mode, *idle, warmed_at, cpu_at_warm)
    finally:
        if idle:
            idle[1].stop()
            idle[0].stop()
    result["wall_s"] = round(time.time() - started)
    rows = table(result)
    result["table"] = [dict(zip(["figure", "measured", "goal", "ratio", "verdict"], r)) for r in rows]
    print(f"iamwatchd benchmarks, {mode.name} mode, {result['date']}, {result['machine']['cpu']} "
          f"({result['machine']['cores']} cores, {result['machine']['ram_gb']} GB), "
          f"commit {result['commit']}, {result['wall_s']} s")
    print(render(rows))
    # A partial or resized run gets its own file, so it never passes for a full one.
    name = f"{result['date'][:10]}-{mode.name}"
    if args.only:
        name += "-" + "-".join(sorted(only))
    if args.mutations:
        name += f"-n{args.mutations}"
    if "accounts" in only and (args.accounts != 100 or args.accounts_window):
        name += f"-a{args.accounts}" + (f"-w{args.accounts_window}" if args.accounts_window else "")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
