"""Tests of the emulator's SMTP sink, with the standard library's smtplib as the client.

Every sink operation returns only once it took effect and a message is on disk before the
server answers DATA, so nothing here waits or polls.
"""

from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import os
import re
import smtplib
import socket
import ssl
import stat
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from iamwatchd_emulator import smtp_sink
from iamwatchd_emulator.smtp_sink import SmtpSink, SmtpSinkConfig

FILE_NAME = re.compile(r"^(\d{6})-(\d{13})\.eml$")
USER, PASSWORD = "iamwatchd", "s3cret-Passw0rd"  # smtplib only sends ASCII credentials
CLIENT_TIMEOUT_S = 10  # guards against a hang; never relied on for ordering


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    return tmp_path / "sink" / "maildir"


@pytest.fixture
def start_sink(maildir: Path):
    """Start sinks with the given SmtpSinkConfig options; all are stopped after the test."""
    sinks: list[SmtpSink] = []

    def start(**options) -> SmtpSink:
        options.setdefault("maildir", maildir)
        sink = SmtpSink(SmtpSinkConfig(**options))
        sinks.append(sink)
        sink.start()
        return sink

    yield start
    for sink in sinks:
        sink.stop()


def trusting(sink: SmtpSink) -> ssl.SSLContext:
    """A client context that trusts exactly the sink's generated certificate."""
    assert sink.cert_path is not None
    return ssl.create_default_context(cafile=sink.cert_path)


def connect(sink: SmtpSink, host: str = "127.0.0.1", *, tls: bool = False) -> smtplib.SMTP:
    client = smtplib.SMTP(host, sink.port, local_hostname="client.test", timeout=CLIENT_TIMEOUT_S)
    if tls:
        client.starttls(context=trusting(sink))
    return client


def stored(maildir: Path) -> list[Path]:
    return sorted(maildir.glob("*.eml"))


def simple_message(subject: str) -> bytes:
    return (
        f"From: iamwatchd <alerts@example.test>\r\nTo: admin@example.test\r\n"
        f"Subject: {subject}\r\n\r\nbody of {subject}\r\n"
    ).encode()


def envelope_prefix(sender: str, recipients: list[str]) -> bytes:
    fields = [f"X-Sink-Mail-From: {sender}\r\n"]
    fields += [f"X-Sink-Rcpt-To: {recipient}\r\n" for recipient in recipients]
    return "".join(fields).encode()


# -- plain delivery and storage format -------------------------------------------------------


def test_plain_delivery_stores_envelope_and_message(start_sink, maildir, capsys):
    sink = start_sink()
    message = simple_message("role created")
    before_ms = time.time_ns() // 1_000_000

    with connect(sink) as client:
        code, features = client.ehlo()
        assert code == 250
        assert not client.has_extn("starttls") and not client.has_extn("auth")
        refused = client.sendmail(
            "alerts@example.test", ["admin@example.test", "audit@example.test"], message
        )
    assert refused == {}

    [path] = stored(maildir)
    sequence, unix_ms = FILE_NAME.match(path.name).groups()
    assert sequence == "000001"
    assert before_ms <= int(unix_ms) <= time.time_ns() // 1_000_000
    assert path.read_bytes() == (
        envelope_prefix("alerts@example.test", ["admin@example.test", "audit@example.test"])
        + message
    )

    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert parsed["X-Sink-Mail-From"] == "alerts@example.test"
    assert parsed.get_all("X-Sink-Rcpt-To") == ["admin@example.test", "audit@example.test"]
    assert parsed["Subject"] == "role created"

    assert capsys.readouterr().err.splitlines() == [
        f'smtp-sink: from=<alerts@example.test> to=<admin@example.test>,<audit@example.test> '
        f'subject="role created" size={len(message)} file={path.name}'
    ]


