"""One SMTP session: aiosmtpd's protocol with a drop switch, and the sink's rules per command.

``_new_session`` builds the aiosmtpd instance for one accepted connection (greeting, SMTPUTF8,
AUTH offered only inside TLS when the sink has STARTTLS); ``_SinkSMTP`` adds what pause()/stop()
need; ``_SinkHandler`` answers EHLO, AUTH, MAIL and DATA with the sink's policy (STARTTLS before
MAIL, AUTH before MAIL, the one user's credentials) and hands accepted messages to the maildir.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import ssl
import sys
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session

from .maildir import _log_delivery, _Maildir

# Greeting is "220 localhost ESMTP iamwatchd-emulator SMTP sink".  A fixed host name avoids
# aiosmtpd's default socket.getfqdn(), which can stall on a machine without working DNS.
_SERVER_HOSTNAME = "localhost"
_IDENT = "ESMTP iamwatchd-emulator SMTP sink"

_TLS_REQUIRED = "530 5.7.0 Must issue a STARTTLS command first"
_AUTH_REQUIRED = "530 5.7.0 Authentication required"
_AUTH_NOT_ENABLED = "503 5.5.1 Error: authentication not enabled"
_STORE_FAILED = "451 4.3.0 Error: could not store the message, try again later"


def _is_not_aiosmtpd_self_deprecation(record: logging.LogRecord) -> bool:
    """aiosmtpd 1.4's own smtp_AUTH goes through its deprecated ``Session.login_data`` setter,
    which logs a warning on every successful AUTH; unconfigured logging prints it to stderr,
    between the demo's delivery lines.  It concerns aiosmtpd's internals, not our use."""
    return not record.getMessage().startswith("Session.login_data is deprecated")


logging.getLogger("mail.log").addFilter(_is_not_aiosmtpd_self_deprecation)


class _SinkSMTP(SMTP):
    """aiosmtpd's SMTP session with what pause()/stop() need: a way to drop the session and
    a future that resolves once the connection is really gone."""

    def __init__(self, handler: Any, **kwargs: Any):
        super().__init__(handler, **kwargs)
        self.lost: asyncio.Future[None] = self.loop.create_future()
        self._dropped = False

    def drop(self) -> None:
        """Abort the connection (no goodbye, like a crashed server)."""
        self._dropped = True
        if self.transport is not None:
            self.transport.abort()
        # Otherwise the connection was accepted but connection_made() has not run yet (or
        # it is already gone): connection_made() sees _dropped and aborts.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._dropped:
            transport.abort()

    def connection_lost(self, error: Exception | None) -> None:
        try:
            super().connection_lost(error)
        finally:
            if not self.lost.done():
                self.lost.set_result(None)


class _SinkHandler:
    """aiosmtpd handler: enforces the TLS/AUTH policy at MAIL and stores messages at DATA.

    The policy is enforced here rather than with aiosmtpd's ``require_starttls`` and
    ``auth_required`` because those answer without the enhanced status code real servers send
    (``530 Must issue a STARTTLS command first``) and, for AUTH over plaintext, emit a
    security warning per connection that would clutter the demo's output.
    """

    def __init__(
        self, maildir: _Maildir, credentials: tuple[str, str] | None, require_tls: bool
    ):
        self._maildir = maildir
        self._require_tls = require_tls
        self.data_delay = 0.0
        """Seconds each DATA is held before it is stored and answered (a slow server)."""
        self.holding = 0
        """Messages received and being held by ``data_delay``: mail in flight."""
        self._credentials = (
            None
            if credentials is None
            else (credentials[0].encode("utf-8"), credentials[1].encode("utf-8"))
        )

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
        responses: list[str],
    ) -> list[str]:
        # This hook replaces aiosmtpd's bookkeeping, so it has to record the greeting itself.
        session.host_name = hostname
        if self._credentials is None:
            # aiosmtpd always has its built-in mechanisms; do not advertise what always fails.
            return [line for line in responses if not line.startswith("250-AUTH")]
        return responses

    async def handle_AUTH(
        self, server: SMTP, session: Session, envelope: Envelope, args: list[str]
    ) -> Any:
        if self._credentials is None:
            return _AUTH_NOT_ENABLED
        return MISSING  # let aiosmtpd run the mechanism, which calls authenticate()

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        """aiosmtpd ``authenticator`` callback; a failure makes aiosmtpd answer 535 5.7.8."""
        assert self._credentials is not None
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = self._credentials
        # Both comparisons always run: no timing hint about which part was wrong.
        valid = hmac.compare_digest(auth_data.login, user) & hmac.compare_digest(
            auth_data.password, password
        )
        return AuthResult(success=bool(valid), handled=False, auth_data=auth_data)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        mail_options: list[str],
    ) -> str:
        # session.ssl is set by aiosmtpd when STARTTLS completed; STARTTLS also starts a new
        # session, so an AUTH done before it does not count (RFC 3207 section 4.2).
        if self._require_tls and session.ssl is None:
            return _TLS_REQUIRED
        if self._credentials is not None and not session.authenticated:
            return _AUTH_REQUIRED
        # This hook replaces aiosmtpd's default MAIL handling, so it records the sender.
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert envelope.mail_from is not None and envelope.original_content is not None
        if self.data_delay > 0:
            self.holding += 1
            try:
                await asyncio.sleep(self.data_delay)
            finally:
                self.holding -= 1
        try:
            path = self._maildir.deliver(
                envelope.mail_from, envelope.rcpt_tos, envelope.original_content
            )
        except OSError as error:
            # 4xx so the daemon retries, as it would with a real server's local problem.
            print(f"smtp-sink: cannot store message: {error}", file=sys.stderr, flush=True)
            return _STORE_FAILED
        _log_delivery(envelope, path)
        return f"250 2.0.0 OK: queued as {path.name}"


def _new_session(
    handler: _SinkHandler,
    tls_context: ssl.SSLContext | None,
    *,
    starttls: bool,
    with_auth: bool,
    loop: asyncio.AbstractEventLoop,
) -> _SinkSMTP:
    """One aiosmtpd SMTP instance for an accepted connection, with the sink's greeting."""
    return _SinkSMTP(
        handler,
        hostname=_SERVER_HOSTNAME,
        ident=_IDENT,
        tls_context=tls_context,
        enable_SMTPUTF8=True,
        # aiosmtpd advertises and accepts AUTH only inside TLS unless told otherwise.
        auth_require_tls=starttls,
        authenticator=handler.authenticate if with_auth else None,
        loop=loop,
    )
