"""iamwatchd soak: every fault at once, and an exact account of every message.

Run it through ``scripts/soak`` (which builds the release binary and the venv, and must run as
root: the state directory gets a tmpfs of its own); ``scripts/soak --help`` lists the options.

The emulator holds N IAM mutations and R reads (resampled from the public records, new
eventIDs) that become visible in LookupEvents and in the trail's log group at a steady rate
over the run; the daemon (``iamwatchd run``, the release binary) polls them, runs the alarm
path of the stack ``iamwatchd deploy`` created (trail -> log group -> metric filter -> alarm ->
SNS -> SQS) and notifies six notifiers: SMTP (the emulator's SMTP sink), SNS (a topic with an
SQS queue subscribed, raw delivery), Slack, Teams, PagerDuty and a signed webhook (the HTTP
sink). Digests are off, so each finding is one message.

Meanwhile, on a schedule drawn from ``--seed`` and printed at the start (see
``harness/chaos.py``): kill -9 of the daemon at random moments (restarted after 1-5 s), the
SMTP sink down, the webhook answering 5xx then 429 with Retry-After, LookupEvents throttling
bursts and 5xx, added latency, SQS receive errors, the state directory full, then read-only.

At the end, per notifier: every mutation's eventID delivered (0 lost), none of a read, none
that its route should not take, each duplicate explained by an interruption (a crash or, for
SMTP, the sink going down with a message in flight: the first copy arrived at most
``CRASH_WINDOW_S`` before it, the second after the daemon was back) and at most ``IN_FLIGHT``
(one) per interruption and notifier, and the daemon's own
metrics agreeing with the sinks: per process life, ``notifications_sent_total`` as last read in
that life lies between what the sink had received when it was read (less the sends in flight)
and what it had received when the life ended, and equals it exactly for the last life (read
once everything was delivered); the persistent ``notifications_pending`` and
``notifications_given_up_total`` are 0 at the end. Prints a table, writes
``bench/results/<date>-soak-<mode>[-seed<seed>].json``, exits 1 when the account does not hold.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import machine
from harness.chaos import Fault, Injector, Sizes, StateDisk, schedule, unmount
from harness.procs import (Daemon, Emulator, aws, aws_env, free_port, fresh, log, poller_config,
                           wait_for)
from harness.records import catalogue, event_time, load_templates, resample
from harness.settings import ACCOUNT, DEFAULT_RECORDS, RESULTS, ROOT, WORK
from harness.sinks import (Delivery, HttpReader, MailReader, QueueReader, per_notifier,
                           scrape, total)

#: Records (mutations and reads) made visible per second. The daemon may spend 2 LookupEvents
#: requests/s (50 records each) in us-east-1, and reads each record about three times (the fast
#: pass once, the sweeps twice: a sweep re-reads its horizon, set equal to its interval), more
#: after each restart (its first sweep re-reads from the cursor); 22/s leaves a quarter of the
#: budget for that and for the throttling faults.
RATE = 22.0
#: A duplicate is explained by an interruption when its first copy arrived at most this long
#: before it: the time between a sink accepting a message and the daemon recording it as sent
#: is one commit, under a second; 15 s is the SMTP timeout plus margin, for a send the crash cut
#: off while the sink was slow.
CRASH_WINDOW_S = 15.0
#: Arrivals up to this long after a kill still count for the process killed (the sink stores a
#: request it had fully read a moment after the sender died).
AFTER_KILL_S = 0.5
#: Sends a notifier may have in flight (`delivery.in_flight`, 1 by default), so delivered but
#: not yet counted when the metrics were read; also the most copies one interruption may cause
#: (the goal: at most one per crash and notifier).
IN_FLIGHT = 1
SENDER = "iamwatchd@example.com"
WEBHOOK_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
ROUTING_KEY = "soak0123456789abcdefghijklmnopqr"  # 32 characters
NOTIFIERS = ["smtp", "sns", "slack", "teams", "pager", "hook"]
HTTP_PATHS = {"slack": "/slack/soak", "teams": "/teams/soak", "pager": "/pagerduty/soak",
              "hook": Injector.WEBHOOK}
#: The chat platforms' paces (messages/s per webhook, as the daemon keeps them): the routes give
#: each only the share of the mutations it can post in half the run.
PACE = {"slack": 1.0, "teams": 4.0}


#: The tampering and Identity Center streams in a region of their own: in us-east-1 their 40
#: lookups would take a good part of the budget these records need (each region has its own).
TAMPERING_ELSEWHERE = 'tampering_regions = ["us-west-2"]\n'


@dataclasses.dataclass(frozen=True)
class SoakMode:
    name: str
    mutations: int
    reads_per_mutation: int
    sizes: Sizes
    disk_mb: int  # the state directory's tmpfs
    drain_s: float  # how long the end waits for every notifier to catch up


# The full run is the goal's: 10,000 mutations and 10 reads each, 20 kills, the SMTP sink down
# for 5 minutes, the disk full for a minute, then read-only for one. At RATE that is 5,000 s of
# visible records: LookupEvents' 2 requests/s are the floor (110,000 records read three times).
# The quick and smoke modes keep every fault kind with fewer reads (3 per mutation), so they fit
# their budgets (5 and 2 minutes).
FULL = SoakMode("full", 10_000, 10, Sizes(kills=20, smtp_down_s=300, webhook_s=120,
                                          throttle_bursts=6, throttle_s=10, stretch_s=60,
                                          disk_s=60), 512, 900)
QUICK = SoakMode("quick", 1_000, 3, Sizes(kills=5, smtp_down_s=40, webhook_s=15, throttle_bursts=3,
                                          throttle_s=5, stretch_s=15, disk_s=20), 128, 240)
SMOKE = SoakMode("smoke", 150, 3, Sizes(kills=2, smtp_down_s=6, webhook_s=4, throttle_bursts=2,
                                        throttle_s=3, stretch_s=5, disk_s=10), 64, 150)


@dataclasses.dataclass
class Life:
    """One process of the daemon: from its start to its kill, exit or stop."""

    number: int
    started: float
    ended: float | None = None
    how: str = ""  # kill, remount (the kill before the read-only stretch), exit N, end
    scrape: dict | None = None  # the last metrics read in this life
    scraped_at: float = 0.0  # when that read started

    def summary(self) -> dict[str, Any]:
        return {"life": self.number, "started": round(self.started, 3),
                "ended": round(self.ended, 3) if self.ended else None, "how": self.how,
                "scraped": self.scrape is not None,
                "sent": per_notifier(self.scrape, "iamwatchd_notifications_sent_total")}


# --- setting up


def deploy(binary: Path, emulator: Emulator, work: Path) -> dict[str, str]:
    """``iamwatchd deploy`` in daemon mode (alarm period 10 s); the stack's outputs."""
    home = fresh(work / "deploy-home")
    done = subprocess.run([str(binary), "deploy", "--email", "admin@example.com",
                           "--daemon-queue", "true", "--alarm-period", "10"],
                          env=aws_env(emulator, home), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"soak: iamwatchd deploy failed:\n{done.stdout}{done.stderr}")
    stack = aws(emulator, "cloudformation").describe_stacks(StackName="iamwatchd")["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def sns_queue(emulator: Emulator) -> tuple[str, str]:
    """The SNS notifier's topic and the queue subscribed to it (raw delivery)."""
    sns, sqs = aws(emulator, "sns"), aws(emulator, "sqs")
    topic = sns.create_topic(Name="soak-notifications")["TopicArn"]
    queue = sqs.create_queue(QueueName="soak-notifications-reader")["QueueUrl"]
    sns.subscribe(TopicArn=topic, Protocol="sqs",
                  Endpoint=f"arn:aws:sqs:us-east-1:{ACCOUNT}:soak-notifications-reader",
                  Attributes={"RawMessageDelivery": "true"})
    return topic, queue


def chat_routes(mutations: list[dict], span: float, rng: random.Random) -> dict[str, list[str]]:
    """Event names for Slack and Teams: a random set of them whose mutations the platform can
    post, at its pace, in half the visible span."""
    counts = collections.Counter(m["eventName"] for m in mutations)
    routes = {}
    for name, pace in PACE.items():
        names = sorted(counts)
        rng.shuffle(names)
        chosen, taken = [], 0
        for event in names:
            if taken + counts[event] <= pace * span / 2:
                chosen.append(event)
                taken += counts[event]
        routes[name] = sorted(chosen) or [min(counts, key=counts.get)]
    return routes


def daemon_config(emulator: Emulator, out: dict[str, str], topic: str, routes: dict[str, list[str]],
                  metrics_port: int) -> str:
    sink = emulator.http_url
    return f"""
[identity_center]
region = "us-west-2"

[sns]
topic_arn = "{topic}"
region = "us-east-1"

[notifiers.slack]
type = "slack"
events = {json.dumps(routes["slack"])}

[notifiers.teams]
type = "teams"
events = {json.dumps(routes["teams"])}

[notifiers.pager]
type = "pagerduty"
events_url = "{sink}{HTTP_PATHS["pager"]}"

[notifiers.hook]
type = "webhook"
url = "{sink}{HTTP_PATHS["hook"]}"

[digest]
enabled = false

[alarm]
queue_url = "{out["QueueUrl"]}"
log_group = "{out["LogGroupName"]}"
lookback_margin = "30s"

[metrics]
listen = "127.0.0.1:{metrics_port}"
"""


def secrets(sink: str) -> dict[str, str]:
    """The notifiers' secrets, as the daemon reads them from its environment."""
    return {"IAMWATCHD__NOTIFIERS__SLACK__WEBHOOK_URL": sink + HTTP_PATHS["slack"],
            "IAMWATCHD__NOTIFIERS__TEAMS__WEBHOOK_URL": sink + HTTP_PATHS["teams"],
            "IAMWATCHD__NOTIFIERS__PAGER__ROUTING_KEY": ROUTING_KEY,
            "IAMWATCHD__NOTIFIERS__HOOK__SECRET": WEBHOOK_SECRET}


def inject(emulator: Emulator, items: list[dict], offsets: list[float], t0: float) -> None:
    """Each record visible (LookupEvents and the trail's log group) at ``t0 + offset``, its
    eventTime that second; sent in eventTime order, so the emulator appends."""
    for start in range(0, len(items), 2000):
        now = time.time()
        chunk = []
        for record, offset in zip(items[start:start + 2000], offsets[start:start + 2000]):
            delay = max(0.0, t0 + offset - now)
            chunk.append({"record": {**record, "eventTime": event_time(t0 + offset)},
                          "lookupDelay": round(delay, 3), "logDelay": round(delay, 3)})
        emulator.control("POST", f"events?account={ACCOUNT}&region=us-east-1",
                         "\n".join(json.dumps(c) for c in chunk).encode())


# --- the run


class Run:
    """The daemon's lives under the fault schedule, with restarts as systemd would make them."""

    def __init__(self, daemon: Daemon, injector: Injector, metrics_url: str, seed: int) -> None:
        self.daemon, self.injector, self.metrics_url = daemon, injector, metrics_url
        self.rng = random.Random(seed + 1)  # restart delays, apart from the schedule's draws
        self.lives = [Life(1, daemon.started)]
        self.restart_at: float | None = None
        self.unplanned: list[dict[str, Any]] = []
        self.next_scrape = 0.0

    @property
    def up(self) -> bool:
        return self.restart_at is None

    def read_metrics(self) -> None:
        at = time.time()
        samples = scrape(self.metrics_url)
        if samples is not None:
            life = self.lives[-1]
            life.scrape, life.scraped_at = samples, at

    def stop_life(self, how: str) -> None:
        life = self.lives[-1]
        life.ended, life.how = time.time(), how
        self.restart_at = life.ended + self.rng.uniform(1.0, 5.0)

    def kill(self, how: str) -> None:
        self.read_metrics()
        self.daemon.kill()
        self.stop_life(how)

    def tick(self) -> None:
        """Restarts a daemon that is due, notices one that exited by itself, reads metrics."""
        now = time.time()
        if self.restart_at is not None and now >= self.restart_at:
            self.daemon.start()
            self.lives.append(Life(len(self.lives) + 1, self.daemon.started))
            self.restart_at = None
        elif self.up and self.daemon.proc.poll() is not None:
            code = self.daemon.proc.returncode
            self.unplanned.append({"at": round(now, 3), "life": self.lives[-1].number,
                                   "code": code, "faults": sorted(self.injector.active)})
            log(f"the daemon exited by itself (status {code}) during {sorted(self.injector.active)}")
            self.stop_life(f"exit {code}")
        if self.up and now >= self.next_scrape:
            self.read_metrics()
            self.next_scrape = now + 5

    def play(self, faults: list[Fault], t0: float) -> None:
        events = []
        for index, fault in enumerate(faults):
            if fault.kind == "kill":
                events.append((t0 + fault.start, 1, "kill", index))
            else:
                events.append((t0 + fault.start, 1, "begin", index))
                events.append((t0 + fault.end, 0, "end", index))
        events.sort()
        while events:
            self.tick()
            when, _, action, index = events[0]
            if time.time() < when:
                time.sleep(0.05)  # the schedule's clock: faults happen at their moments
                continue
            events.pop(0)
            fault = faults[index]
            if action == "kill":
                if not self.up:  # down already (an exit, or a restart still due): after it
                    events.append((self.restart_at + 3, 1, "kill", index))
                    events.sort()
                    continue
                log(f"kill -9 (life {self.lives[-1].number})")
                self.kill("kill")
            elif action == "begin":
                log(f"fault {fault.kind} for {fault.end - fault.start:.0f} s")
                if fault.kind == "read-only" and self.up:
                    self.kill("remount")
                self.injector.begin(fault, index)
            else:
                log(f"fault {fault.kind} lifted")
                self.injector.end(fault, index)

    def until(self, what: str, deadline_s: float, owed: Any) -> bool:
        """Keeps the daemon up until ``owed()`` returns "" (nothing owed), saying what is every
        30 s; False at the deadline."""
        start = time.monotonic()
        said = start
        while time.monotonic() < start + deadline_s:
            self.tick()
            left = owed() if self.up else "the daemon is restarting"
            if not left:
                log(f"{what}: done after {time.monotonic() - start:.0f} s")
                return True
            if time.monotonic() - said >= 30:
                log(f"{what}: {left}")
                said = time.monotonic()
            time.sleep(0.5)
        log(f"gave up after {deadline_s:.0f} s waiting for {what}: {left}")
        return False

    def finish(self) -> None:
        if self.up:
            self.read_metrics()
        self.daemon.stop()
        life = self.lives[-1]
        life.ended, life.how = time.time(), "end"


# --- the account


def crashes(lives: list[Life], disk_full_from: float | None) -> list[tuple[float, float, float, str]]:
    """(explains from, down, back up, how) of every life that did not end at the end of the run.

    A kill explains a copy whose first one arrived up to CRASH_WINDOW_S before it. The kill that
    starts the read-only stretch ("remount") follows the disk-full stretch, in which no send
    can be recorded as sent: the daemon holds each such send (and sends nothing again) until it
    can record it, and the kill loses what it held, so that kill explains copies from the start
    of the disk-full stretch (seen in the full run of 2026-12-02: a send 50 s before it)."""
    return [(min(life.ended - CRASH_WINDOW_S, disk_full_from or life.ended)
             if life.how == "remount" else life.ended - CRASH_WINDOW_S,
             life.ended, after.started, life.how) for life, after in zip(lives, lives[1:])]


def account(name: str, deliveries: list[Delivery], expected: set[str], mutation_ids: set[str],
            read_ids: set[str], interruptions: list[tuple[float, float, float, str]],
            lives: list[Life], final: dict | None) -> dict[str, Any]:
    times: dict[str, list[float]] = collections.defaultdict(list)
    reads = other = 0
    for delivery in deliveries:
        if delivery.ids & read_ids:
            reads += 1
        ours = delivery.ids & mutation_ids
        if len(ours) != 1:
            # The daemon's own health messages ("alarm path silent: 10 changes not confirmed"
            # lists them) and findings of the harness's own calls: a finding names one event.
            other += 1
            continue
        times[next(iter(ours))].append(delivery.at)
    lost = sorted(expected - times.keys())
    unrouted = sorted(times.keys() - expected)
    per_interruption = collections.Counter()
    unexplained = []
    for event_id, arrivals in times.items():
        arrivals.sort()
        for first, second in zip(arrivals, arrivals[1:]):
            cause = next((i for i, (since, down, back, _) in enumerate(interruptions)
                          if since <= first <= down + AFTER_KILL_S and second >= back),
                         None)
            if cause is None:
                unexplained.append({"eventID": event_id, "first": first, "second": second})
            else:
                per_interruption[cause] += 1
    duplicates = sum(len(a) - 1 for a in times.values())
    # The metrics, per life.
    metric_checks = []
    for life in lives:
        if life.scrape is None:
            metric_checks.append({"life": life.number, "ok": None, "why": "never answered"})
            continue
        sent = per_notifier(life.scrape, "iamwatchd_notifications_sent_total").get(name, 0)
        end = (life.ended or float("inf")) + AFTER_KILL_S
        in_life = [d.at for d in deliveries if life.started <= d.at <= end]
        by_read = sum(1 for at in in_life if at < life.scraped_at)
        if life.how == "end":
            ok = sent == len(in_life)
        else:
            ok = by_read - IN_FLIGHT <= sent <= len(in_life)
        metric_checks.append({"life": life.number, "ok": ok, "sent": sent,
                              "delivered_by_read": by_read, "delivered_in_life": len(in_life)})
    pending = per_notifier(final, "iamwatchd_notifications_pending").get(name)
    given_up = per_notifier(final, "iamwatchd_notifications_given_up_total").get(name)
    metrics_ok = (all(c["ok"] is not False for c in metric_checks) and final is not None
                  and pending == 0 and given_up == 0)
    result = {
        "expected": len(expected),
        "messages": len(deliveries),
        "delivered": len(expected & times.keys()),
        "lost": len(lost),
        "lost_ids": lost[:20],
        "unrouted": len(unrouted),
        "unrouted_ids": unrouted[:20],
        "duplicates": duplicates,
        "duplicates_unexplained": unexplained[:20],
        "duplicates_unexplained_count": len(unexplained),
        "max_duplicates_per_interruption": max(per_interruption.values(), default=0),
        "duplicates_by_interruption": {interruptions[i][3] + f"@{interruptions[i][1]:.1f}": n
                                       for i, n in sorted(per_interruption.items())},
        "read_messages": reads,
        "other_messages": other,
        "metrics_sent_sum": sum(c.get("sent", 0) for c in metric_checks),
        "metrics_checks": metric_checks,
        "pending": pending,
        "given_up": given_up,
        "metrics_ok": metrics_ok,
    }
    result["ok"] = (not lost and not unrouted and not unexplained and reads == 0 and metrics_ok
                    and result["max_duplicates_per_interruption"] <= IN_FLIGHT)
    return result


def number(value: float | None) -> str:
    return "unread" if value is None else f"{value:,.0f}"


def table(notifiers: dict[str, dict[str, Any]]) -> str:
    header = ["notifier", "expected", "delivered", "lost", "duplicates (unexplained)",
              "max dup/crash", "read msgs", "other msgs", "metrics sent / sink msgs",
              "pending / given up", "verdict"]
    rows = [[name, f"{r['expected']:,}", f"{r['delivered']:,}", str(r["lost"]),
             f"{r['duplicates']} ({r['duplicates_unexplained_count']})",
             str(r["max_duplicates_per_interruption"]), str(r["read_messages"]),
             str(r["other_messages"]), f"{r['metrics_sent_sum']:,.0f} / {r['messages']:,}",
             f"{number(r['pending'])} / {number(r['given_up'])}", "holds" if r["ok"] else "FAILS"]
            for name, r in notifiers.items()]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    line = lambda row: "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *map(line, rows)])


# --- main


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/soak", description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true",
                       help="N = 1,000, 5 crashes, short faults (under 5 minutes)")
    group.add_argument("--smoke", action="store_true",
                       help="N = 150, 2 crashes, every fault briefly (CI, under 2 minutes)")
    parser.add_argument("--seed", type=int,
                        help="the fault schedule's and the records' seed (default: random, printed)")
    parser.add_argument("--bin", type=Path, required=True, help="release iamwatchd binary")
    parser.add_argument("--records", type=Path, default=DEFAULT_RECORDS,
                        help="public CloudTrail records to resample (default: %(default)s)")
    parser.add_argument("--mutations", type=int,
                        help="N (default: 10,000 full, 1,000 quick, 150 smoke)")
    parser.add_argument("--reads-per-mutation", type=int,
                        help="reads per mutation (default: 10 full, 3 quick and smoke)")
    parser.add_argument("--no-results", action="store_true",
                        help="print the table only, write no JSON (scripts/test)")
    args = parser.parse_args()
    mode = SMOKE if args.smoke else QUICK if args.quick else FULL
    if args.mutations:
        mode = dataclasses.replace(mode, mutations=args.mutations)
    if args.reads_per_mutation is not None:
        mode = dataclasses.replace(mode, reads_per_mutation=args.reads_per_mutation)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1 << 31)
    rng = random.Random(seed)

    templates = load_templates(args.records, catalogue()["iam"]["readPrefixes"])
    mutations = [resample(rng.choice(templates[0]), rng, 0) for _ in range(mode.mutations)]
    reads = [resample(rng.choice(templates[1]), rng, 0)
             for _ in range(mode.mutations * mode.reads_per_mutation)]
    items = mutations + reads
    rng.shuffle(items)
    span = len(items) / RATE
    offsets = sorted(rng.uniform(0, span) for _ in items)
    faults = schedule(rng, mode.sizes, span)
    routes = chat_routes(mutations, span, rng)
    rerun = " ".join(["scripts/soak", *([f"--{mode.name}"] if mode.name != FULL.name else []),
                      f"--seed {seed}",
                      *([f"--mutations {args.mutations}"] if args.mutations else []),
                      *([f"--reads-per-mutation {args.reads_per_mutation}"]
                        if args.reads_per_mutation is not None else [])])
    print(f"iamwatchd soak, {mode.name} mode, seed {seed} (rerun: {rerun}): {len(mutations):,} "
          f"mutations + {len(reads):,} reads visible over {span:.0f} s; fault schedule:", flush=True)
    for fault in faults:
        print(f"  {fault.describe()}", flush=True)

    started = time.time()
    work = WORK / f"soak-{mode.name}"  # the modes may run side by side
    unmount(work / "state")  # a run that was interrupted may have left it mounted
    fresh(work)
    disk = StateDisk(work / "state", mode.disk_mb)
    emulator = daemon = None
    try:
        emulator = Emulator(work, lookup_rate=2.0, http=True)
        log("deploying the stack (iamwatchd deploy --daemon-queue true)")
        out = deploy(args.bin, emulator, work)
        topic, queue = sns_queue(emulator)
        emulator.sink_control("secret", {"path": Injector.WEBHOOK, "secret": WEBHOOK_SECRET})
        metrics_port = free_port()
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        daemon = Daemon(args.bin, emulator, work / "daemon",
                        poller_config(requests_per_second=2.0, poll_interval="10s",
                                      short_window="12s", sweep_interval="1m",
                                      sweep_horizon="1m", start_from="now"),
                        state=disk.path, aws=TAMPERING_ELSEWHERE,
                        extra=daemon_config(emulator, out, topic, routes, metrics_port),
                        env=secrets(emulator.http_url))
        wait_for("the daemon to start", 120, daemon.running)
        wait_for("its metrics", 60, lambda: scrape(metrics_url))
        t0 = time.time() + 10 + len(items) / 20000
        log(f"injecting {len(items):,} records, visible from {t0 - time.time():.0f} s on")
        inject(emulator, items, offsets, t0)
        run = Run(daemon, Injector(emulator, disk, seed), metrics_url, seed)
        queue_reader = QueueReader(aws(emulator, "sqs"), queue, lambda: any(
            key.startswith("sqs-receive") for key in run.injector.active))
        run.play(faults, t0)
        run.until("the end of the visible span", span + 30,
                  lambda: "" if time.time() > t0 + span else "records still to come")
        run.injector.lift_all()
        log("every fault lifted; waiting for every notifier to catch up")

        mail = MailReader(emulator.maildir, SENDER)
        http = HttpReader(emulator.http_dir)
        mutation_ids = {m["eventID"] for m in mutations}
        read_ids = {r["eventID"] for r in reads}
        expected = {name: mutation_ids for name in ("smtp", "sns", "pager", "hook")}
        for name in PACE:
            expected[name] = {m["eventID"] for m in mutations if m["eventName"] in routes[name]}

        def missing() -> str:
            """What the notifiers still owe ("" once they caught up)."""
            samples = scrape(metrics_url)
            if samples is None:
                return "the daemon's metrics do not answer"
            pending = per_notifier(samples, "iamwatchd_notifications_pending")
            owed = {n: int(pending.get(n, 1)) for n in NOTIFIERS if pending.get(n, 1)}
            got = {"smtp": {i for d in mail.deliveries() for i in d.ids}}
            got.update({n: {i for d in http.deliveries(p) for i in d.ids}
                        for n, p in HTTP_PATHS.items()})
            absent = {n: len(expected[n] - ids) for n, ids in got.items() if expected[n] - ids}
            return f"pending {owed}, not yet at the sink {absent}" if owed or absent else ""

        drained = run.until("every notifier to catch up", mode.drain_s, missing)
        run.finish()
        log("reading the sinks")
        deliveries = {"smtp": mail.deliveries(), "sns": queue_reader.stop()}
        for name, path in HTTP_PATHS.items():
            deliveries[name] = http.deliveries(path)
        disk_full_from = next((t0 + f.start for f in faults if f.kind == "disk-full"), None)
        interruptions = crashes(run.lives, disk_full_from)
        pause_times = [(t0 + f.start - CRASH_WINDOW_S, t0 + f.start, t0 + f.end, "smtp-down")
                       for f in faults if f.kind == "smtp-down"]
        final = run.lives[-1].scrape
        notifiers = {name: account(name, deliveries[name], expected[name], mutation_ids, read_ids,
                                   interruptions + (pause_times if name == "smtp" else []),
                                   run.lives, final)
                     for name in NOTIFIERS}
        counters = emulator.counters()
        lives = [life.summary() for life in run.lives]
        scraped = [life.scrape for life in run.lives if life.scrape]
    finally:
        if daemon is not None:
            daemon.stop()
        if emulator is not None:
            emulator.stop()
        disk.release()

    kills = sum(1 for life in run.lives if life.how == "kill")
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": mode.name,
        "seed": seed,
        "rerun": rerun,
        "machine": machine(),
        "commit": subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                                 capture_output=True, text=True).stdout.strip(),
        "mutations": len(mutations),
        "reads": len(reads),
        "visible_span_s": round(span),
        "routes": routes,
        "schedule": [dataclasses.asdict(f) for f in faults],
        "kills": kills,
        "remount_kills": sum(1 for life in run.lives if life.how == "remount"),
        "unplanned_exits": run.unplanned,
        "lives": lives,
        "caught_up": drained,
        "daemon": {
            "store_events": {dict(k[1]).get("path", ""): v for k, v in (final or {}).items()
                             if k[0] == "iamwatchd_store_events"},
            "poll_throttled_sum": sum(total(s, "iamwatchd_poll_throttled_total") for s in scraped),
            "poll_failed_passes_sum": sum(total(s, "iamwatchd_poll_failed_passes_total") for s in scraped),
            "poll_pages_sum": sum(total(s, "iamwatchd_poll_pages_total") for s in scraped),
            "alarm_confirmations": total(final, "iamwatchd_alarm_confirmations"),
        },
        "emulator": counters,
        "notifiers": notifiers,
    }
    result["ok"] = drained and all(r["ok"] for r in notifiers.values())
    result["wall_s"] = round(time.time() - started)
    print(f"iamwatchd soak, {mode.name} mode, seed {seed}, {result['date']}, "
          f"{result['machine']['cpu']} ({result['machine']['cores']} cores, "
          f"{result['machine']['ram_gb']} GB), commit {result['commit']}, {result['wall_s']} s: "
          f"{len(mutations):,} mutations + {len(reads):,} reads over {span:.0f} s, {kills} kills "
          f"+ {result['remount_kills']} for the remount, {len(run.unplanned)} exits by itself")
    print(table(notifiers))
    for name, r in notifiers.items():
        for problem, value in (("lost", r["lost_ids"]), ("not for its route", r["unrouted_ids"]),
                               ("unexplained duplicates", r["duplicates_unexplained"]),
                               ("metrics disagree", [c for c in r["metrics_checks"] if c["ok"] is False])):
            if value:
                print(f"{name}: {problem}: {json.dumps(value)[:600]}")
    for name, r in notifiers.items():
        if r["duplicates_by_interruption"]:
            print(f"{name}: duplicates by interruption (how@unix time): "
                  f"{json.dumps(r['duplicates_by_interruption'])}")
    if run.unplanned:
        print(f"the daemon exited by itself: {json.dumps(run.unplanned)}")
    if not drained:
        print("the notifiers had not caught up by the end of the drain (see above)")
    if not args.no_results:
        name = f"{result['date'][:10]}-soak-{mode.name}-seed{seed}"
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{name}.json"
        path.write_text(json.dumps(result, indent=1) + "\n")
        print(f"written: {path.relative_to(ROOT)}")
    print("the account holds" if result["ok"] else "THE ACCOUNT FAILS")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