def test_message_with_unicode_html_and_dots_is_stored_byte_exact(start_sink, maildir, capsys):
    sink = start_sink()
    sender, recipient = "wächter@example.test", "admin@exämple.test"
    message = (
        "From: =?utf-8?q?W=C3=A4chter?= <wächter@example.test>\r\n"
        "To: Zoë <admin@exämple.test>\r\n"
        "Subject: Zugriff geändert ✓ <b>not markup</b>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: text/html; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "<html><body><p>Rolle &lt;admin&gt; geändert — 🚨</p>\r\n"
        ".a line that starts with a dot (dot-stuffed on the wire)\r\n"
        "..two dots\r\n"
        "\r\n"
        "trailing spaces   \r\n"
        "</body></html>\r\n"
    ).encode("utf-8")

    with connect(sink) as client:
        client.sendmail(sender, [recipient], message, mail_options=["SMTPUTF8", "BODY=8BITMIME"])

    [path] = stored(maildir)
    assert path.read_bytes() == envelope_prefix(sender, [recipient]) + message
    assert 'subject="Zugriff geändert ✓ <b>not markup</b>"' in capsys.readouterr().err


def test_log_line_decodes_encoded_subject_and_stays_one_line(start_sink, capsys):
    sink = start_sink()
    # Folded over two lines; the encoded words decode to an umlaut, quotes and a line feed.
    message = (
        b"Subject: =?utf-8?q?Zugriff_ge=C3=A4ndert?=\r\n"
        b" =?utf-8?q?_=22quoted=22=0Anext_line?=\r\n\r\nx\r\n"
    )

    with connect(sink) as client:
        client.sendmail("a@example.test", ["b@example.test"], message)

    [line] = capsys.readouterr().err.splitlines()
    assert 'subject="Zugriff geändert \\"quoted\\"\\nnext line"' in line


def test_files_are_numbered_in_arrival_order_and_nothing_else_is_left(start_sink, maildir):
    sink = start_sink()
    subjects = []
    for connection in range(3):
        with connect(sink) as client:
            for index in range(4):
                subject = f"message {connection}.{index}"
                subjects.append(subject)
                client.sendmail("a@example.test", ["b@example.test"], simple_message(subject))

    paths = stored(maildir)
    assert [FILE_NAME.match(p.name).group(1) for p in paths] == [
        f"{n:06d}" for n in range(1, 13)
    ]
    assert [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["Subject"]
        for p in paths
    ] == subjects
    assert sorted(os.listdir(maildir)) == [p.name for p in paths]


def test_a_message_becomes_visible_only_by_an_atomic_rename(start_sink, maildir, monkeypatch):
    """The file is complete under a name no reader looks at, then renamed within the dir."""
    sink = start_sink()
    message = simple_message("atomic")
    renames = []
    real_replace = os.replace

    def observing_replace(source, destination):
        source, destination = Path(source), Path(destination)
        renames.append(
            {
                "same_dir": source.parent == destination.parent == maildir,
                "hidden_source": source.name.startswith(".") and source.suffix != ".eml",
                "complete_before_rename": source.read_bytes().endswith(message),
                "destination_absent": not destination.exists(),
                "visible_before_rename": stored(maildir),
            }
        )
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", observing_replace)
    with connect(sink) as client:
        client.sendmail("a@example.test", ["b@example.test"], message)

    assert renames == [
        {
            "same_dir": True,
            "hidden_source": True,
            "complete_before_rename": True,
            "destination_absent": True,
            "visible_before_rename": [],
        }
    ]
    assert len(stored(maildir)) == 1


def test_maildir_is_created_and_numbering_continues_across_restarts(start_sink, maildir):
    assert not maildir.exists()
    first = start_sink()
    with connect(first) as client:
        client.sendmail("a@example.test", ["b@example.test"], simple_message("one"))
    first.stop()

    second = start_sink()
    with connect(second) as client:
        client.sendmail("a@example.test", ["b@example.test"], simple_message("two"))

    assert [FILE_NAME.match(p.name).group(1) for p in stored(maildir)] == ["000001", "000002"]


