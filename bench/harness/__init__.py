"""The benchmark harness: what every figure builds on. ``settings`` holds the run's fixed
settings (paths, the emulated account and API limit, the two modes' sizes), ``procs`` the
emulator and daemon processes and what is read from ``/proc``, ``records`` the rule catalogue
and the synthetic CloudTrail records. It never imports ``bench.py`` or ``figures``."""
