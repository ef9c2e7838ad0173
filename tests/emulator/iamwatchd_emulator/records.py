"""Turns an API call made against the emulator into the CloudTrail record real AWS would write.

The shape follows real records (compare tests/data/cloudtrail/records.jsonl.gz): the caller's
identity comes from its access key (IAM user, assumed-role session or the account root), request
parameters are camelCased, responses of mutating calls appear as ``responseElements``, failed calls
carry ``errorCode``/``errorMessage``, secrets are redacted the way CloudTrail redacts them.
IAM and STS are global services whose events CloudTrail records in us-east-1.
"""

from __future__ import annotations

import json
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import get_account_id_from, iam_backends
from moto.sts.models import sts_backends

from .state import format_event_time

#: Signing name (credential scope) → CloudTrail eventSource host.
EVENT_SOURCES = {
    "iam": "iam.amazonaws.com",
    "sts": "sts.amazonaws.com",
    "cloudtrail": "cloudtrail.amazonaws.com",
    "logs": "logs.amazonaws.com",
    "monitoring": "monitoring.amazonaws.com",
    "sns": "sns.amazonaws.com",
    "config": "config.amazonaws.com",
    "organizations": "organizations.amazonaws.com",
    "sso": "sso.amazonaws.com",
    "identitystore": "identitystore.amazonaws.com",
    "kms": "kms.amazonaws.com",
    "guardduty": "guardduty.amazonaws.com",
    "securityhub": "securityhub.amazonaws.com",
}

#: Services whose events CloudTrail records in us-east-1 whatever endpoint was called.
GLOBAL_SERVICES = {"iam", "organizations"}

#: Data events: CloudTrail records them only for trails that select data events, never in the
#: event history (LookupEvents), so the emulator does not record them at all.
DATA_EVENTS = {("sns", "Publish"), ("sns", "PublishBatch")}

#: Services whose JSON answers CloudTrail keeps as ``responseElements`` (camelCase); the older
#: JSON services' records here keep none, as before.
JSON_RESPONSE_SERVICES = {
    "config", "organizations", "sso", "identitystore", "kms", "guardduty", "securityhub",
}

#: Operation-name prefixes CloudTrail marks ``readOnly: true``.
READ_ONLY_PREFIXES = (
    "Get", "List", "Describe", "Lookup", "Generate", "Simulate", "Filter", "Search", "Check",
    "Test", "Validate",
)

#: Parameters and response fields CloudTrail leaves out of its records (real CreateLoginProfile
#: records keep ``userName`` and ``passwordResetRequired`` only; CreateAccessKey has no secret).
REDACTED_KEYS = {"password", "oldPassword", "newPassword", "privateKey", "secretAccessKey"}

#: requestParameters key → LookupEvents resource type, for the ``Resources`` list.
RESOURCE_TYPES = {
    "userName": "AWS::IAM::User",
    "roleName": "AWS::IAM::Role",
    "groupName": "AWS::IAM::Group",
    "policyArn": "AWS::IAM::Policy",
    "accessKeyId": "AWS::IAM::AccessKey",
    "instanceProfileName": "AWS::IAM::InstanceProfile",
    "name": "AWS::CloudTrail::Trail",
    "trailName": "AWS::CloudTrail::Trail",
    "logGroupName": "AWS::Logs::LogGroup",
    "topicArn": "AWS::SNS::Topic",
    "alarmNames": "AWS::CloudWatch::Alarm",
}


@dataclass
class Call:
    """What the gateway knows about one request before and after moto handled it."""

    service: str
    action: str
    region: str
    access_key: str
    params: dict[str, Any]
    source_ip: str
    user_agent: str
    status: int = 200
    response_body: bytes = b""
    request_id: str | None = None

    @property
    def read_only(self) -> bool:
        return self.action.startswith(READ_ONLY_PREFIXES)

    @property
    def account(self) -> str:
        return get_account_id_from(self.access_key) if self.access_key else DEFAULT_ACCOUNT_ID

    @property
    def record_region(self) -> str:
        return "us-east-1" if self.service in GLOBAL_SERVICES else self.region


def camel(name: str) -> str:
    """``UserName`` → ``userName``; ``SSHPublicKeyBody`` → ``sSHPublicKeyBody`` as CloudTrail does."""
    return name[:1].lower() + name[1:] if name else name


def query_params(body: str) -> dict[str, Any]:
    """Parses a query-protocol body (``Tags.member.1.Key=…``) into nested camelCase values."""
    root: dict[str, Any] = {}
    for raw_key, value in parse_qsl(body, keep_blank_values=True):
        if raw_key in ("Action", "Version"):
            continue
        parts = raw_key.split(".")
        _insert(root, [p for p in parts if p not in ("member", "entry")], value)
    return _lists_from_index_maps(root)


def _insert(node: dict[str, Any], parts: list[str], value: str) -> None:
    for part in parts[:-1]:
        node = node.setdefault(camel(part), {})
        if not isinstance(node, dict):  # a scalar and a structure under one name: keep the first
            return
    node[camel(parts[-1])] = value