def test_a_storage_failure_is_a_transient_smtp_error(start_sink, maildir, monkeypatch):
    def failing_deliver(self, mail_from, rcpt_tos, content):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(smtp_sink._Maildir, "deliver", failing_deliver)
    sink = start_sink()

    with connect(sink) as client, pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail("a@example.test", ["b@example.test"], simple_message("lost"))

    assert refused.value.smtp_code == 451
    assert refused.value.smtp_error.startswith(b"4.3.0")
    assert stored(maildir) == []


# -- STARTTLS ------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_starttls_with_the_generated_certificate_trusted(start_sink, maildir, host):
    sink = start_sink(starttls=True)

    with connect(sink, host) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        # smtplib verifies the certificate and the host name against the SANs.
        client.starttls(context=trusting(sink))
        assert client.sock.version() in {"TLSv1.2", "TLSv1.3"}
        client.ehlo()
        assert not client.has_extn("starttls")
        client.sendmail("a@example.test", ["b@example.test"], simple_message("over tls"))

    assert len(stored(maildir)) == 1


def test_a_client_that_does_not_trust_the_certificate_refuses_it(start_sink):
    sink = start_sink(starttls=True)

    with connect(sink) as client, pytest.raises(ssl.SSLCertVerificationError):
        client.starttls(context=ssl.create_default_context())


