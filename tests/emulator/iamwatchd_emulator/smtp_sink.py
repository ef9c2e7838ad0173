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
* fault injection: ``pause()`` closes the listening socket *and* drops the sessions that are
  open, so a client with a pooled connection sees the outage too; ``resume()`` listens again on
  the same port, so the daemon's configuration stays valid across the outage.

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

The server runs its own asyncio loop in a background thread; every public method is
synchronous and returns only once its effect is in place (listening, closed, ...), which is
what lets the tests avoid sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import email.parser
import email.policy
import hmac
import ipaddress
import json
import logging
import os
import re
import shutil
import socket
import ssl
import sys
import tempfile
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Coroutine

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["SmtpSink", "SmtpSinkConfig"]

# Greeting is "220 localhost ESMTP iamwatchd-emulator SMTP sink".  A fixed host name avoids
# aiosmtpd's default socket.getfqdn(), which can stall on a machine without working DNS.
_SERVER_HOSTNAME = "localhost"
_IDENT = "ESMTP iamwatchd-emulator SMTP sink"

# Upper bound for one start/pause/resume/stop step to complete in the server thread.  It is a
# safety net that turns a wedged event loop into an exception instead of a hung test run; the
# steps themselves are event-driven and normally finish in milliseconds.
_STEP_TIMEOUT_S = 30.0

_TLS_REQUIRED = "530 5.7.0 Must issue a STARTTLS command first"
_AUTH_REQUIRED = "530 5.7.0 Authentication required"
_AUTH_NOT_ENABLED = "503 5.5.1 Error: authentication not enabled"
_STORE_FAILED = "451 4.3.0 Error: could not store the message, try again later"

_MESSAGE_NAME = re.compile(r"^(\d+)-(\d+)\.eml$")


def _is_not_aiosmtpd_self_deprecation(record: logging.LogRecord) -> bool:
    """aiosmtpd 1.4's own smtp_AUTH goes through its deprecated ``Session.login_data`` setter,
    which logs a warning on every successful AUTH; unconfigured logging prints it to stderr,
    between the demo's delivery lines.  It concerns aiosmtpd's internals, not our use."""
    return not record.getMessage().startswith("Session.login_data is deprecated")


logging.getLogger("mail.log").addFilter(_is_not_aiosmtpd_self_deprecation)


@dataclass(kw_only=True)
class SmtpSinkConfig:
    """How the sink listens and what it demands from clients.

    Keyword-only: a configuration of six similar-looking fields is too easy to misorder
    positionally.
    """

    host: str = "127.0.0.1"
    port: int = 0
    """0 picks a free port; ``SmtpSink.port`` reports the real one after ``start()``."""
    maildir: Path
    """Where messages are stored; created (with parents) if missing."""
    starttls: bool = False
    """Offer STARTTLS with a self-signed certificate generated at ``start()``."""
    require_tls: bool = False
    """Refuse MAIL before STARTTLS (needs ``starttls``)."""
    auth: tuple[str, str] | None = None
    """(user, password): AUTH PLAIN/LOGIN is required before MAIL; only inside TLS when
    ``starttls`` is set, over plaintext otherwise."""

    def __post_init__(self) -> None:
        self.maildir = Path(self.maildir)
        if self.require_tls and not self.starttls:
            raise ValueError("require_tls needs starttls: a client cannot satisfy it otherwise")
        if self.auth is not None and (
            len(self.auth) != 2 or not all(isinstance(part, str) for part in self.auth)
        ):
            raise ValueError("auth must be a (user, password) pair of strings")


