"""Fixes to how moto creates and updates the resources of one template
(``moto.cloudformation.parsing``).

moto's ResourceMap creates resources lazily and recursively (a Ref creates its target first).
The wrappers here, installed by ``install()``, make that honour DependsOn on every path, name the
resource that failed (for the stack's events and rollback), honour Conditions on update and see
parameters used through Fn::Sub.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.exceptions import (
    CloudFormationError,
    UnformattedGetAttTemplateException,
)
from moto.iam import models as iam_models
from moto.logs.models import logs_backends

from .encryption import set_log_group_key
from .errors import _FAILED_RESOURCE, _failed_resource, _FailedResource
from .properties import _as_list, _optional_int


@contextlib.contextmanager
def _naming_failures(
    logical_id: str, resource_json: dict[str, Any], operation: str
) -> Iterator[None]:
    """Attach the failing resource to the exception, so the stack can report it.

    Resources are created recursively (a Ref creates its target first), so the innermost
    resource, the first to attach itself, is the one that failed. Template errors (moto's
    CloudFormation errors) are left alone: like in AWS they are errors of the API call.
    """
    try:
        yield
    except (CloudFormationError, UnformattedGetAttTemplateException):
        raise
    except Exception as exc:
        if _failed_resource(exc) is None:
            setattr(
                exc, _FAILED_RESOURCE, _FailedResource(logical_id, resource_json["Type"], operation)
            )
        raise


def _creating_dependencies_first_and_naming_failures(
    parse_and_create_resource: Callable[..., Any],
) -> Callable[..., Any]:
    """moto's per-resource creation, honouring DependsOn on every path and naming failures.

    moto orders by DependsOn only in CreateStack; an executed change set (how iamwatchd deploys)
    creates new resources in template order, so a trail could be created before the bucket
    policy it depends on.
    """

    @functools.wraps(parse_and_create_resource)
    def wrapper(
        logical_id: str,
        resource_json: dict[str, Any],
        resources_map: Any,
        account_id: str,
        region_name: str,
    ) -> Any:
        with _naming_failures(logical_id, resource_json, "CREATE"):
            for dependency in _as_list(resource_json.get("DependsOn")):
                if dependency in resources_map.resources:
                    resources_map[dependency]  # creates it unless it exists
            return parse_and_create_resource(
                logical_id, resource_json, resources_map, account_id, region_name
            )

    return wrapper


def _is_active(resources_map: Any, resource_json: dict[str, Any]) -> bool:
    """Whether a resource's Condition (if any) holds for the map's current parameters."""
    condition = resource_json.get("Condition")
    return not condition or bool(resources_map.lazy_condition_map[condition])


def _apply_log_group_update(log_group: Any, resource_json: dict[str, Any], resources_map: Any) -> None:
    """moto's AWS::Logs::LogGroup has no in-place update; its retention and its KMS key are the
    properties a stack update changes, and PutRetentionPolicy and AssociateKmsKey /
    DisassociateKmsKey are how CloudFormation applies them."""
    properties = parsing.clean_json(resource_json.get("Properties") or {}, resources_map)
    set_log_group_key(log_group, properties.get("KmsKeyId"))
    days = _optional_int(properties.get("RetentionInDays"))
    backend = logs_backends[log_group.account_id][log_group.region]
    if days is None:
        backend.delete_retention_policy(log_group.name)
    else:
        backend.put_retention_policy(log_group.name, days)


def _apply_role_update(role: Any, resource_json: dict[str, Any], resources_map: Any) -> None:
    """moto's AWS::IAM::Role update changes the description only; its trust policy and inline
    policies are what an update changes too, in place (UpdateAssumeRolePolicy, PutRolePolicy /
    DeleteRolePolicy), as CloudFormation applies them."""
    properties = parsing.clean_json(resource_json.get("Properties") or {}, resources_map)
    backend = iam_models.iam_backends[role.account_id][role.arn.split(":")[1]]
    trust = properties.get("AssumeRolePolicyDocument")
    if trust is not None:
        backend.update_assume_role_policy(
            role.name, trust if isinstance(trust, str) else json.dumps(trust))
    wanted = {p["PolicyName"]: p["PolicyDocument"] for p in properties.get("Policies") or []}
    for name in set(role.policies) - set(wanted):
        backend.delete_role_policy(role.name, name)
    for name, document in wanted.items():
        backend.put_role_policy(
            role.name, name, document if isinstance(document, str) else json.dumps(document))


def _naming_update_failures(parse_and_update_resource: Callable[..., Any]) -> Callable[..., Any]:
    """moto's per-resource update, naming failures and honouring Conditions.

    moto decides what an update touches without looking at Conditions: a resource left out by a
    false condition but referencing a changed parameter was "updated" from nothing (an internal
    error), and a type without an in-place update (AWS::Logs::LogGroup) became None, breaking
    every later Ref/GetAtt to it. Here a left-out resource stays left out (the condition
    reconciliation after the update creates or deletes it), a resource that never existed is
    created, a type moto cannot update keeps its resource (LogGroup retention is applied), and a
    role's trust and inline policies are updated (moto changes its description only).
    """

    @functools.wraps(parse_and_update_resource)
    def wrapper(
        logical_id: str,
        resource_json: dict[str, Any],
        resources_map: Any,
        account_id: str,
        region_name: str,
    ) -> Any:
        with _naming_failures(logical_id, resource_json, "UPDATE"):
            existing = resources_map._parsed_resources.get(logical_id)
            if not _is_active(resources_map, resource_json):
                return existing
            if existing is None:
                resources_map._parsed_resources.pop(logical_id, None)
                return parsing.parse_and_create_resource(
                    logical_id, resource_json, resources_map, account_id, region_name
                )
            updated = parse_and_update_resource(
                logical_id, resource_json, resources_map, account_id, region_name
            )
            if resource_json.get("Type") == "AWS::IAM::Role":
                _apply_role_update(updated or existing, resource_json, resources_map)
            if updated is None:
                if resource_json.get("Type") == "AWS::Logs::LogGroup":
                    _apply_log_group_update(existing, resource_json, resources_map)
                return existing
            return updated

    return wrapper


def _reconciling_conditions(update: Callable[..., None]) -> Callable[..., None]:
    """ResourceMap.update, then what CloudFormation does with Conditions on an update: a
    resource whose condition became true is created, one whose condition became false is
    deleted, and resources gone from the template are forgotten (moto deletes them but kept
    them referenceable)."""

    @functools.wraps(update)
    def wrapper(self: Any, template: dict[str, Any], parameters: Any = None) -> None:
        old_ids = set(self._resource_json_map)
        update(self, template, parameters)
        new_resources = template.get("Resources") or {}
        for logical_id in old_ids - set(new_resources):
            self._parsed_resources.pop(logical_id, None)
        to_delete = []
        for logical_id, resource_json in new_resources.items():
            existing = self._parsed_resources.get(logical_id)
            if _is_active(self, resource_json):
                if existing is None:
                    self._parsed_resources.pop(logical_id, None)
                    self[logical_id]  # creates it (with what it references)
            elif existing is not None:
                to_delete.append((logical_id, resource_json, existing))
        # Dependants first is unknown here: retry what fails, as moto's own removal does.
        for _attempt in range(5):
            remaining = []
            for logical_id, resource_json, existing in to_delete:
                try:
                    self._delete_resource(existing, resource_json)
                except Exception:  # a dependency still exists; next pass
                    remaining.append((logical_id, resource_json, existing))
                else:
                    self._parsed_resources[logical_id] = None
            to_delete = remaining
            if not to_delete:
                break
        for logical_id, resource_json, existing in to_delete:
            self._delete_resource(existing, resource_json)  # raises the real error

    return wrapper


_SUB_VARIABLE = re.compile(r"\$\{(?!!)([^}.]+)[^}]*\}")


def _counting_sub_variables_as_references(
    get_references_from_template: Callable[[Any], list[str]],
) -> Callable[[Any], list[str]]:
    """Let a stack update see parameters used through Fn::Sub.

    On update moto updates a resource whose template text is unchanged only if it references a
    changed parameter, and it only looks for ``Ref``: a resource using
    ``!Sub "...${Param}..."`` kept its old value. moto's function recurses through its module-
    level name, i.e. through this wrapper, so each node only needs its own Fn::Sub looked at.
    """

    @functools.wraps(get_references_from_template)
    def wrapper(template: Any) -> list[str]:
        references = get_references_from_template(template)
        if isinstance(template, dict) and "Fn::Sub" in template:
            sub = template["Fn::Sub"]
            text = sub[0] if isinstance(sub, list) and sub else sub
            if isinstance(text, str):
                references.extend(_SUB_VARIABLE.findall(text))
        return references

    return wrapper


def _storing_policy_documents_as_json(put_policy: Callable[..., None]) -> Callable[..., None]:
    """A template's inline policy (``Policies`` of a role, user or group) reaches moto's
    ``put_policy`` as a parsed object; IAM keeps every policy document as JSON text, and moto's
    own listings (GetAccountAuthorizationDetails URL-encodes each document) fail on anything
    else, so the document is stored as the JSON text IAM would return."""

    @functools.wraps(put_policy)
    def wrapper(self: Any, policy_name: str, policy_json: Any) -> None:
        if not isinstance(policy_json, str):
            policy_json = json.dumps(policy_json)
        put_policy(self, policy_name, policy_json)

    return wrapper

