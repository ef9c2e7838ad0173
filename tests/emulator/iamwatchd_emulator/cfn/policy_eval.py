"""A deliberately small policy evaluator, used where AWS checks a policy before it accepts a
configuration (CloudTrail and its bucket policy / role trust policy).

It honours Effect, Action, Resource and Service/"*" principals with IAM wildcards; Conditions are
taken as satisfied, except ``aws:SecureTransport`` = false: AWS services call each other over TLS,
so the usual "deny plain HTTP" statement never denies them. That catches the mistakes that matter here (no statement for CloudTrail,
wrong bucket or prefix, a policy that does not exist yet) without pretending to be IAM.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from .properties import _as_list, _json_object


def _wildcard_match(patterns: Any, value: str, case_sensitive: bool) -> bool:
    for pattern in _as_list(patterns):
        pattern = str(pattern)
        if case_sensitive:
            if fnmatch.fnmatchcase(value, pattern):
                return True
        elif fnmatch.fnmatchcase(value.lower(), pattern.lower()):
            return True
    return False


def _principal_includes(principal: Any, service: str) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return service in _as_list(principal.get("Service")) or "*" in _as_list(
            principal.get("AWS")
        )
    return False


def _denies_plain_http_only(statement: dict[str, Any]) -> bool:
    """A statement that applies only to requests without TLS (``aws:SecureTransport`` false)."""
    condition = statement.get("Condition") or {}
    secure = (condition.get("Bool") or {}).get("aws:SecureTransport")
    return str(secure).lower() == "false"


def _policy_allows(
    document: Any, action: str, resource: str | None = None, service: str | None = None
) -> bool:
    """Whether ``document`` allows ``action`` (on ``resource``; to service principal ``service``)
    under this module's simplifications."""
    allowed = False
    for statement in _as_list((_json_object(document) or {}).get("Statement")):
        if not _wildcard_match(statement.get("Action"), action, case_sensitive=False):
            continue
        if resource is not None and not _wildcard_match(
            statement.get("Resource"), resource, case_sensitive=True
        ):
            continue
        if service is not None and not _principal_includes(statement.get("Principal"), service):
            continue
        if statement.get("Effect") == "Deny":
            if _denies_plain_http_only(statement):
                continue  # a service's own call is made over TLS
            return False
        if statement.get("Effect") == "Allow":
            allowed = True
    return allowed