def test_generated_certificate_is_a_self_signed_localhost_leaf(start_sink):
    before = datetime.datetime.now(datetime.timezone.utc)
    sink = start_sink(starttls=True)
    certificate = x509.load_pem_x509_certificate(sink.cert_path.read_bytes())

    assert certificate.issuer == certificate.subject
    certificate.verify_directly_issued_by(certificate)
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ExtendedKeyUsageOID.SERVER_AUTH in certificate.extensions.get_extension_for_class(
        x509.ExtendedKeyUsage
    ).value
    one_day = datetime.timedelta(days=1)
    assert abs(certificate.not_valid_before_utc - (before - one_day)) < datetime.timedelta(
        minutes=5
    )
    assert abs(
        certificate.not_valid_after_utc - (before + 30 * one_day)
    ) < datetime.timedelta(minutes=5)
    assert stat.S_IMODE((sink.cert_path.parent / "key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE(sink.cert_path.parent.stat().st_mode) == 0o700


def test_stop_removes_the_tls_material(start_sink):
    sink = start_sink(starttls=True)
    cert_dir = sink.cert_path.parent

    sink.stop()

    assert sink.cert_path is None
    assert not cert_dir.exists()


def test_require_tls_refuses_mail_before_starttls(start_sink, maildir):
    sink = start_sink(starttls=True, require_tls=True)

    with connect(sink) as client:
        client.ehlo()
        code, reply = client.mail("a@example.test")
        assert (code, reply) == (530, b"5.7.0 Must issue a STARTTLS command first")
        client.starttls(context=trusting(sink))
        client.sendmail("a@example.test", ["b@example.test"], simple_message("after tls"))

    assert len(stored(maildir)) == 1


def test_require_tls_without_starttls_is_a_configuration_error(maildir):
    with pytest.raises(ValueError, match="starttls"):
        SmtpSinkConfig(maildir=maildir, require_tls=True)


# -- AUTH ----------------------------------------------------------------------------------


def login_with(client: smtplib.SMTP, mechanism: str, user: str, password: str) -> tuple:
    """Log in with one specific mechanism (smtplib's login() picks one by itself)."""
    client.user, client.password = user, password
    authobject = {"PLAIN": client.auth_plain, "LOGIN": client.auth_login}[mechanism]
    return client.auth(mechanism, authobject, initial_response_ok=mechanism == "PLAIN")


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_over_plaintext_is_offered_and_required(start_sink, maildir, mechanism):
    sink = start_sink(auth=(USER, PASSWORD))

    with connect(sink) as client:
        client.ehlo()
        assert set(client.esmtp_features["auth"].split()) == {"PLAIN", "LOGIN"}
        assert client.mail("a@example.test") == (530, b"5.7.0 Authentication required")
        assert login_with(client, mechanism, USER, PASSWORD) == (
            235,
            b"2.7.0 Authentication successful",
        )
        client.sendmail("a@example.test", ["b@example.test"], simple_message("authenticated"))

    assert len(stored(maildir)) == 1


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize(
    "user, password", [(USER, "wrong"), ("someone", PASSWORD), (USER, PASSWORD + "x")]
)
def test_wrong_credentials_are_refused_with_535(start_sink, maildir, mechanism, user, password):
    sink = start_sink(auth=(USER, PASSWORD))

    with connect(sink) as client:
        client.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            login_with(client, mechanism, user, password)
        assert refused.value.smtp_code == 535
        assert client.mail("a@example.test")[0] == 530

    assert stored(maildir) == []


def test_with_starttls_auth_is_only_offered_and_accepted_inside_tls(start_sink, maildir):
    sink = start_sink(starttls=True, auth=(USER, PASSWORD))

    with connect(sink) as client:
        client.ehlo()
        assert not client.has_extn("auth")
        assert client.docmd("AUTH", "PLAIN")[0] == 538
        client.starttls(context=trusting(sink))
        client.ehlo()
        assert client.has_extn("auth")
        client.login(USER, PASSWORD)
        client.sendmail("a@example.test", ["b@example.test"], simple_message("tls+auth"))

    assert len(stored(maildir)) == 1


def test_without_auth_configured_auth_is_neither_offered_nor_accepted(start_sink):
    sink = start_sink(starttls=True)

    with connect(sink, tls=True) as client:
        client.ehlo()
        assert not client.has_extn("auth")
        assert client.docmd("AUTH", "PLAIN")[0] == 503


# -- pause / resume and lifecycle ------------------------------------------------------------


def test_pause_refuses_connections_and_resume_serves_again_on_the_same_port(start_sink, maildir):
    sink = start_sink()
    port = sink.port
    with connect(sink) as client:
        client.sendmail("a@example.test", ["b@example.test"], simple_message("before"))

    sink.pause()
    assert sink.paused
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT_S)
    sink.pause()  # no-op while paused

    sink.resume()
    sink.resume()  # no-op while running
    assert not sink.paused
    assert sink.port == port
    with connect(sink) as client:
        client.sendmail("a@example.test", ["b@example.test"], simple_message("after"))

    assert len(stored(maildir)) == 2


def test_pause_drops_open_sessions(start_sink, maildir):
    """A client holding a pooled connection must notice the outage too."""
    sink = start_sink(starttls=True)
    plain = connect(sink)
    plain.ehlo()
    encrypted = connect(sink, tls=True)
    encrypted.ehlo()

    sink.pause()

    for client in (plain, encrypted):
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.sendmail("a@example.test", ["b@example.test"], simple_message("lost"))
    assert stored(maildir) == []
    sink.resume()
    with connect(sink, tls=True) as client:
        client.sendmail("a@example.test", ["b@example.test"], simple_message("after"))
    assert len(stored(maildir)) == 1


def test_port_zero_picks_a_free_port_and_a_fixed_port_in_use_fails_cleanly(start_sink, maildir):
    with socket.socket() as occupied:
        occupied.bind(("127.0.0.1", 0))
        occupied.listen()
        taken = occupied.getsockname()[1]
        sink = SmtpSink(SmtpSinkConfig(maildir=maildir, port=taken, starttls=True))
        with pytest.raises(OSError):
            sink.start()
        assert sink.cert_path is None
        sink.stop()  # nothing to stop, still fine

    free = start_sink()
    assert free.port not in (0, taken)


def test_lifecycle_misuse_is_reported(start_sink, maildir):
    idle = SmtpSink(SmtpSinkConfig(maildir=maildir))
    with pytest.raises(RuntimeError, match="not started"):
        idle.pause()
    with pytest.raises(RuntimeError, match="not started"):
        idle.resume()
    idle.stop()

    running = start_sink()
    with pytest.raises(RuntimeError, match="already started"):
        running.start()
    running.stop()
    running.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", running.port), timeout=CLIENT_TIMEOUT_S)
