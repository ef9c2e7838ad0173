"""pytest set-up for the emulator's own tests: the package is importable from here."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