def _lists_from_index_maps(node: Any) -> Any:
    """``{"1": a, "2": b}`` (from ``.member.N``) becomes ``[a, b]`` in index order."""
    if not isinstance(node, dict):
        return node
    converted = {k: _lists_from_index_maps(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items() if k not in REDACTED_KEYS}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _strip_ns(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xml_to_value(element: ET.Element) -> Any:
    children = list(element)
    if not children:
        return element.text or ""
    if all(_strip_ns(c.tag) in ("member", "entry") for c in children):
        return [_xml_to_value(c) for c in children]
    return {camel(_strip_ns(c.tag)): _xml_to_value(c) for c in children}


def xml_result(body: bytes, action: str) -> dict[str, Any] | None:
    """The ``<ActionResult>`` of a query-protocol response as camelCase data, or None."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    for element in root.iter():
        if _strip_ns(element.tag) == f"{action}Result":
            value = _xml_to_value(element)
            return value if isinstance(value, dict) and value else None
    return None


def json_result(body: bytes) -> dict[str, Any] | None:
    """A JSON answer as camelCase data (as CloudTrail records it), or None."""
    try:
        value = json.loads(body or b"null")
    except ValueError:
        return None
    return camel_keys(value) if isinstance(value, dict) and value else None


def camel_keys(value: Any) -> Any:
    """Every key camelCased, as CloudTrail writes JSON requests and answers (tags kept)."""
    if isinstance(value, dict):
        return {camel(k): (v if k.lower() == "tags" else camel_keys(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [camel_keys(v) for v in value]
    return value


def error_of(call: Call) -> tuple[str, str] | None:
    """(errorCode, errorMessage) of a failed call, from an XML or JSON error body."""
    if call.status < 400:
        return None
    body = call.response_body
    try:
        root = ET.fromstring(body)
        code = next((e.text for e in root.iter() if _strip_ns(e.tag) == "Code"), None)
        message = next((e.text for e in root.iter() if _strip_ns(e.tag) == "Message"), None)
        if code:
            return code, message or ""
    except ET.ParseError:
        pass
    try:
        data = json.loads(body or b"{}")
        code = str(data.get("__type", "")).rsplit("#", 1)[-1]
        if code:
            return code, str(data.get("message") or data.get("Message") or "")
    except (ValueError, AttributeError):
        pass
    return ("InternalError" if call.status >= 500 else "UnknownError"), f"HTTP {call.status}"


def user_identity(access_key: str, account: str) -> dict[str, Any]:
    """Who made the call, as CloudTrail's ``userIdentity`` describes the key's owner."""
    iam = iam_backends[account]["aws"]
    key = iam.access_keys.get(access_key) if access_key else None
    if key is not None and key.role_arn:
        return _assumed_role_identity(access_key, account, key.role_arn)
    if key is not None and key.user_name:
        try:
            user = iam.get_user(key.user_name)
            principal_id, arn = user.id, user.arn
        except Exception:  # the user was deleted since; CloudTrail still names the key
            principal_id, arn = access_key, f"arn:aws:iam::{account}:user/{key.user_name}"
        return {
            "type": "IAMUser",
            "principalId": principal_id,
            "arn": arn,
            "accountId": account,
            "accessKeyId": access_key,
            "userName": key.user_name,
        }
    return {
        "type": "Root",
        "principalId": account,
        "arn": f"arn:aws:iam::{account}:root",
        "accountId": account,
        "accessKeyId": access_key,
    }


def _assumed_role_identity(access_key: str, account: str, role_arn: str) -> dict[str, Any]:
    session = sts_backends[account]["aws"].get_assumed_role_from_access_key(access_key)
    role_name = role_arn.rsplit("/", 1)[-1]
    session_name = session.session_name if session else "session"
    try:
        role_id = iam_backends[account]["aws"].get_role_by_arn(role_arn).id
    except Exception:
        role_id = "AROA" + re.sub(r"[^A-Z0-9]", "", role_name.upper())[:17].ljust(17, "X")
    created = session.expiration if session else None
    return {
        "type": "AssumedRole",
        "principalId": f"{role_id}:{session_name}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}",
        "accountId": account,
        "accessKeyId": access_key,
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": role_id,
                "arn": role_arn,
                "accountId": account,
                "userName": role_name,
            },
            "attributes": {
                "creationDate": created.strftime("%Y-%m-%dT%H:%M:%SZ") if created else "",
                "mfaAuthenticated": "false",
            },
        },
    }


def build_record(call: Call, now: float) -> dict[str, Any]:
    """The CloudTrail record for one completed call."""
    account = call.account
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": user_identity(call.access_key, account),
        "eventTime": format_event_time(now),
        "eventSource": EVENT_SOURCES[call.service],
        "eventName": call.action,
        "awsRegion": call.record_region,
        "sourceIPAddress": call.source_ip,
        "userAgent": call.user_agent,
    }
    error = error_of(call)
    if error:
        record["errorCode"], record["errorMessage"] = error
    record["requestParameters"] = redact(call.params) or None
    response = None
    if not error and not call.read_only:
        if call.service in JSON_RESPONSE_SERVICES:
            response = json_result(call.response_body)
        else:
            response = xml_result(call.response_body, call.action)
    record["responseElements"] = redact(response) if response else None
    record.update(
        {
            "requestID": call.request_id or str(uuid.uuid4()),
            "eventID": str(uuid.uuid4()),
            "readOnly": call.read_only,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": account,
            "eventCategory": "Management",
        }
    )
    return record


def username_of(record: dict[str, Any]) -> str | None:
    """LookupEvents' ``Username``: the user name, the role session name, or "root"."""
    identity = record.get("userIdentity") or {}
    kind = identity.get("type")
    if kind == "Root":
        return "root"
    if kind == "AssumedRole":
        return str(identity.get("arn", "")).rsplit("/", 1)[-1] or None
    return identity.get("userName")


def resources_of(record: dict[str, Any]) -> list[dict[str, str]]:
    """LookupEvents' ``Resources``: the named things the request touched."""
    params = record.get("requestParameters")
    if not isinstance(params, dict):
        return []
    found = []
    for key, resource_type in RESOURCE_TYPES.items():
        value = params.get(key)
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, str) and item:
                found.append({"ResourceType": resource_type, "ResourceName": item})
    return found
