"""The processes the figures run and measure: the project's emulator (with its SMTP sink) and
``iamwatchd run`` configured against it, core pinning, RSS and CPU read from ``/proc``, the
daemon's poller settings, fresh work directories, and the ``log`` and ``wait_for`` helpers."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

import boto3
from botocore.config import Config

from harness.settings import ACCESS_KEY, ROOT

def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def wait_for(what: str, deadline_s: float, check: Callable[[], Any], every: float = 0.2) -> Any:
    """Polls ``check`` until it returns something truthy; fails loudly at the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise TimeoutError(f"gave up after {deadline_s:.0f}s waiting for {what}")
        time.sleep(every)

# --- processes


def proc_rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def proc_cpu_s(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    after = stat[stat.rindex(")") + 2 :].split()
    return (int(after[11]) + int(after[12])) / os.sysconf("SC_CLK_TCK")


def pinned(cpu: str | None, command: list[str]) -> list[str]:
    return (["taskset", "-c", cpu] if cpu is not None else []) + command


class Emulator:
    """The project's emulator (as tests/emulator/run starts it) with its SMTP sink writing to ``maildir``."""

    def __init__(self, work: Path, lookup_rate: float, cpu: str | None = None,
                 http: bool = False) -> None:
        self.maildir = work / "mail"
        self.maildir.mkdir(parents=True, exist_ok=True)
        self.log_path = work / "emulator.log"
        # What tests/emulator/run does, with the venv this harness already runs in (scripts/bench
        # resolved it once; asking scripts/venv again per emulator would only add lock waits).
        command = [sys.executable, "-m", "iamwatchd_emulator", "--lookup-rate", str(lookup_rate),
                   "--maildir", str(self.maildir), "--exit-with-stdin"]
        # The HTTP sink (Slack, Teams, PagerDuty, webhooks) only when asked for.
        self.http_dir = work / "http" if http else None
        command += ["--http-dir", str(self.http_dir)] if http else ["--no-http"]
        env = dict(os.environ, PYTHONPATH=str(ROOT / "tests" / "emulator"))
        self.proc = subprocess.Popen(pinned(cpu, command), stdin=subprocess.PIPE, env=env,
                                     stdout=subprocess.PIPE, stderr=open(self.log_path, "wb"))
        line = b""
        end = time.monotonic() + 120
        while not line.startswith(b"READY"):
            if time.monotonic() > end or self.proc.poll() is not None:
                raise SystemExit(f"bench: the emulator did not start; see {self.log_path}")
            if select.select([self.proc.stdout], [], [], 1.0)[0]:
                line = self.proc.stdout.readline()
        ready = dict(part.split("=", 1) for part in line.decode().split()[1:])
        self.endpoint = ready["aws"]
        self.smtp_port = int(ready["smtp"].rsplit(":", 1)[1])
        self.control_url = ready["control"].rstrip("/") + "/"
        self.http_url = ready.get("http")

    def control(self, method: str, path: str, body: bytes | None = None) -> Any:
        request = urllib.request.Request(self.control_url + path, data=body, method=method)
        with urllib.request.urlopen(request, timeout=300) as response:
            return json.loads(response.read())

    def sink_control(self, operation: str, body: dict[str, Any]) -> Any:
        """The HTTP sink's ``/_sink/`` control API (scripted answers, secrets)."""
        request = urllib.request.Request(f"{self.http_url}/_sink/{operation}",
                                         data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def counters(self) -> dict[str, int]:
        """The emulator's counters; a counter that never moved is absent there, 0 here."""
        counters = self.control("GET", "counters")
        for name in ("lookup_events_calls", "lookup_events_throttled"):
            counters.setdefault(name, 0)
        return counters

    def inject(self, items: list[dict[str, Any]], query: str) -> None:
        for start in range(0, len(items), 5000):
            chunk = "\n".join(json.dumps(item) for item in items[start : start + 5000])
            self.control("POST", f"events?{query}", chunk.encode())

    def mails(self) -> list[Path]:
        return sorted(p for p in self.maildir.iterdir() if p.name.endswith(".eml"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()  # --exit-with-stdin
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def mail_ms(path: Path) -> int:
    """The sink names each file NNNNNN-<unix_ms>.eml: its arrival time."""
    return int(path.name[:-4].split("-", 1)[1])


def aws_env(emulator: Emulator, home: Path) -> dict[str, str]:
    """The environment the binary gets (``run``, ``deploy``): the emulator's endpoint and key,
    an empty HOME, no instance metadata, no colours."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "AWS_ENDPOINT_URL": emulator.endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_COLOR": "1",
    }


def aws(emulator: Emulator, service: str, credentials: dict[str, str] | None = None) -> Any:
    """A boto3 client on the emulator in us-east-1, with the root key or ``credentials`` (the
    ``Credentials`` of an AssumeRole answer)."""
    keys = ({"aws_access_key_id": credentials["AccessKeyId"],
             "aws_secret_access_key": credentials["SecretAccessKey"],
             "aws_session_token": credentials["SessionToken"]} if credentials else
            {"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": "secret"})
    return boto3.client(service, region_name="us-east-1", endpoint_url=emulator.endpoint, **keys,
                        config=Config(retries={"total_max_attempts": 5, "mode": "standard"},
                                      read_timeout=300))  # a loaded emulator answers slowly


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Daemon:
    """``iamwatchd run`` against the emulator, configured like the e2e tests' daemon; ``aws``
    is added to its ``[aws]`` table, ``extra`` appended to its configuration file and ``env``
    to its environment (secrets), and
    ``start()`` starts it again after a ``kill()`` (the log is appended to)."""

    def __init__(self, binary: Path, emulator: Emulator, work: Path, poller: str,
                 cpu: str | None = None, state: Path | None = None, extra: str = "",
                 env: dict[str, str] | None = None, aws: str = "") -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.state = state or work / "state"
        self.state.mkdir(parents=True, exist_ok=True)
        self.config = work / "iamwatchd.toml"
        self.config.write_text(f"""
[aws]
region = "us-east-1"
{aws}
[poller]
{poller}

[store]
state_directory = "{self.state}"

[smtp]
host = "127.0.0.1"
port = {emulator.smtp_port}
tls = "none"
allow_plaintext = true
from = "iamwatchd <iamwatchd@example.com>"
to = ["security@example.com"]
timeout = "10s"

[delivery]
initial_backoff = "200ms"
max_backoff = "1s"

[log]
level = "info"
{extra}""")
        self.log_path = work / "daemon.log"
        self.binary, self.cpu = binary, cpu
        self.env = {**aws_env(emulator, work), **(env or {})}
        self.log_path.write_bytes(b"")  # a fresh log per Daemon; start() appends
        self.start()

    def start(self) -> None:
        self.started = time.time()
        with open(self.log_path, "ab") as log_file:
            self.proc = subprocess.Popen(
                pinned(self.cpu, [str(self.binary), "run", "--config", str(self.config)]),
                env=self.env, stdin=subprocess.DEVNULL, stdout=log_file,
                stderr=subprocess.STDOUT)

    def kill(self) -> None:
        """``kill -9``, as a crash or the OOM killer would; waits for the process to be gone."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def running(self) -> bool:
        if self.proc.poll() is not None:
            raise SystemExit(f"bench: iamwatchd run exited ({self.proc.returncode}); see {self.log_path}")
        return "iamwatchd is running" in self.log_path.read_text(errors="replace")

    def seen(self) -> int:
        try:
            with sqlite3.connect(f"file:{self.state / 'iamwatchd.sqlite3'}?mode=ro", uri=True,
                                 timeout=1) as db:
                return db.execute("SELECT count(*) FROM seen_event").fetchone()[0]
        except sqlite3.Error:
            return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def poller_config(**values: Any) -> str:
    base = {"requests_per_second": 2.0, "poll_interval": "10s", "short_window": "2m",
            "sweep_interval": "5m", "sweep_horizon": "15m", "start_from": "now"}
    base.update(values)
    return "\n".join(f"{k} = {json.dumps(v)}" for k, v in base.items())
