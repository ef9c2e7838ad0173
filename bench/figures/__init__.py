"""The figures of the benchmark, one module per group: ``drain_latency`` (figures 1 and 2),
``scan`` (figure 3) and ``footprint`` (figure 4). Each takes the parsed arguments and the mode
and returns its figure's JSON; they build on ``harness`` and never import ``bench.py``."""
