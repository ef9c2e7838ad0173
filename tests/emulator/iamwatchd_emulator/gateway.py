"""The WSGI layer in front of moto: faults, LookupEvents, CloudTrail recording, control endpoint.

Every request passes here first. The caller's service, region and access key come from the
SigV4 credential scope (``Credential=AKID/DATE/REGION/SERVICE/aws4_request``), the operation from
``X-Amz-Target`` (JSON protocols) or the ``Action`` form field (query protocol). Requests for the
services CloudTrail must record (IAM, STS, CloudTrail, CloudWatch Logs, CloudWatch, SNS) are
buffered, handed to moto, and turned into a CloudTrail record from the request and moto's answer.
"""

from __future__ import annotations

import io
import json
import re
import time
import uuid
from http import HTTPStatus
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

from . import access_analyzer, accounts, control
from .lookup import ApiError, lookup_events
from .records import (
    DATA_EVENTS, EVENT_SOURCES, Call, build_record, camel_keys, query_params, user_identity,
)
from .state import EmulatorState, Faults, clock

CREDENTIAL = re.compile(r"Credential=([^/\s,]+)/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")

#: Services answered in a JSON protocol (errors as ``{"__type": …}``); the rest speak query/XML.
JSON_SERVICES = {
    "cloudtrail", "logs", "sqs", "dynamodb", "config", "organizations", "sso", "identitystore",
    "kms", "guardduty", "securityhub",
}

StartResponse = Callable[..., Any]

#: REST-JSON operations recorded by method and path (the path's ids become request parameters,
#: as CloudTrail records them): GuardDuty's and Security Hub's, the ones the tests use.
REST_OPERATIONS = [
    ("guardduty", "POST", re.compile(r"^/detector$"), "CreateDetector"),
    ("guardduty", "DELETE", re.compile(r"^/detector/(?P<detectorId>[^/]+)$"), "DeleteDetector"),
    ("guardduty", "POST", re.compile(r"^/detector/(?P<detectorId>[^/]+)$"), "UpdateDetector"),
    ("guardduty", "GET", re.compile(r"^/detector/(?P<detectorId>[^/]+)$"), "GetDetector"),
    ("guardduty", "POST", re.compile(r"^/detector/(?P<detectorId>[^/]+)/filter$"), "CreateFilter"),
    ("securityhub", "POST", re.compile(r"^/accounts$"), "EnableSecurityHub"),
    ("securityhub", "DELETE", re.compile(r"^/accounts$"), "DisableSecurityHub"),
]


def _credential_scope(environ: dict[str, Any]) -> tuple[str, str, str] | None:
    """(access key, region, service) of a SigV4-signed request (header or presigned URL)."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    match = CREDENTIAL.search(header)
    if match is None:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        credential = (query.get("X-Amz-Credential") or [""])[0]
        match = CREDENTIAL.search(f"Credential={credential}")
    if match is None:
        return None
    return match.group(1), match.group(2), match.group(3)


def _read_body(environ: dict[str, Any]) -> bytes:
    """Reads the request body and puts a fresh stream back for moto."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _rest_operation(
    service: str, environ: dict[str, Any], body: bytes
) -> tuple[str | None, dict[str, Any]]:
    """A REST-JSON call's operation (``REST_OPERATIONS``) and its parameters: the path's ids
    and the JSON body's fields, camelCase."""
    method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
    for rest_service, rest_method, pattern, action in REST_OPERATIONS:
        match = pattern.match(path)
        if rest_service == service and rest_method == method and match:
            try:
                params = json.loads(body or b"{}")
            except ValueError:
                params = {}
            params = camel_keys(params) if isinstance(params, dict) else {}
            return action, {**match.groupdict(), **params}
    return None, {}


