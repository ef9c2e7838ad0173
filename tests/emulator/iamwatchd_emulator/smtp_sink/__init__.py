"""SMTP sink: the mail server the daemon delivers to in the integration tests and the demo.

The daemon's e-mail notifier is verified end to end against this sink, so it behaves like a
real submission server on the points the daemon's SMTP client cares about, and nothing more:

* plain SMTP, or STARTTLS with a freshly generated self-signed certificate whose PEM is exposed
  as ``SmtpSink.cert_path`` so a client can trust exactly this certificate;
* ``require_tls``: ``MAIL`` before ``STARTTLS`` is answered ``530 5.7.0`` (Postfix's wording);
* ``auth``: ``AUTH PLAIN``/``LOGIN`` with one user; ``MAIL`` before a successful ``AUTH`` is
  answered ``530 5.7.0``, wrong credentials ``535 5.7.8``.  With ``starttls`` AUTH is offered and
  accepted only inside TLS; without it AUTH is offered over plaintext on purpose, because the
  daemon's "never send credentials in the clear" rule can only be tested against a server that
  invites it to;
* fault injection: ``pause()`` takes the server down (listener closed, open sessions dropped)
  and ``resume()`` brings it back on the same port.

Every accepted message is stored as one ``.eml`` file in ``maildir`` (format in ``maildir.py``)
and logged as one line on stderr.

Layout (each module imports only modules listed above it):

    tls.py       the self-signed server certificate generated for STARTTLS
    maildir.py   the message store: file names, envelope fields, atomic writes, the log line
    session.py   one SMTP connection (drop switch) and the handler's EHLO/AUTH/MAIL/DATA rules
    server.py    SmtpSinkConfig, SmtpSink: the listener, the event-loop thread, pause/resume
"""

from __future__ import annotations

# _Maildir is internal, but the tests reach it as ``smtp_sink._Maildir`` to simulate a full disk.
from .maildir import _Maildir
from .server import SmtpSink, SmtpSinkConfig

__all__ = ["SmtpSink", "SmtpSinkConfig"]
