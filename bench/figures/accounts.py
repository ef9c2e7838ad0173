"""Figure 6, accounts: one daemon watching a whole organization (issue 14).

The emulator gets an organization of N member accounts (``CreateAccount``), each with the
member role ``iamwatchd-member`` trusting the management account, as the member-role template
makes it. ``iamwatchd run`` discovers them through Organizations and reads each through its
role, at a 10 s poll interval and the shipped budget of 1 LookupEvents request/s per account,
with ``[accounts] streams`` "iam" or "all", and "all" once more with ``listed_interval = "5m"``
(the listed streams read once per sweep). Once every member is watched and has polled, and
``SETTLE_S`` more, a quiet window measures what watching costs: the daemon's CPU-seconds
(``/proc/<pid>/stat``) over the window, its RSS (VmRSS, anonymous and file-backed) at the end,
and from the emulator's per-account counters the AssumeRole calls and the LookupEvents requests
and throttles in each account. Then the latency: one IAM change in each member (``CreateUser``
through the account's ``OrganizationAccountAccessRole``), spread over ``LATENCY_SPREAD_S``,
each timed from the call's answer (the emulator's record is visible from then on) to its mail in
the SMTP sink.

It runs at two sizes, N and N / 5: the slope between them is the cost of one more member, which
projects the figures to 1,000 accounts. Goals (issue 14): at 100 accounts RSS <= 25 MB and CPU
<= 2 % of a core, latency p99 within figure 2's goal (poll interval + 0.25 s), 0 throttles.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from figures.drain_latency import percentile
from harness.procs import (Daemon, Emulator, aws, free_port, fresh, log, mail_ms, poller_config,
                           proc_cpu_s, proc_rss_kb, wait_for)
from harness.settings import ACCOUNT, API_RATE, WORK, Mode
from harness.sinks import UUID, mail_text, scrape

POLL_INTERVAL = 10.0  # seconds, the issue's
MEMBER_ROLE = "iamwatchd-member"  # accounts.member_role's default
ADMIN_ROLE = "OrganizationAccountAccessRole"  # Organizations makes it in each account it creates
SETTLE_S = 30  # after every member's first pass: the first sweeps and alias look-ups done
LATENCY_SPREAD_S = 60.0  # the changes of the latency phase, one per member, over this long
SENDER = "iamwatchd@example.com"
PROJECTED = 1000  # accounts
# What the members read: (label, accounts.streams, accounts.listed_interval or the default).
CHOICES = [("iam", "iam", None), ("all", "all", None), ("all, listed 5m", "all", "5m")]


@dataclasses.dataclass
class Member:
    id: str
    name: str
    iam: Any  # an IAM client acting in the account as its administrator


def organization(emulator: Emulator, n: int) -> list[Member]:
    """N member accounts, each with the member role; the administrator's credentials in each
    are taken now, so the window's AssumeRole counts are the daemon's alone."""
    org, sts = aws(emulator, "organizations"), aws(emulator, "sts")
    org.create_organization(FeatureSet="ALL")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "sts:AssumeRole"}]})
    members = []
    for number in range(1, n + 1):
        name = f"member-{number:04d}"
        status = org.create_account(AccountName=name, Email=f"{name}@example.com")
        account = status["CreateAccountStatus"]["AccountId"]
        credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{ADMIN_ROLE}",
                                      RoleSessionName="bench-admin")["Credentials"]
        iam = aws(emulator, "iam", credentials)
        iam.create_role(RoleName=MEMBER_ROLE, AssumeRolePolicyDocument=trust)
        members.append(Member(account, name, iam))
    return members


def polling_members(metrics_url: str) -> set[str]:
    """The members the daemon reports watched that completed a pass."""
    samples = scrape(metrics_url) or {}
    watched, passed = set(), set()
    for (metric, labels), value in samples.items():
        account = dict(labels).get("account")
        if metric == "iamwatchd_account_watched" and value == 1:
            watched.add(account)
        elif metric == "iamwatchd_account_poll_passes_total" and value >= 1:
            passed.add(account)
    return watched & passed


def loadavg() -> list[float]:
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


def snapshot(emulator: Emulator, daemon: Daemon) -> dict[str, Any]:
    return {"at": time.time(), "cpu_s": proc_cpu_s(daemon.proc.pid),
            "emulator_cpu_s": proc_cpu_s(emulator.proc.pid),
            "counters": emulator.control("GET", "counters/accounts"), "loadavg": loadavg()}


def moved(after: dict, before: dict, accounts: list[str], counter: str) -> list[int]:
    """How far ``counter`` of each of ``accounts`` moved between two counters/accounts reads."""
    return [after.get(a, {}).get(counter, 0) - before.get(a, {}).get(counter, 0) for a in accounts]


def rss(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM, and the RSS split into anonymous memory and file-backed pages."""
    now, peak = proc_rss_kb(pid)
    rollup = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        rollup[key] = int(value.split()[0])
    anonymous = rollup.get("Anonymous", 0)
    return {"rss_mb": round(now / 1024, 1), "peak_rss_mb": round(peak / 1024, 1),
            "anonymous_mb": round(anonymous / 1024, 1),
            "file_backed_mb": round((now - anonymous) / 1024, 1)}


