"""Figure 5: what burst digests make of a synthetic infrastructure-as-code apply.

1,000 changes by one principal in 3 minutes, 10 of them CRITICAL, and one change by another
principal, through the library's own store, digest plan and digest rendering on a simulated
clock that ticks each second as a delivery worker does (bench/digest_sim.rs): deterministic,
no daemon, no emulator. Goals: at most 1 % of the changes as messages plus the CRITICAL ones
(and the other principal's one), and held findings delayed at most digest.max_delay (p99).
"""

from __future__ import annotations

import argparse
import json
import subprocess
from typing import Any

from harness.procs import log


def digests(args: argparse.Namespace) -> dict[str, Any]:
    log("figure 5: digests of a synthetic 1,000-change apply")
    out = subprocess.run([str(args.digest_sim), "1000", "180", "10"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)
