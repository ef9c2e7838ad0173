"""Starts the emulator: moto's server behind our gateway, the delivery pump, the SMTP and HTTP
sinks.

Prints exactly one line on stdout when every listener accepts connections::

    READY aws=http://127.0.0.1:PORT control=URL smtp=127.0.0.1:PORT maildir=DIR cert=PATH
          http=http://127.0.0.1:PORT httpdir=DIR

(one line; ``smtp``/``maildir`` are absent with ``--no-smtp``, ``cert`` without
``--smtp-starttls``, ``http``/``httpdir`` with ``--no-http``).

Everything else (request logs, warnings) goes to stderr. Ports given as 0 are chosen by the
kernel and reported in that line, so parallel tests never collide. With ``--exit-with-stdin`` the
emulator exits when its stdin closes, so a test process that dies cannot leave it running.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import signal
import sys
import tempfile
import threading

from werkzeug.serving import make_server

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

from . import cbor, cfn, filterpattern, managed_policies, organization_trails
from .delivery import Pump
from .gateway import Gateway
from .http_sink import HttpSink, HttpSinkConfig
from .smtp_sink import SmtpSink, SmtpSinkConfig
from .state import EmulatorState, Settings

HOST = "127.0.0.1"


def _auth(value: str) -> tuple[str, str]:
    user, sep, password = value.partition(":")
    if not sep or not user:
        raise argparse.ArgumentTypeError("expected USER:PASSWORD")
    return user, password


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tests/emulator/run",
        description="Local AWS emulator for iamwatchd: moto plus CloudTrail LookupEvents, trail "
        "delivery, metric filters, alarms, an SMTP sink and an HTTP sink. Listens on 127.0.0.1 "
        "only.",
    )
    parser.add_argument("--port", type=int, default=0, help="AWS endpoint port (0: any free port)")
    parser.add_argument("--smtp-port", type=int, default=0, help="SMTP sink port (0: any free port)")
    parser.add_argument("--no-smtp", action="store_true", help="do not start the SMTP sink")
    parser.add_argument("--maildir", type=pathlib.Path, help="where received mail is stored "
                        "(default: a new temporary directory)")
    parser.add_argument("--smtp-starttls", action="store_true",
                        help="offer STARTTLS with a certificate generated at start")
    parser.add_argument("--smtp-require-tls", action="store_true",
                        help="refuse MAIL before STARTTLS (implies --smtp-starttls)")
    parser.add_argument("--smtp-auth", type=_auth, metavar="USER:PASSWORD",
                        help="require SMTP AUTH with these credentials")
    parser.add_argument("--http-port", type=int, default=0,
                        help="HTTP sink port: Slack, Teams, PagerDuty, webhooks (0: any free port)")
    parser.add_argument("--no-http", action="store_true", help="do not start the HTTP sink")
    parser.add_argument("--http-dir", type=pathlib.Path, help="where requests to the HTTP sink "
                        "are stored (default: a new temporary directory)")
    defaults = Settings()
    parser.add_argument("--lookup-delay", type=float, default=defaults.lookup_delay,
                        help="seconds until a record is visible in LookupEvents (default %(default)s)")
    parser.add_argument("--log-delay", type=float, default=defaults.log_delay,
                        help="seconds until a trail delivers a record to its log group "
                        "(default %(default)s)")
    parser.add_argument("--lookup-rate", type=float, default=defaults.lookup_rate,
                        help="LookupEvents requests per second per account+region; 0 disables "
                        "the limit (default %(default)s, as AWS)")
    parser.add_argument("--tick", type=float, default=defaults.tick,
                        help="seconds between delivery/alarm evaluation steps (default %(default)s)")
    parser.add_argument("--no-record-lookups", action="store_true",
                        help="do not record LookupEvents calls themselves (AWS does record them)")
    parser.add_argument("--exit-with-stdin", action="store_true",
                        help="exit when stdin reaches end of file (for test harnesses)")
    parser.add_argument("--verbose", action="store_true", help="log every HTTP request")
    args = parser.parse_args(argv)
    if args.smtp_require_tls:
        args.smtp_starttls = True
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="emulator %(levelname)s %(name)s: %(message)s"
    )
    quiet = logging.INFO if args.verbose else logging.WARNING
    logging.getLogger("werkzeug").setLevel(quiet)
    logging.getLogger("mail.log").setLevel(quiet)  # aiosmtpd's per-command protocol log

    filterpattern.install()
    managed_policies.install()
    cfn.install()
    organization_trails.install()

    state = EmulatorState(
        Settings(
            lookup_delay=args.lookup_delay,
            log_delay=args.log_delay,
            lookup_rate=args.lookup_rate,
            record_lookups=not args.no_record_lookups,
            tick=args.tick,
        )
    )
    pump = Pump(state)

    sink = None
    if not args.no_smtp:
        maildir = args.maildir or pathlib.Path(tempfile.mkdtemp(prefix="iamwatchd-mail-"))
        sink = SmtpSink(
            SmtpSinkConfig(
                host=HOST,
                port=args.smtp_port,
                maildir=maildir,
                starttls=args.smtp_starttls,
                require_tls=args.smtp_require_tls,
                auth=args.smtp_auth,
            )
        )
        sink.start()

    http_sink = None
    if not args.no_http:
        http_dir = args.http_dir or pathlib.Path(tempfile.mkdtemp(prefix="iamwatchd-http-"))
        http_sink = HttpSink(HttpSinkConfig(host=HOST, port=args.http_port, directory=http_dir))
        http_sink.start()

    gateway = Gateway(DomainDispatcherApplication(create_backend_app), state, pump, sink)
    app = cbor.CborCloudWatch(gateway)
    server = make_server(HOST, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    aws_url = f"http://{HOST}:{server.server_port}"

    stopping = threading.Event()

    def stop(*_: object) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.exit_with_stdin:
        threading.Thread(target=lambda: (sys.stdin.read(), stop()), daemon=True).start()

    pump.start()
    ready = [f"READY aws={aws_url}", f"control={aws_url}/_iamwatchd/"]
    if sink is not None:
        ready += [f"smtp={HOST}:{sink.port}", f"maildir={sink.config.maildir}"]
        if sink.cert_path:
            ready.append(f"cert={sink.cert_path}")
    if http_sink is not None:
        ready += [f"http={http_sink.url}", f"httpdir={http_sink.config.directory}"]
    print(" ".join(ready), flush=True)
    try:
        server.serve_forever()
    finally:
        pump.stop()
        if sink is not None:
            sink.stop()
        if http_sink is not None:
            http_sink.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
