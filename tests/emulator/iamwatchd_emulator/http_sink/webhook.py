"""Standard Webhooks v1 (standardwebhooks.com, spec v1.0.0): headers, timestamp and signature.

The spec's rules checked here:

* every delivery carries ``webhook-id`` (the message id, stable across retries),
  ``webhook-timestamp`` (integer unix seconds) and ``webhook-signature`` (space-separated
  ``v1,<base64>`` entries, ``v1a,<base64>`` for ed25519 signatures);
* receivers reject timestamps more than 5 minutes from their clock (the reference libraries'
  tolerance), which is what protects against replays;
* the payload is JSON;
* with a secret (``whsec_`` + base64) the signature is HMAC-SHA256 over
  ``{id}.{timestamp}.{body}``.  The HMAC is computed by the spec's own Python library
  (``standardwebhooks`` on PyPI), not by code written here, so the check is independent of
  iamwatchd's signer.  Its ``Webhook.verify`` also applies the timestamp tolerance against the
  real clock; ``signature_valid`` checks the signature alone, so the spec's published test
  vector (whose timestamp is long past) can be verified, and the tolerance is the separate
  ``validate`` rule with an explicit ``now``.

A receiver answers 2xx for success; the default answer is ``200`` with an empty body.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hmac
import re
import time

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from .checks import Answer, Problems, Request, json_post

TOLERANCE_S = 5 * 60
HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
#: One entry of the space-separated signature list: symmetric (v1) or ed25519 (v1a).
_SIGNATURE_ENTRY = re.compile(r"^v1a?,[A-Za-z0-9+/]+={0,2}$")


def default_answer(_request: Request, _problems: list[str]) -> Answer:
    """A receiver's answer to an accepted delivery."""
    return Answer(200)


def signature_valid(secret: str, msg_id: str, timestamp: str, body: bytes, signatures: str) -> bool:
    """True when one ``v1`` entry of ``signatures`` is the library's signature of the message.

    Malformed input (an unusable secret, a non-integer timestamp, a body that is not UTF-8,
    entries that are not ``version,base64``) is simply not a valid signature.
    """
    try:
        signer = Webhook(secret)
        signed_at = datetime.datetime.fromtimestamp(int(timestamp), tz=datetime.timezone.utc)
        expected = base64.b64decode(signer.sign(msg_id, signed_at, body.decode("utf-8"))[3:])
    except (ValueError, OverflowError, OSError, EmptyWebhookSecretError):
        return False
    for entry in signatures.split(" "):
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            continue
        if hmac.compare_digest(expected, candidate):
            return True
    return False


def validate(
    request: Request, secret: str | None, now: float | None = None
) -> tuple[list[str], bool | None]:
    """The problems of one delivery and whether its signature verified (None: no secret).

    ``now`` (unix seconds) defaults to the clock; tests pass a fixed one.
    """
    problems = Problems()
    headers = request.headers
    for name in HEADERS:
        if not headers.get(name):
            problems.add(name, "missing header")
    timestamp = headers.get("webhook-timestamp")
    if timestamp:
        if not timestamp.isdigit():
            problems.add("webhook-timestamp", f"{timestamp!r} is not integer unix seconds")
        else:
            skew = int(timestamp) - (time.time() if now is None else now)
            if abs(skew) > TOLERANCE_S:
                problems.add("webhook-timestamp", f"{abs(skew):.0f} s "
                             f"{'ahead of' if skew > 0 else 'behind'} the receiver's clock, the "
                             f"tolerance is {TOLERANCE_S} s")
    for entry in headers.get("webhook-signature", "").split():
        if not _SIGNATURE_ENTRY.match(entry):
            problems.add("webhook-signature", f"{entry!r} is not v1,<base64> or v1a,<base64>")
    json_post(request, problems)
    verified = None
    if secret is not None:
        verified = all(headers.get(name) for name in HEADERS) and signature_valid(
            secret, headers["webhook-id"], headers["webhook-timestamp"], request.body,
            headers["webhook-signature"])
        if not verified:
            problems.add("webhook-signature", "does not verify with the registered secret")
    return problems, verified
