"""Figure 3, scan throughput: ``iamwatchd scan --files`` on the resampled corpus against jq and
a plain Python json loop (``pyscan.py``) selecting the same events, each on core 0, timed as a
shell pipeline that prints the count of what it found."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from harness.procs import log
from harness.records import corpus
from harness.settings import ROOT, Mode


# --- figure 3


def timed_count(command: str) -> tuple[float, int, str]:
    """Runs a shell pipeline that prints a count last; (seconds, count, stderr)."""
    started = time.perf_counter()
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"bench: `{command}` failed: {done.stderr[-2000:]}")
    return elapsed, int(done.stdout.split()[-1]), done.stderr


#: jq: a record is a finding when it is an IAM mutation or passes every test of one of the
#: catalogue's rules (``$rules``: bench/catalogue.json), with the tests' CloudWatch meaning.
JQ_FILTER = """
def field($path): reduce ($path | split("."))[] as $k ([true, .];
  if .[0] and (.[1] | type) == "object" and (.[1] | has($k)) then [true, .[1][$k]] else [false, null] end);
def holds($t): field($t[0]) as $f
  | if $t[1] == "is" then $f[0] and ($f[1] | type) == "string" and $f[1] == $t[2]
    elif $t[1] == "is-not" then $f[0] and ($f[1] | type) == "string" and $f[1] != $t[2]
    elif $t[1] == "false" then $f[0] and $f[1] == false
    else ($f[0] | not) end;
.Records[] | select(
  ((.eventSource == $iam.eventSource) and ((.eventName // "") as $n
    | $iam.readPrefixes | any(. as $p | $n | startswith($p)) | not))
  or (. as $r | $rules | any(.when | all(. as $t | $r | holds($t)))))
| .eventID
"""


def scan(args: argparse.Namespace, mode: Mode, catalogue: dict[str, Any]) -> dict[str, Any]:
    log(f"figure 3: corpus of {mode.corpus_bytes >> 20} MB")
    directory, records = corpus(args.records, mode.corpus_bytes)
    files = sorted(directory.glob("*.json"))
    size = sum(f.stat().st_size for f in files)
    subprocess.run(["cat", *map(str, files)], stdout=subprocess.DEVNULL, check=True)  # page cache
    quoted = " ".join(f"'{f}'" for f in files)
    results: dict[str, Any] = {"corpus_bytes": size, "files": len(files), "records": records}

    log("figure 3: iamwatchd scan")
    elapsed, found, _ = timed_count(
        f"taskset -c 0 '{args.bin}' scan --json --files '{directory}' | wc -l")
    results["iamwatchd"] = {"seconds": elapsed, "found": found}

    log("figure 3: jq")
    catalogue_file = ROOT / "bench" / "catalogue.json"
    elapsed, found, _ = timed_count(
        f"taskset -c 0 jq -r --argjson iam '{json.dumps(catalogue['iam'])}' "
        f"--slurpfile c '{catalogue_file}' '$c[0].rules as $rules | {JQ_FILTER}' {quoted} | wc -l")
    results["jq"] = {"seconds": elapsed, "found": found}

    log("figure 3: python json loop")
    elapsed, found, _ = timed_count(
        f"taskset -c 0 '{sys.executable}' '{ROOT / 'bench' / 'pyscan.py'}' "
        f"--catalogue '{catalogue_file}' {quoted}")
    results["python"] = {"seconds": elapsed, "found": found}

    results["same_count"] = len({results[t]["found"] for t in ("iamwatchd", "jq", "python")}) == 1
    results["vs_jq"] = round(results["jq"]["seconds"] / results["iamwatchd"]["seconds"], 1)
    results["vs_python"] = round(results["python"]["seconds"] / results["iamwatchd"]["seconds"], 1)
    for tool in ("iamwatchd", "jq", "python"):  # rates from the unrounded times
        entry = results[tool]
        entry["events_per_s"] = round(records / entry["seconds"])
        entry["mb_per_s"] = round(size / entry["seconds"] / 1e6, 1)
        entry["seconds"] = round(entry["seconds"], 3)
    return results