class SmtpSink:
    """A threaded SMTP server that stores every accepted message in ``config.maildir``.

    Usage::

        sink = SmtpSink(SmtpSinkConfig(maildir=tmp / "mail", starttls=True))
        sink.start()            # listening when this returns
        ... sink.port, sink.cert_path ...
        sink.pause(); sink.resume()
        sink.stop()

    Public methods may be called from any thread (the emulator's control endpoint runs in
    moto's request threads); a lock serialises them.
    """

    def __init__(self, config: SmtpSinkConfig):
        self.config = config
        self.port: int = config.port
        """The listening port; the real one once ``start()`` returned (also while paused)."""
        self.cert_path: Path | None = None
        """PEM of the self-signed server certificate when ``starttls``; valid until ``stop()``."""
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[_SinkSMTP] = set()
        self._handler: _SinkHandler | None = None
        self._tls_context: ssl.SSLContext | None = None
        self._cert_dir: Path | None = None

    # -- public API -----------------------------------------------------------------------

    def start(self) -> None:
        """Generate the TLS material if needed and start listening; returns once listening.

        Raises ``OSError`` if the port cannot be bound (e.g. a fixed port already in use).
        """
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("SMTP sink already started")
            # A fresh start honours the configured port (0: a new free one); only resume()
            # promises the previous port.
            self.port = self.config.port
            self._handler = _SinkHandler(
                _Maildir(self.config.maildir), self.config.auth, self.config.require_tls
            )
            try:
                if self.config.starttls:
                    self._cert_dir = Path(tempfile.mkdtemp(prefix="iamwatchd-smtp-sink-tls-"))
                    self.cert_path, key_path = _write_self_signed_certificate(self._cert_dir)
                    self._tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                    self._tls_context.load_cert_chain(self.cert_path, key_path)
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=_run_loop, args=(self._loop,), name="iamwatchd-smtp-sink", daemon=True
                )
                self._thread.start()
                self._run_step(self._listen)
            except BaseException:
                self._shut_down()
                raise

    def stop(self) -> None:
        """Close the listener and every open session, stop the server thread, delete the
        TLS material.  Idempotent, so fixtures can call it unconditionally."""
        with self._lock:
            if self._thread is not None:
                self._shut_down()

    def pause(self) -> None:
        """Simulate the mail server being down: close the listening socket (new connections
        get "connection refused") and drop the open sessions.  Returns once both are done.
        A no-op while already paused."""
        with self._lock:
            self._require_started()
            self._run_step(self._stop_serving)

    def resume(self) -> None:
        """Listen again, on the same port as before; returns once listening.  A no-op while
        not paused.  Raises ``OSError`` if another process took the port meanwhile."""
        with self._lock:
            self._require_started()
            if self._server is None:
                self._run_step(self._listen)

    @property
    def paused(self) -> bool:
        """True between ``pause()`` and ``resume()``."""
        return self._thread is not None and self._server is None

    # -- inside the server thread ----------------------------------------------------------

    async def _listen(self) -> None:
        assert self._loop is not None
        listener = _bind_listener(self.config.host, self.port)
        try:
            self._server = await self._loop.create_server(self._new_connection, sock=listener)
        except BaseException:
            listener.close()
            raise
        self.port = listener.getsockname()[1]

    async def _stop_serving(self) -> None:
        if self._server is not None:
            # Closes the listening socket synchronously; accepted sessions stay open, hence
            # the explicit drop below.
            self._server.close()
            self._server = None
        sessions = list(self._connections)
        for session in sessions:
            session.drop()
        await asyncio.gather(*(session.lost for session in sessions))

    def _new_connection(self) -> _SinkSMTP:
        """Protocol factory: one aiosmtpd SMTP instance per accepted connection."""
        assert self._loop is not None and self._handler is not None
        with_auth = self.config.auth is not None
        session = _SinkSMTP(
            self._handler,
            hostname=_SERVER_HOSTNAME,
            ident=_IDENT,
            tls_context=self._tls_context,
            enable_SMTPUTF8=True,
            # aiosmtpd advertises and accepts AUTH only inside TLS unless told otherwise.
            auth_require_tls=self.config.starttls,
            authenticator=self._handler.authenticate if with_auth else None,
            loop=self._loop,
        )
        self._connections.add(session)
        session.lost.add_done_callback(lambda _: self._connections.discard(session))
        return session

    # -- helpers ---------------------------------------------------------------------------

    def _run_step(self, step: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``step()`` in the server loop and wait for it, re-raising its exception."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(step(), self._loop)
        try:
            future.result(timeout=_STEP_TIMEOUT_S)
        except FutureTimeoutError:
            future.cancel()
            raise TimeoutError(f"SMTP sink: {step.__name__} did not complete") from None

    def _require_started(self) -> None:
        if self._thread is None:
            raise RuntimeError("SMTP sink not started")

    def _shut_down(self) -> None:
        """Undo whatever start() set up; also unwinds a start() that failed half-way."""
        try:
            if self._thread is not None:
                assert self._loop is not None
                try:
                    self._run_step(self._stop_serving)
                finally:
                    self._loop.call_soon_threadsafe(self._loop.stop)
                    self._thread.join()
            elif self._loop is not None:
                self._loop.close()
        finally:
            self._loop = self._thread = self._handler = self._tls_context = None
            self._server = None
            self._connections.clear()
            if self._cert_dir is not None:
                shutil.rmtree(self._cert_dir, ignore_errors=True)
            self._cert_dir = self.cert_path = None


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Body of the server thread: run until stopped, then let cancelled session tasks finish
    so closing the loop does not warn about pending tasks."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


def _bind_listener(host: str, port: int) -> socket.socket:
    """Bind one listening socket for (host, port).

    asyncio's create_server(host, port) would bind every address ``host`` resolves to; with
    port 0 each would get a different port, and "the" port to report and to re-bind on
    resume() would be ill-defined.  One socket on the first address avoids that.
    SO_REUSEADDR lets resume() re-bind while sessions dropped by pause() sit in TIME_WAIT.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(socket.SOMAXCONN)
        listener.setblocking(False)
    except BaseException:
        listener.close()
        raise
    return listener


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


def _write_self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """Create a self-signed server certificate and its key in ``directory``.

    It is the client's trust anchor itself (``cert_path``), so it is a leaf, not a CA:
    rustls/webpki rejects a CA certificate presented as the server's own
    ("CaUsedAsEndEntity"), while OpenSSL and webpki both accept a self-signed leaf that is
    explicitly trusted.  The SANs cover the usual ways to reach a local server.  Validity
    starts a day back so clock skew between processes cannot make it "not yet valid".
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "iamwatchd emulator SMTP sink")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    # mkdtemp made the directory 0700; the key file is private as well.
    key_fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(key_fd, "wb") as key_file:
        key_file.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path
