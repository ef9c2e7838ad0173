"""The request store: one JSON file per request, written atomically.

Storage format (what tests read)
--------------------------------
Every request outside ``/_sink/`` becomes ``<dir>/NNNNNN.json``: ``NNNNNN`` is the zero-padded
sequence number (continued from the files already present, so ``sorted()`` of the names is
arrival order even across restarts).  The file is one JSON object:

``seq``                 the sequence number (int)
``received_at``         ISO 8601 UTC, milliseconds (``2026-12-02T00:45:01.123Z``)
``method``, ``path``    the request line; ``path`` without the query string
``query``               the query string without ``?`` ("" when none)
``headers``             object, lower-cased names (repeated fields joined with ", ")
``body``                the body as text when it is UTF-8; otherwise absent and
``body_base64``         holds it base64-encoded
``status``              the status the sink answers (or will answer, after a scripted delay)
``kind``                ``slack``, ``teams``, ``pagerduty``, ``webhook`` (the first path
                        segment) or ``other``
``problems``            what the platform's documented rules find wrong (list of strings,
                        empty: valid)
``signature_verified``  true/false when a webhook secret is registered for the path, else null

Files are written under a hidden temporary name in the same directory and renamed with
``os.replace``, so a reader listing ``*.json`` never sees a partial record.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

_RECORD_NAME = re.compile(r"^(\d{6,})\.json$")


class RequestStore:
    """The directory of records described in the module docstring; thread-safe."""

    def __init__(self, path: Path):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._next_sequence = 1 + max(
            (int(match.group(1)) for match in map(_RECORD_NAME.match, os.listdir(path)) if match),
            default=0,
        )

    def store(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Number ``fields`` (``seq`` first), write them atomically; returns the record."""
        with self._lock:
            record = {"seq": self._next_sequence, **fields}
            data = json.dumps(record, ensure_ascii=False, indent=1).encode("utf-8")
            # Hidden name outside the *.json pattern, same directory: os.replace is a rename
            # within one file system, which is atomic.
            fd, temporary = tempfile.mkstemp(prefix=".incoming-", suffix=".tmp", dir=self.path)
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(data)
                os.replace(temporary, self.path / f"{record['seq']:06d}.json")
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
                raise
            self._next_sequence += 1
            return record

    def records(self, prefix: str = "") -> list[dict[str, Any]]:
        """The stored records in sequence order, those whose path starts with ``prefix``."""
        names = sorted(
            (int(match.group(1)), match.group(0))
            for match in map(_RECORD_NAME.match, os.listdir(self.path))
            if match
        )
        records = [json.loads((self.path / name).read_bytes()) for _, name in names]
        return [record for record in records if record["path"].startswith(prefix)]