def _operation(environ: dict[str, Any], body: bytes) -> tuple[str | None, dict[str, Any]]:
    """The operation name and its parameters (camelCase, as CloudTrail records them)."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
        return target.rsplit(".", 1)[-1], params if isinstance(params, dict) else {}
    form = body.decode("utf-8", "replace")
    action = (parse_qs(form).get("Action") or [None])[0]
    if action is None:
        action = (parse_qs(environ.get("QUERY_STRING", "")).get("Action") or [None])[0]
    return action, query_params(form)


def _error_response(service: str, code: str, message: str, status: int) -> tuple[str, list, bytes]:
    request_id = str(uuid.uuid4())
    if service in JSON_SERVICES:
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", request_id)]
    else:
        body = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    return f"{status} {HTTPStatus(status).phrase}", headers, body


def _codeless_error(status: int) -> tuple[str, list, bytes]:
    """An error page without an AWS error code, as a proxy or load balancer answers."""
    reason = HTTPStatus(status).phrase
    body = f"<html><body><h1>{status} {reason}</h1></body></html>".encode()
    return f"{status} {reason}", [("Content-Type", "text/html")], body


class Gateway:
    """WSGI middleware wrapping moto's application."""

    def __init__(self, app: Callable, state: EmulatorState, pump: Any, smtp: Any = None) -> None:
        self.app = app
        self.state = state
        self.pump = pump
        #: The SMTP sink, so tests can take the mail server down and bring it back.
        self.smtp = smtp

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(control.PREFIX):
            return control.handle(self, environ, start_response)
        scope = _credential_scope(environ)
        if scope is None:
            return self.app(environ, start_response)
        access_key, region, service = scope
        fault = self._fault(service, lambda: _operation(environ, _read_body(environ))[0])
        if fault is not None:
            status, headers, body = fault
            start_response(status, headers)
            return [body]
        if service == "access-analyzer":
            return access_analyzer.handle(self.state, environ, _read_body(environ), start_response)
        if service not in EVENT_SOURCES:
            return self.app(environ, start_response)
        return self._recorded(environ, start_response, access_key, region, service)

    def _fault(
        self, service: str, operation: Callable[[], str | None]
    ) -> tuple[str, list, bytes] | None:
        """The injected answer for a request, if a fault set in scope gives one; sleeps the
        added latency (the largest of the sets in scope) first. ``operation`` reads the
        request's operation, only when a set is scoped to operations."""
        with self.state.lock:
            sets = [f for _, f in sorted(self.state.faults.items())
                    if not f.services or service in f.services]
        if not sets:
            return None
        name = operation() if any(f.operations for f in sets) else None
        with self.state.lock:
            latency = 0
            answer = None
            for faults in sets:
                if not faults.applies_to(service, name):
                    continue
                latency = max(latency, faults.latency_ms)
                if answer is None:
                    answer = self._fault_answer(service, faults)
        if latency:
            time.sleep(latency / 1000)  # the injected fault itself, not synchronisation
        return answer

    def _fault_answer(self, service: str, faults: Faults) -> tuple[str, list, bytes] | None:
        """One set's answer (call with the state's lock held): throttling, then the next
        deterministic failure, then a seeded random one."""
        if faults.throttle:
            self.state.counters["faults_throttled"] += 1
            code = "ThrottlingException" if service in JSON_SERVICES else "Throttling"
            return _error_response(service, code, "Rate exceeded", 400)
        if faults.fail_next > 0:
            faults.fail_next -= 1
            self.state.counters["faults_failed"] += 1
            if faults.fail_code:
                return _error_response(service, faults.fail_code, "Injected fault", faults.fail_status)
            return _codeless_error(faults.fail_status)
        if faults.error_rate and faults.rng.random() < faults.error_rate:
            self.state.counters["faults_failed"] += 1
            return _error_response(service, "ServiceUnavailable", "Injected fault", 503)
        return None

    def _recorded(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        access_key: str,
        region: str,
        service: str,
    ) -> Iterable[bytes]:
        body = _read_body(environ)
        rest = service in {s for s, _, _, _ in REST_OPERATIONS}
        action, params = _rest_operation(service, environ, body) if rest else _operation(environ, body)
        if action is None or (service, action) in DATA_EVENTS:
            return self.app(environ, start_response)
        call = Call(
            service=service,
            action=action,
            region=region,
            access_key=access_key,
            params=camel_keys(params) if environ.get("HTTP_X_AMZ_TARGET") and not rest else params,
            source_ip=environ.get("REMOTE_ADDR", "127.0.0.1"),
            user_agent=environ.get("HTTP_USER_AGENT", ""),
        )
        if (service, action) == ("sts", "AssumeRole"):
            # By the account gone into: what a daemon watching many accounts costs each one.
            self.state.count_for(accounts.role_account(params), "assume_role_calls")
        if service == "cloudtrail" and action == "LookupEvents":
            status, headers, response = self._lookup_events(call, params)
            record_it = self.state.settings.record_lookups
        elif service == "sts" and action == "AssumeRole" and (
            refusal := accounts.assume_role_refusal(
                params, user_identity(access_key, call.account)["arn"])
        ):
            self.state.count_for(accounts.role_account(params), "assume_role_refused")
            status, headers, response = _error_response("sts", "AccessDenied", refusal, 403)
            record_it = True
        else:
            status, headers, response = self._call_moto(environ)
            record_it = True
            if (service, action) == ("organizations", "CreateAccount") and status.startswith("200"):
                created = json.loads(response)["CreateAccountStatus"]["AccountId"]
                accounts.create_organization_role(created, call.account)
        call.status = int(status.split(" ", 1)[0])
        call.response_body = response
        call.request_id = dict((k.lower(), v) for k, v in headers).get("x-amzn-requestid")
        if record_it:
            self.state.add_event(build_record(call, clock()), call.account, call.record_region)
        start_response(status, headers)
        return [response]

    def _call_moto(self, environ: dict[str, Any]) -> tuple[str, list, bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None) -> Callable:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        chunks = self.app(environ, capture)
        try:
            response = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close:
                close()
        return captured["status"], list(captured["headers"]), response

    def _lookup_events(self, call: Call, params: dict[str, Any]) -> tuple[str, list, bytes]:
        request_id = str(uuid.uuid4())
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", request_id)]
        try:
            result = lookup_events(self.state, call.account, call.region, params, clock())
        except ApiError as error:
            return f"{error.status} Bad Request", headers, error.body()
        return "200 OK", headers, json.dumps(result).encode()
