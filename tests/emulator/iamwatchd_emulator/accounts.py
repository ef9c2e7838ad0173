"""Several accounts: what AWS enforces on the way into a member account and moto does not.

- ``sts:AssumeRole`` needs the role to exist: moto hands out credentials for any ARN ("the role
  does not need to exist"), AWS answers ``AccessDenied`` ("... is not authorized to perform:
  sts:AssumeRole on resource: ..."). A trust policy that requires an ``sts:ExternalId``
  (``StringEquals``) is held to it; the rest of the trust policy is not evaluated (the tests
  that need a refusal use a missing role or a wrong external ID).
- Organizations' ``CreateAccount`` creates ``OrganizationAccountAccessRole`` in the new account,
  trusting the management account, as AWS does; moto creates no role.
"""

from __future__ import annotations

import json
from typing import Any

from moto.iam.models import iam_backends

#: The role Organizations creates in every account it creates.
ORGANIZATION_ROLE = "OrganizationAccountAccessRole"


def role_account(params: dict[str, Any]) -> str:
    """The account of the role an AssumeRole call names (its request parameters), or
    ``"invalid"`` for an ARN without one."""
    parts = str(params.get("roleArn", "")).split(":")
    return parts[4] if len(parts) >= 6 and parts[4] else "invalid"


def _role(arn: str) -> Any | None:
    parts = arn.split(":")
    if len(parts) < 6 or not parts[5].startswith("role/"):
        return None
    account = parts[4]
    try:
        return iam_backends[account]["aws"].get_role_by_arn(arn)
    except Exception:  # moto raises its own NoSuchEntity; any failure means "no such role"
        return None


def _required_external_ids(trust: str) -> list[str]:
    try:
        document = json.loads(trust)
    except (TypeError, ValueError):
        return []
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    if isinstance(statements, dict):
        statements = [statements]
    wanted: list[str] = []
    for statement in statements:
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        condition = (statement.get("Condition") or {}).get("StringEquals") or {}
        for key, value in condition.items():
            if key.lower() == "sts:externalid":
                wanted.extend(value if isinstance(value, list) else [value])
    return wanted


def assume_role_refusal(params: dict[str, Any], caller_arn: str) -> str | None:
    """Why AWS would refuse this AssumeRole (its request parameters, camelCase as CloudTrail
    records them), in STS's words, or ``None``."""
    arn = str(params.get("roleArn", ""))
    denied = f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {arn}"
    role = _role(arn)
    if role is None:
        return denied
    required = _required_external_ids(role.assume_role_policy_document)
    if required and params.get("externalId") not in required:
        return denied
    return None


def create_organization_role(new_account: str, management_account: str) -> None:
    """The role Organizations puts in an account it creates (idempotent)."""
    backend = iam_backends[new_account]["aws"]
    try:
        backend.get_role(ORGANIZATION_ROLE)
        return
    except Exception:  # not there yet: create it
        pass
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{management_account}:root"},
        "Action": "sts:AssumeRole"}]})
    backend.create_role(ORGANIZATION_ROLE, trust, "/", None, "", [], None)
    backend.attach_role_policy("arn:aws:iam::aws:policy/AdministratorAccess", ORGANIZATION_ROLE)
