"""Fixtures: one real emulator server per test session, reset before every test.

The server is the same process ``tests/emulator/run`` starts (``python -m iamwatchd_emulator``)
on kernel-chosen ports; tests talk to it through boto3 exactly as the daemon talks to AWS.
The CloudFormation tests (test_cfn_*.py) run in-process instead, in moto's ``mock_aws`` with the
package's CloudFormation plugin installed: the ``aws`` fixture.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

EMULATOR_DIR = pathlib.Path(__file__).resolve().parent.parent
# The emulator package lives beside this directory; make it importable however pytest is run.
sys.path.insert(0, str(EMULATOR_DIR))

from cfn_support import Aws  # noqa: E402
from iamwatchd_emulator import cfn, organization_trails  # noqa: E402

REPO = EMULATOR_DIR.parent.parent
#: The public CloudTrail records the tests use (see tests/data/cloudtrail/README.md).
CORPUS = REPO / "tests" / "data" / "cloudtrail"
ROOT_KEY = "AKIAIOSFODNN7EXAMPLE"

#: Upper bound for anything asynchronous; tests poll a condition and fail after it.
DEADLINE = 30.0


def wait_for(condition: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    """Polls ``condition`` until it returns something truthy; fails naming ``what``."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"timed out after {deadline}s waiting for {what}")
        time.sleep(0.05)  # polling interval of a condition check, not synchronisation


@dataclass
class Emulator:
    url: str
    smtp_port: int
    maildir: pathlib.Path
    http_url: str
    http_dir: pathlib.Path

    def client(self, service: str, region: str = "us-east-1", key: str = ROOT_KEY,
               secret: str = "secret", token: str | None = None, validate: bool = True) -> Any:
        """A boto3 client; ``validate=False`` skips botocore's own checks to reach the server's."""
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.url,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            aws_session_token=token,
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"},
                          parameter_validation=validate),
        )

    def control(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
                query: str = "") -> tuple[int, Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(
            f"{self.url}/_iamwatchd/{path}{'?' + query if query else ''}", data=data, method=method
        )
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def counters(self) -> dict[str, int]:
        return self.control("GET", "counters")[1]

    def settings(self, **values: Any) -> None:
        status, answer = self.control("POST", "settings", values)
        assert status == 200, answer


@pytest.fixture(scope="session")
def emulator_server(tmp_path_factory: pytest.TempPathFactory):
    maildir = tmp_path_factory.mktemp("mail")
    http_dir = tmp_path_factory.mktemp("http")
    process = subprocess.Popen(
        [sys.executable, "-m", "iamwatchd_emulator", "--port", "0", "--smtp-port", "0",
         "--maildir", str(maildir), "--http-dir", str(http_dir), "--lookup-rate", "0",
         "--tick", "0.05", "--exit-with-stdin"],
        cwd=EMULATOR_DIR,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(EMULATOR_DIR)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    assert line.startswith("READY "), f"emulator did not start: {line!r}"
    fields = dict(part.split("=", 1) for part in line.split()[1:])
    yield Emulator(
        url=fields["aws"],
        smtp_port=int(fields["smtp"].rsplit(":", 1)[1]),
        maildir=pathlib.Path(fields["maildir"]),
        http_url=fields["http"],
        http_dir=pathlib.Path(fields["httpdir"]),
    )
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def emulator(emulator_server: Emulator) -> Emulator:
    status, _ = emulator_server.control("POST", "reset")
    assert status == 200
    return emulator_server


@pytest.fixture
def aws() -> Iterator[Aws]:
    """boto3 clients on an in-process moto with the CloudFormation plugin installed."""
    cfn.install()
    organization_trails.install()
    with mock_aws():
        yield Aws()


@functools.cache
def corpus_lines() -> tuple[str, ...]:
    """The lines of the public CloudTrail corpus (tests/data/cloudtrail), one record each
    (read once per session)."""
    path = CORPUS / "records.jsonl.gz"
    if not path.exists():
        pytest.fail(f"the test corpus is missing: {path} (see tests/data/cloudtrail/README.md)")
    with gzip.open(path, "rt", encoding="utf-8") as file:
        return tuple(line for line in file.read().splitlines() if line.strip())


def corpus_records() -> list[dict[str, Any]]:
    """The public CloudTrail corpus (tests/data/cloudtrail), parsed."""
    return [json.loads(line) for line in corpus_lines()]


def lookup_all(trail: Any, **params: Any) -> list[dict[str, Any]]:
    """Every LookupEvents event for ``params``, following NextToken."""
    events: list[dict[str, Any]] = []
    token = None
    while True:
        page = trail.lookup_events(**params, **({"NextToken": token} if token else {}))
        events += page["Events"]
        token = page.get("NextToken")
        if not token:
            return events


def records_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(e["CloudTrailEvent"]) for e in events]
