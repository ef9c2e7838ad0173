"""IAM Access Analyzer's two policy checks the daemon asks for a second opinion: moto has none.

``POST /policy/check-no-new-access`` (CheckNoNewAccess) and ``POST /policy/check-access-not-granted``
(CheckAccessNotGranted), REST-JSON, answered ``{"result": "PASS"|"FAIL", "message", "reasons"}`` as
AWS documents them. AWS reasons over the policies with an automated prover; this stand-in is
coarse on purpose and says so: each Allow statement becomes (action glob, resource glob,
principal) grants, and a grant of the new policy is "new access" unless a grant of the existing
one covers it glob for glob. ``NotAction``/``NotResource`` count as covering everything they do
not exclude. Enough to tell the daemon's tests a PASS from a FAIL; never the daemon's own verdict.

Every call is counted (``access_analyzer_calls``): AWS bills them, and the daemon must make none
unless ``analysis.access_analyzer`` is on.
"""

from __future__ import annotations

import json
import uuid
from fnmatch import fnmatchcase
from typing import Any, Callable, Iterable

from .state import EmulatorState

StartResponse = Callable[..., Any]

PATHS = {
    "/policy/check-no-new-access": "CheckNoNewAccess",
    "/policy/check-access-not-granted": "CheckAccessNotGranted",
}

#: At most one access entry of at most 100 actions (the API's limits).
MAX_ACTIONS = 100


class Invalid(Exception):
    """A request AWS would answer with ValidationException."""


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise Invalid(f"expected a string or a list of strings, got {json.dumps(value)[:80]}")


def _principals(value: Any) -> list[str]:
    if value is None:
        return ["*"]
    if value == "*":
        return ["*"]
    if isinstance(value, dict):
        return [f"{kind}:{p}" for kind, v in sorted(value.items()) for p in _listed(v)]
    raise Invalid("Principal must be \"*\" or an object")


def _grants(text: str) -> list[tuple[int, tuple[bool, str], tuple[bool, str], str]]:
    """(statement index, (negated, action glob), (negated, resource glob), principal)."""
    try:
        document = json.loads(text)
    except (TypeError, ValueError) as error:
        raise Invalid(f"the policy document is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise Invalid("the policy document must be a JSON object")
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list):
        raise Invalid("Statement must be an object or a list")
    grants = []
    for index, statement in enumerate(statements):
        if not isinstance(statement, dict):
            raise Invalid(f"statement {index} is not an object")
        if statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement:
            actions = [(True, ",".join(sorted(a.lower() for a in _listed(statement["NotAction"]))))]
        else:
            actions = [(False, a.lower()) for a in _listed(statement.get("Action"))]
        if "NotResource" in statement:
            resources = [(True, ",".join(sorted(_listed(statement["NotResource"]))))]
        else:
            resources = [(False, r) for r in _listed(statement.get("Resource", "*"))]
        principals = _principals(statement.get("Principal")) if "Principal" in statement else ["*"]
        for action in actions:
            for resource in resources:
                for principal in principals:
                    grants.append((index, action, resource, principal))
    return grants


def _covers(existing: tuple[bool, str], new: tuple[bool, str]) -> bool:
    negated, pattern = existing
    new_negated, value = new
    if negated:
        # "Everything but these": covers a plain value none of the exclusions matches.
        return not new_negated and not any(fnmatchcase(value, p) for p in pattern.split(","))
    if new_negated:
        return pattern == "*"
    return fnmatchcase(value, pattern)


def check_no_new_access(body: dict[str, Any]) -> dict[str, Any]:
    existing = _grants(_required(body, "existingPolicyDocument"))
    new = _grants(_required(body, "newPolicyDocument"))
    _policy_type(body)
    reasons = []
    for index, action, resource, principal in new:
        covered = any(
            _covers(e_action, action) and _covers(e_resource, resource)
            and (e_principal == "*" or e_principal == principal)
            for _, e_action, e_resource, e_principal in existing
        )
        if not covered:
            reasons.append({
                "description": f"New access in the statement with index: {index}.",
                "statementIndex": index,
            })
    unique = list({r["statementIndex"]: r for r in reasons}.values())
    if unique:
        return {"result": "FAIL", "message": "The modified permissions grant new access compared to your existing policy.", "reasons": unique}
    return {"result": "PASS", "message": "The modified permissions do not grant new access compared to your existing policy.", "reasons": []}


def check_access_not_granted(body: dict[str, Any]) -> dict[str, Any]:
    grants = _grants(_required(body, "policyDocument"))
    _policy_type(body)
    access = body.get("access")
    if not isinstance(access, list) or len(access) != 1 or not isinstance(access[0], dict):
        raise Invalid("access must hold exactly one entry")
    actions = [a.lower() for a in _listed(access[0].get("actions"))]
    if not actions or len(actions) > MAX_ACTIONS:
        raise Invalid(f"access.actions must hold 1 to {MAX_ACTIONS} actions")
    reasons = []
    for index, action, _resource, _principal in grants:
        if any(_covers(action, (False, wanted)) for wanted in actions):
            reasons.append({
                "description": f"One of the listed actions can be performed by the statement with index: {index}.",
                "statementIndex": index,
            })
    unique = list({r["statementIndex"]: r for r in reasons}.values())
    if unique:
        return {"result": "FAIL", "message": "The policy document grants access to perform one or more of the listed actions.", "reasons": unique}
    return {"result": "PASS", "message": "The policy document does not grant access to perform the listed actions.", "reasons": []}


def _required(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise Invalid(f"{key} is required")
    return value


def _policy_type(body: dict[str, Any]) -> None:
    if body.get("policyType") not in ("IDENTITY_POLICY", "RESOURCE_POLICY"):
        raise Invalid("policyType must be IDENTITY_POLICY or RESOURCE_POLICY")


OPERATIONS = {"CheckNoNewAccess": check_no_new_access, "CheckAccessNotGranted": check_access_not_granted}


def handle(state: EmulatorState, environ: dict[str, Any], body: bytes,
           start_response: StartResponse) -> Iterable[bytes]:
    """Answers one Access Analyzer request."""
    operation = PATHS.get(environ.get("PATH_INFO", ""))
    headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", str(uuid.uuid4()))]
    if operation is None or environ.get("REQUEST_METHOD") != "POST":
        start_response("404 Not Found", headers + [("x-amzn-ErrorType", "ResourceNotFoundException")])
        return [json.dumps({"message": "this emulator answers only the two policy checks"}).encode()]
    with state.lock:
        state.counters["access_analyzer_calls"] += 1
    try:
        request = json.loads(body or b"{}")
        if not isinstance(request, dict):
            raise Invalid("the request body must be a JSON object")
        answer = OPERATIONS[operation](request)
    except (Invalid, ValueError) as error:
        start_response("400 Bad Request", headers + [("x-amzn-ErrorType", "ValidationException")])
        return [json.dumps({"message": str(error)}).encode()]
    start_response("200 OK", headers)
    return [json.dumps(answer).encode()]
