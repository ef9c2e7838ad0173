"""The sink itself: ``SmtpSinkConfig``, and ``SmtpSink`` with its listener and event loop.

The server runs its own asyncio loop in a background thread; every public method is
synchronous and returns only once its effect is in place (listening, closed, ...), which is
what lets the tests avoid sleeping.  ``pause()`` closes the listening socket *and* drops the
sessions that are open, so a client with a pooled connection sees the outage too; ``resume()``
listens again on the same port, so the daemon's configuration stays valid across the outage.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import tempfile
import threading
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Coroutine

from .maildir import _Maildir
from .session import _new_session, _SinkHandler, _SinkSMTP
from .tls import _write_self_signed_certificate

# Upper bound for one start/pause/resume/stop step to complete in the server thread.  It is a
# safety net that turns a wedged event loop into an exception instead of a hung test run; the
# steps themselves are event-driven and normally finish in milliseconds.
_STEP_TIMEOUT_S = 30.0


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

    def slow_data(self, seconds: float) -> None:
        """Hold every DATA this long before storing and answering it (0: answer at once)."""
        with self._lock:
            self._require_started()
            assert self._handler is not None
            self._handler.data_delay = seconds

    @property
    def holding(self) -> int:
        """Messages held by ``slow_data`` right now (received, not yet answered)."""
        return 0 if self._handler is None else self._handler.holding

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
        session = _new_session(
            self._handler,
            self._tls_context,
            starttls=self.config.starttls,
            with_auth=self.config.auth is not None,
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
