"""The sink itself: ``HttpSinkConfig``, and ``HttpSink`` with its threaded HTTP server.

One request flows: read it (``Content-Length`` or chunked), validate it by kind, choose the
answer (scripted, standing, or the platform's), store the record with that status, wait the
scripted delay, answer.  Requests under ``/_sink/`` are the control API instead (see the
package docstring) and are not stored.  Every stored request is logged as one line on stderr.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import socket
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

from . import pagerduty, slack, teams, webhook
from .checks import Answer, Request
from .script import ControlError, Scripts
from .store import RequestStore

CONTROL_PREFIX = "/_sink/"

#: kind -> (validate, default answer); ``webhook`` also needs the secret, see ``_check``.
_KINDS: dict[str, tuple[Callable[[Request], list[str]], Callable[[Request, list[str]], Answer]]] = {
    "slack": (slack.validate, slack.default_answer),
    "teams": (teams.validate, teams.default_answer),
    "pagerduty": (pagerduty.validate, pagerduty.default_answer),
}


@dataclass(kw_only=True)
class HttpSinkConfig:
    """Where the sink listens and stores."""

    host: str = "127.0.0.1"
    port: int = 0
    """0 picks a free port; ``HttpSink.port`` reports the real one after ``start()``."""
    directory: Path
    """Where request records are stored; created (with parents) if missing."""

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)


class HttpSink:
    """A threaded HTTP server that stores and validates every request (see the package
    docstring).  ``start()`` returns once listening; ``stop()`` is idempotent."""

    def __init__(self, config: HttpSinkConfig):
        self.config = config
        self.port: int = config.port
        self.store = RequestStore(config.directory)
        self.scripts = Scripts()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://HOST:PORT``, the base of every sink URL."""
        return f"http://{self.config.host}:{self.port}"

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("HTTP sink already started")
        server = ThreadingHTTPServer((self.config.host, self.config.port), _Handler)
        server.daemon_threads = True
        server.sink = self  # type: ignore[attr-defined]
        self._server, self.port = server, server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, name="iamwatchd-http-sink",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        server = self._server
        if server is None:
            return
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        # serve_forever looks at the shutdown flag only every 0.5 s; a connection wakes it now.
        while stopper.is_alive():
            with contextlib.suppress(OSError):
                socket.create_connection(server.server_address[:2], timeout=1).close()
            stopper.join(0.05)
        server.server_close()
        self._server = None

    def kind(self, path: str) -> str:
        """The platform a path is for: its first segment if known, else ``other``."""
        first = path.lstrip("/").split("/", 1)[0]
        return first if first in (*_KINDS, "webhook") else "other"

    def receive(self, request: Request) -> Answer:
        """Validate and store one request; returns the answer to send (after its delay)."""
        kind = self.kind(request.path)
        verified = None
        if kind == "webhook":
            problems, verified = webhook.validate(request, self.scripts.secret_for(request.path))
            default = webhook.default_answer
        elif kind in _KINDS:
            validate, default = _KINDS[kind]
            problems = validate(request)
        else:
            problems, default = [], lambda _request, _problems: Answer(200)
        answer = self.scripts.next_answer(request.path) or default(request, problems)
        try:
            body: dict[str, str] = {"body": request.body.decode("utf-8")}
        except UnicodeDecodeError:
            body = {"body_base64": base64.b64encode(request.body).decode("ascii")}
        received_at = datetime.datetime.now(datetime.timezone.utc)
        record = self.store.store({
            "received_at": received_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "headers": request.headers,
            **body,
            "status": answer.status,
            "kind": kind,
            "problems": list(problems),
            "signature_verified": verified,
        })
        print(f"http-sink: {request.method} {request.path} kind={kind} status={answer.status} "
              f"problems={len(problems)} file={record['seq']:06d}.json", file=sys.stderr,
              flush=True)
        return answer

    def control(self, method: str, path: str, query: str, body: bytes) -> Answer:
        """One ``/_sink/`` request: the control API of the package docstring."""
        operations: dict[tuple[str, str], Callable[[Any], None]] = {
            ("POST", "script"): self.scripts.script,
            ("POST", "secret"): self.scripts.secret,
            ("POST", "reset"): lambda _body: self.scripts.reset(),
        }
        name = path[len(CONTROL_PREFIX):]
        if (method, name) == ("GET", "requests"):
            prefix = urllib.parse.parse_qs(query).get("path", [""])[0]
            return Answer.json(200, self.store.records(prefix))
        if (method, name) not in operations:
            known = "POST script, POST secret, POST reset, GET requests"
            return Answer.json(404, {"error": f"no control operation {method} {path} ({known})"})
        try:
            value = json.loads(body.decode("utf-8")) if body.strip() else None
            operations[(method, name)](value)
        except ControlError as error:
            return Answer.json(400, {"error": str(error)})
        except ValueError as error:  # json's errors and UnicodeDecodeError
            return Answer.json(400, {"error": f"body is not JSON: {error}"})
        return Answer.json(200, {"ok": True})


class _Handler(BaseHTTPRequestHandler):
    """Routes every method to ``HttpSink``; HTTP/1.1 so clients can keep connections open."""

    protocol_version = "HTTP/1.1"
    server_version = "iamwatchd-http-sink"

    def _handle(self) -> None:
        sink: HttpSink = self.server.sink  # type: ignore[attr-defined]
        body = self._read_body()
        path, _, query = self.path.partition("?")
        if path.startswith(CONTROL_PREFIX):
            answer = sink.control(self.command, path, query, body)
        else:
            headers: dict[str, str] = {}
            for name, value in self.headers.items():
                name = name.lower()
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
            answer = sink.receive(Request(self.command, path, query, headers, body))
            if answer.delay:
                time.sleep(answer.delay)
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailer fields
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Silenced: ``HttpSink.receive`` logs one line per stored request instead."""
