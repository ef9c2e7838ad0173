"""The message store: one ``.eml`` file per accepted message, and its line on stderr.

Storage format (what tests and the demo read)
---------------------------------------------
Every accepted message becomes one file ``<maildir>/NNNNNN-<unix_ms>.eml``: ``NNNNNN`` is a
zero-padded sequence number (continued from the files already present, so ``sorted()`` of the
names is arrival order even across sink restarts) and ``unix_ms`` the arrival time.  The file
is the message exactly as received in DATA (after the SMTP dot-unstuffing, CRLF line endings
kept, not re-encoded) preceded by the SMTP envelope as header fields::

    X-Sink-Mail-From: alerts@example.com\\r\\n
    X-Sink-Rcpt-To: admin@example.com\\r\\n      (one field per recipient, in RCPT order)
    <the message bytes>

so the file is still one RFC 5322 message (``email.message_from_binary_file`` reads it) and the
envelope, which the message's own To/From need not match, is not lost.  Envelope addresses are
UTF-8 (RFC 6531/6532).  Files are written to a hidden temporary name in the same directory and
renamed with ``os.replace``, so a reader listing ``*.eml`` never sees a partial message.

One line per message goes to stderr (``smtp-sink: from=<..> to=<..> subject=".." size=N
file=..``) so the demo shows the mail arriving.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from aiosmtpd.smtp import Envelope

_MESSAGE_NAME = re.compile(r"^(\d+)-(\d+)\.eml$")


class _Maildir:
    """The message store described in the module docstring.

    Only the server thread delivers, so the sequence counter needs no lock.
    """

    def __init__(self, path: Path):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self._next_sequence = 1 + max(
            (
                int(match.group(1))
                for match in map(_MESSAGE_NAME.match, os.listdir(path))
                if match is not None
            ),
            default=0,
        )

    def deliver(self, mail_from: str, rcpt_tos: list[str], content: bytes) -> Path:
        """Store one message atomically and return its final path."""
        sequence = self._next_sequence
        final = self.path / f"{sequence:06d}-{time.time_ns() // 1_000_000}.eml"
        data = _envelope_fields(mail_from, rcpt_tos) + content
        # Hidden name outside the *.eml pattern; same directory so os.replace is a rename
        # within one file system, which is atomic.
        fd, temporary = tempfile.mkstemp(prefix=".incoming-", suffix=".tmp", dir=self.path)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(temporary, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        self._next_sequence = sequence + 1
        return final


def _envelope_fields(mail_from: str, rcpt_tos: list[str]) -> bytes:
    lines = [f"X-Sink-Mail-From: {mail_from}\r\n"]
    lines += [f"X-Sink-Rcpt-To: {recipient}\r\n" for recipient in rcpt_tos]
    # aiosmtpd decodes SMTPUTF8 command arguments with surrogateescape; this restores the
    # exact bytes the client sent.
    return "".join(lines).encode("utf-8", "surrogateescape")


def _log_delivery(envelope: Envelope, path: Path) -> None:
    content = envelope.original_content or b""
    recipients = ",".join(f"<{recipient}>" for recipient in envelope.rcpt_tos)
    # json.dumps keeps the line one line whatever the subject contains.
    subject = json.dumps(_subject(content), ensure_ascii=False)
    print(
        f"smtp-sink: from=<{envelope.mail_from}> to={recipients} subject={subject} "
        f"size={len(content)} file={path.name}",
        file=sys.stderr,
        flush=True,
    )


def _subject(content: bytes) -> str:
    """The decoded Subject (RFC 2047 encoded-words resolved), or "" if absent/unparsable:
    this is only for the log line, which must never make a delivery fail."""
    try:
        headers = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(content)
        subject = headers.get("Subject")
        return "" if subject is None else str(subject)
    except Exception:  # noqa: BLE001 - malformed input from a test client is not an error here
        return ""