def first_seen(state: Path) -> dict[str, float]:
    """When the daemon first stored each CreateUser it read (unix seconds), by eventID."""
    with sqlite3.connect(f"file:{state / 'iamwatchd.sqlite3'}?mode=ro", uri=True, timeout=5) as db:
        rows = db.execute("SELECT event_id, first_seen_at FROM seen_event "
                          "WHERE event_name = 'CreateUser'").fetchall()
    return {event_id: at / 1000 for event_id, at in rows}


def spread(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_s": None, "p99_s": None, "max_s": None}
    return {"p50_s": round(percentile(values, 0.50), 3), "p99_s": round(percentile(values, 0.99), 3),
            "max_s": round(max(values), 3)}


def latency_phase(emulator: Emulator, daemon: Daemon, members: list[Member]) -> dict[str, Any]:
    """One CreateUser per member, spread over LATENCY_SPREAD_S; each from its call's answer to
    the daemon's mail naming the user, split at the moment the daemon stored the event (read
    from the store) into detection and delivery."""
    answered: dict[str, float] = {}
    gap = LATENCY_SPREAD_S / len(members)
    start = time.time()
    for index, member in enumerate(members):
        time.sleep(max(0.0, start + index * gap - time.time()))
        user = f"latency-{member.name}"
        member.iam.create_user(UserName=user)
        answered[user] = time.time()
    named = re.compile(r"latency-member-\d{4}")
    arrivals: dict[str, list[float]] = {}
    event_ids: dict[str, set[str]] = {}
    parsed: set[str] = set()

    def all_arrived() -> bool:
        for path in emulator.mails():
            if path.name in parsed:
                continue
            parsed.add(path.name)
            sender, text = mail_text(path.read_bytes())
            users = set(named.findall(text)) & set(answered)
            if SENDER in sender and len(users) == 1:
                user = users.pop()
                arrivals.setdefault(user, []).append(mail_ms(path) / 1000)
                event_ids.setdefault(user, set()).update(UUID.findall(text))
        return len(arrivals) == len(answered)

    deadline = LATENCY_SPREAD_S + 6 * POLL_INTERVAL + 60
    try:
        wait_for("every change's mail", deadline, all_arrived, every=0.5)
    except TimeoutError:
        log(f"figure 6: {len(answered) - len(arrivals)} of {len(answered)} changes without a mail")
    added = {user: min(times) - answered[user] for user, times in arrivals.items()}
    seen = first_seen(daemon.state)
    stored = {user: min(seen[i] for i in ids & seen.keys())
              for user, ids in event_ids.items() if ids & seen.keys()}
    return {
        "changes": len(answered),
        "mailed": len(added),
        "repeated": sum(len(t) - 1 for t in arrivals.values()),
        **spread(list(added.values())),
        "worst": max(added, key=added.get) if added else None,
        "goal_p99_s": POLL_INTERVAL + 0.25,
        "over_goal": sum(1 for v in added.values() if v > POLL_INTERVAL + 0.25),
        "detected": spread([stored[u] - answered[u] for u in stored]),
        "delivered": spread([min(arrivals[u]) - stored[u] for u in stored]),
    }


def work_dir(label: str, n: int) -> Path:
    return WORK / f"accounts-{re.sub(r'[^a-z0-9]+', '-', label)}-{n}"


def run(args: argparse.Namespace, mode: Mode, n: int, choice: tuple[str, str, str | None]) -> dict[str, Any]:
    """One daemon watching ``n`` members with ``choice``: its settle time, the quiet window's
    figures and the latency phase's."""
    label, streams, listed = choice
    work = fresh(work_dir(label, n))
    emulator = Emulator(work, lookup_rate=API_RATE)
    daemon = None
    try:
        log(f"figure 6: an organization of {n} members ({label})")
        members = organization(emulator, n)
        ids = [m.id for m in members]
        port = free_port()
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        before_start = emulator.control("GET", "counters/accounts")
        daemon = Daemon(args.bin, emulator, work / "daemon",
                        poller_config(requests_per_second=1.0, poll_interval=f"{POLL_INTERVAL:g}s"),
                        extra=f"""
[digest]
enabled = false

[metrics]
listen = "127.0.0.1:{port}"

[accounts]
member_role = "{MEMBER_ROLE}"
streams = "{streams}"
{f'listed_interval = "{listed}"' if listed else ""}

[accounts.organizations]
enabled = true
""")
        wait_for("the daemon to start", 120, daemon.running)
        wait_for(f"all {n} members watched and polled", 120 + 2 * n,
                 lambda: daemon.running() and len(polling_members(metrics_url) & set(ids)) == n,
                 every=1.0)
        settled_s = time.time() - daemon.started
        log(f"figure 6: {n} members polling after {settled_s:.0f}s; settling {SETTLE_S}s, "
            f"then a quiet window of {mode.accounts_window}s")
        time.sleep(SETTLE_S)
        first = snapshot(emulator, daemon)
        time.sleep(mode.accounts_window)
        daemon.running()
        last = snapshot(emulator, daemon)
        memory = rss(daemon.proc.pid)
        log(f"figure 6: latency, one change in each of the {n} members")
        latency = latency_phase(emulator, daemon, members)
        after_changes = rss(daemon.proc.pid)
        end = snapshot(emulator, daemon)
    finally:
        if daemon:
            daemon.stop()
        emulator.stop()
    window = last["at"] - first["at"]
    before, during, ever = first["counters"], last["counters"], end["counters"]
    lookups = moved(during, before, ids, "lookup_events_calls")
    per_minute = [c / (window / 60) for c in lookups]
    home_lookups = moved(during, before, [ACCOUNT], "lookup_events_calls")[0]
    assumed = sum(moved(during, before, ids, "assume_role_calls"))
    everyone = ids + [ACCOUNT]
    log_text = daemon.log_path.read_text(errors="replace")
    return {
        "accounts": n,
        "streams": streams,
        "listed_interval": listed or "1m",
        "choice": label,
        "settled_s": round(settled_s, 1),
        "window_s": round(window, 1),
        "cpu_s": round(last["cpu_s"] - first["cpu_s"], 2),
        "cpu_percent": round(100 * (last["cpu_s"] - first["cpu_s"]) / window, 3),
        **memory,
        "rss_after_changes_mb": after_changes["rss_mb"],
        "assume_role_calls_window": assumed,
        "assume_role_per_hour": round(assumed * 3600 / window),
        "assume_role_calls_since_start": sum(moved(ever, before_start, ids, "assume_role_calls")),
        "assume_role_refused_since_start": sum(moved(ever, before_start, ids, "assume_role_refused")),
        "lookup_per_min_per_member": round(sum(per_minute) / n, 2),
        "lookup_per_min_member_min": round(min(per_minute), 2),
        "lookup_per_min_member_max": round(max(per_minute), 2),
        "lookup_per_min_home": round(home_lookups / (window / 60), 2),
        "throttled_window": sum(moved(during, before, everyone, "lookup_events_throttled")),
        "throttled_since_start": sum(moved(ever, before_start, everyone, "lookup_events_throttled")),
        "latency": latency,
        "emulator_cpu_percent": round(100 * (last["emulator_cpu_s"] - first["emulator_cpu_s"]) / window, 1),
        "loadavg_window_start": first["loadavg"],
        "loadavg_window_end": last["loadavg"],
        "exit_status": daemon.proc.returncode,
        "panicked": "panicked" in log_text,
    }


def per_member(small: dict[str, Any], large: dict[str, Any], key: str) -> float:
    return (large[key] - small[key]) / (large["accounts"] - small["accounts"])


def accounts(args: argparse.Namespace, mode: Mode) -> dict[str, Any]:
    target = args.accounts
    sizes = sorted({max(2, target // 5), target}, reverse=True)
    runs = []
    # The goal's size first; each run's figures are kept beside its work directory as soon as
    # they are measured, so an interrupted half hour leaves what it measured.
    for n in sizes:
        for choice in CHOICES:
            runs.append(run(args, mode, n, choice))
            (work_dir(choice[0], n) / "result.json").write_text(json.dumps(runs[-1], indent=1))
    order = [label for label, _, _ in CHOICES]
    runs.sort(key=lambda r: (order.index(r["choice"]), r["accounts"]))
    out: dict[str, Any] = {"target_accounts": target, "poll_interval_s": POLL_INTERVAL,
                           "window_s": mode.accounts_window, "runs": runs, "per_member": {}}
    for label in order:
        measured = [r for r in runs if r["choice"] == label]
        if len(measured) < 2:
            continue
        small, large = measured[0], measured[-1]
        rss_mb = per_member(small, large, "rss_mb")
        anon_mb = per_member(small, large, "anonymous_mb")
        cpu = per_member(small, large, "cpu_percent")
        out["per_member"][label] = {
            "sizes": [small["accounts"], large["accounts"]],
            "rss_kb": round(1024 * rss_mb),
            "anonymous_kb": round(1024 * anon_mb),
            "cpu_percent": round(cpu, 4),
            f"projected_{PROJECTED}_rss_mb": round(large["rss_mb"] + (PROJECTED - large["accounts"]) * rss_mb, 1),
            f"projected_{PROJECTED}_cpu_percent": round(large["cpu_percent"] + (PROJECTED - large["accounts"]) * cpu, 2),
            # A window shorter than the credentials' hour sees no refresh: at least one
            # AssumeRole per member per hour, whatever the window measured.
            f"projected_{PROJECTED}_assume_role_per_hour": max(PROJECTED, round(
                large["assume_role_per_hour"] * PROJECTED / large["accounts"])),
        }
    return out
