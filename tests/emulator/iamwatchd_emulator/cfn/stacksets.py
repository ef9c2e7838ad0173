"""Service-managed StackSets as ``iamwatchd deploy --member-roles`` uses them, where moto falls
short.

moto creates a service-managed stack set's instances (and their resources, in each member
account) for the organizational units named in ``CreateStackInstances``, but:

- drops ``AutoDeployment``: an account created in, or moved into, a targeted OU later gets
  nothing. AWS deploys the stack set's instances to it (``AutoDeployment.Enabled``), which is
  how a member role reaches every new account. This module keeps the setting (shown by
  ``DescribeStackSet``, on create and update), the OUs and regions each stack set targets, and
  deploys on ``CreateAccount`` and ``MoveAccount``;
- reaches only the OUs named and their direct children, and the management account too; AWS
  deploys to every account below a targeted OU at any depth and never to the management
  account ("StackSets doesn't deploy stack instances to the organization's management
  account");
- lets a failing instance's error escape from the call; AWS runs the operation, marks the
  account's result ``FAILED`` with the resource's reason (``ListStackSetOperationResults``) and
  the operation ``FAILED`` (failure tolerance 0) — this module does the same;
- ignores ``DeploymentTargets`` in ``DeleteStackInstances`` (nothing is deleted), and lists no
  ``OrganizationalUnitId`` for an instance;
- applies ``UpdateStackSet``'s template and parameters to no existing service-managed
  instance; AWS updates every one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from moto.cloudformation.models import (
    CloudFormationBackend, StackInstance, StackInstances, StackSet, cloudformation_backends,
)
from moto.cloudformation.responses import CloudFormationResponse, StackSetOperationDTO
from moto.core.responses import ActionResult
from moto.moto_api._internal import mock_random
from moto.organizations.models import OrganizationsBackend

from .errors import _aws_error, _failed_resource, _failure_reason


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _remembering_auto_deployment(create_stack_set: Callable[..., Any]) -> Callable[..., Any]:
    """CreateStackSet and UpdateStackSet: the ``AutoDeployment`` setting, kept."""
    @functools.wraps(create_stack_set)
    def wrapper(self: CloudFormationResponse) -> Any:
        result = create_stack_set(self)
        enabled = self._get_param("AutoDeployment.Enabled")
        retain = self._get_param("AutoDeployment.RetainStacksOnAccountRemoval")
        if enabled is not None:
            stackset = self.cloudformation_backend.describe_stack_set(
                self._get_param("StackSetName"))
            stackset.auto_deployment = {
                "Enabled": _truthy(enabled),
                "RetainStacksOnAccountRemoval": _truthy(retain),
            }
        return result

    return wrapper


def _remembering_targets(create_stack_instances: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(create_stack_instances)
    def wrapper(self: CloudFormationBackend, stackset_name: str, accounts: list[str],
                regions: list[str], parameters: Any, deployment_targets: Any) -> Any:
        result = create_stack_instances(self, stackset_name, accounts, regions, parameters,
                                        deployment_targets)
        stackset = self.describe_stack_set(stackset_name)
        targets = getattr(stackset, "targets", {"ous": set(), "regions": set()})
        targets["ous"] |= set((deployment_targets or {}).get("OrganizationalUnitIds", []))
        targets["regions"] |= set(regions)
        stackset.targets = targets
        return result

    return wrapper


def _ancestors(organizations: OrganizationsBackend, parent: str) -> list[str]:
    """``parent`` and the OUs above it, up to the root."""
    chain = [parent]
    by_id = {ou.id: ou for ou in organizations.ou}
    while (ou := by_id.get(chain[-1])) is not None and getattr(ou, "parent_id", None):
        chain.append(ou.parent_id)
    return chain


def auto_deploy(organizations: OrganizationsBackend, account_id: str) -> None:
    """Deploys every auto-deploying service-managed stack set of the management account whose
    targeted OUs hold ``account_id`` (directly or through a parent OU)."""
    account = organizations.get_account_by_id(account_id)
    chain = _ancestors(organizations, account.parent_id)
    management = organizations.account_id
    for backend in list(dict.values(dict.get(cloudformation_backends, management) or {})):
        for stackset in list(backend.stacksets.values()):
            if stackset.permission_model != "SERVICE_MANAGED" or stackset.status != "ACTIVE":
                continue
            if not getattr(stackset, "auto_deployment", {}).get("Enabled"):
                continue
            targets = getattr(stackset, "targets", None)
            if not targets:
                continue
            ou = next((ou for ou in chain if ou in targets["ous"]), None)
            if ou is None:
                continue
            # Every account under the OU that lacks an instance (this one), with the stack
            # set's own parameters, as AWS deploys a new account's instance.
            parameters = [{"ParameterKey": k, "ParameterValue": v}
                          for k, v in (stackset.parameters or {}).items()]
            stackset.instances.create_instances(
                accounts=[], regions=sorted(targets["regions"]), parameters=parameters,
                deployment_targets={"OrganizationalUnitIds": [ou]},
                permission_model="SERVICE_MANAGED")


def _deploying_to_created_accounts(create_account: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(create_account)
    def wrapper(self: OrganizationsBackend, **kwargs: Any) -> Any:
        status = create_account(self, **kwargs)
        auto_deploy(self, status["CreateAccountStatus"]["AccountId"])
        return status

    return wrapper


def _deploying_to_moved_accounts(move_account: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(move_account)
    def wrapper(self: OrganizationsBackend, **kwargs: Any) -> Any:
        result = move_account(self, **kwargs)
        auto_deploy(self, kwargs["AccountId"])
        return result

    return wrapper


def _failure(error: BaseException) -> str:
    """The reason an instance failed, as StackSets reports it: the stack's failed resource."""
    failed = _failed_resource(error)
    if failed is None:
        aws = _aws_error(error)
        return aws[1] if aws else str(error)
    return (f"ResourceLogicalId:{failed.logical_id}, ResourceType:{failed.resource_type}, "
            f"ResourceStatusReason:{_failure_reason(failed.resource_type, error)}")


def _creating_instances_at_any_depth(_moto: Callable[..., Any]) -> Callable[..., Any]:
    """StackInstances.create_instances: every account below a targeted OU (at any depth) but
    the management account; each account's result kept for the operation (``last_results``),
    a failing one ``FAILED`` with its reason instead of an error escaping the call."""

    def create_instances(self: StackInstances, accounts: list[str], regions: list[str],
                         parameters: Any, deployment_targets: dict[str, Any],
                         permission_model: str) -> list[dict[str, Any]]:
        organizations = self.org_backend
        requested = list(deployment_targets.get("OrganizationalUnitIds", []))
        management = organizations.org.master_account_id if organizations.org else None
        targets: list[tuple[str, str, str | None]] = [
            (region, account, None) for region in regions for account in accounts]
        for region in regions:
            for account in organizations.accounts:
                if account.id == management:
                    continue
                chain = _ancestors(organizations, account.parent_id)
                ou = next((ou for ou in chain if ou in requested), None)
                if ou is not None:
                    targets.append((region, account.id, ou))
        created: list[StackInstance] = []
        results: list[dict[str, Any]] = []
        for region, account, ou in targets:
            if self.get_instance(account, region) is not None:
                continue
            result = {"Account": account, "Region": region, "Status": "SUCCEEDED"}
            if ou:
                result["OrganizationalUnitId"] = ou
            try:
                instance = StackInstance(
                    account_id=account, region_name=region, stackset_id=self.stackset_id,
                    stack_name=self.stack_name, name=self.stackset_name,
                    template=self.template, parameters=parameters,
                    permission_model=permission_model)
            except Exception as error:  # a resource failed: the account's result says why
                result.update(Status="FAILED", StatusReason=_failure(error))
                results.append(result)
                continue
            instance.organizational_unit_id = ou
            created.append(instance)
            results.append(result)
        self.stack_instances += created
        self.last_results = results
        return [i.to_dict() for i in created]

    return create_instances


def _naming_the_ou(to_dict: Callable[..., Any]) -> Callable[..., Any]:
    """StackInstance.to_dict: the OU the instance was deployed for, as AWS lists it."""
    @functools.wraps(to_dict)
    def wrapper(self: StackInstance) -> dict[str, Any]:
        summary = to_dict(self)
        ou = getattr(self, "organizational_unit_id", None)
        if ou:
            summary["OrganizationalUnitId"] = ou
        return summary

    return wrapper


def _settle(stackset: StackSet, operation_id: str, results: list[dict[str, Any]]) -> None:
    """The operation's per-account results, and FAILED (failure tolerance 0) when any failed."""
    operation = stackset.get_operation(operation_id)
    operation["Results"] = results
    failed = [r for r in results if r["Status"] == "FAILED"]
    if failed:
        operation["Status"] = "FAILED"
        operation["StatusReason"] = (
            f"The operation failed in {len(failed)} of {len(results)} account(s); see its "
            "results (ListStackSetOperationResults)")


def _settling_creations(create_stack_instances: Callable[..., Any]) -> Callable[..., Any]:
    """StackSet.create_stack_instances: the operation ends FAILED when an account failed."""
    @functools.wraps(create_stack_instances)
    def wrapper(self: StackSet, *args: Any, **kwargs: Any) -> str:
        self.instances.last_results = []
        operation_id = create_stack_instances(self, *args, **kwargs)
        _settle(self, operation_id, list(self.instances.last_results))
        return operation_id

    return wrapper


def _parameters_dict(parameters: Any) -> dict[str, str]:
    if isinstance(parameters, dict):
        return dict(parameters)
    return {p["ParameterKey"]: p["ParameterValue"] for p in parameters or []}


def _updating_service_managed_instances(update: Callable[..., Any]) -> Callable[..., Any]:
    """StackSet.update: a service-managed stack set's new template and parameters reach every
    instance's stack, as AWS updates them; an operation ID is made when none is given."""
    @functools.wraps(update)
    def wrapper(self: StackSet, **kwargs: Any) -> dict[str, Any]:
        kwargs["operation_id"] = kwargs.get("operation_id") or str(mock_random.uuid4())
        operation = update(self, **kwargs)
        if self.permission_model != "SERVICE_MANAGED":
            return operation
        self.instances.template = self.template
        self.instances.parameters = self.parameters
        results = []
        for instance in list(self.stack_instances):
            result = {"Account": instance.account_id, "Region": instance.region_name,
                      "Status": "SUCCEEDED"}
            ou = getattr(instance, "organizational_unit_id", None)
            if ou:
                result["OrganizationalUnitId"] = ou
            try:
                instance.stack.update(self.template, parameters=_parameters_dict(self.parameters))
                instance.template = self.template
            except Exception as error:  # the account's result says why
                result.update(Status="FAILED", StatusReason=_failure(error))
            results.append(result)
        _settle(self, operation["OperationId"], results)
        return operation

    return wrapper


def _deleting_by_deployment_targets(_moto: Callable[..., Any]) -> Callable[..., Any]:
    """CloudFormationResponse.delete_stack_instances: ``DeploymentTargets`` (OUs) name the
    instances deployed for those OUs or to accounts below them."""

    def delete_stack_instances(self: CloudFormationResponse) -> ActionResult:
        name = self._get_param("StackSetName")
        accounts = list(self._get_param("Accounts", []))
        regions = self._get_param("Regions", [])
        ous = (self._get_params().get("DeploymentTargets") or {}).get(
            "OrganizationalUnitIds") or []
        stackset = self.cloudformation_backend.describe_stack_set(name)
        if ous:
            organizations = stackset.instances.org_backend
            for instance in stackset.stack_instances:
                chain = [getattr(instance, "organizational_unit_id", None)]
                try:
                    account = organizations.get_account_by_id(instance.account_id)
                    chain += _ancestors(organizations, account.parent_id)
                except Exception:  # the account left the organization: its recorded OU counts
                    pass
                if any(ou in ous for ou in chain if ou):
                    accounts.append(instance.account_id)
        results = [{"Account": i.account_id, "Region": i.region_name, "Status": "SUCCEEDED"}
                   for i in stackset.stack_instances
                   if i.account_id in accounts and i.region_name in regions]
        self.cloudformation_backend.delete_stack_instances(name, sorted(set(accounts)), regions)
        operation_id = stackset.operations[-1]["OperationId"]
        _settle(stackset, operation_id, results)
        return ActionResult({"OperationId": operation_id})

    return delete_stack_instances


def _listing_real_results(_moto: Callable[..., Any]) -> Callable[..., Any]:
    """CloudFormationResponse.list_stack_set_operation_results: each account's own result."""

    def list_stack_set_operation_results(self: CloudFormationResponse) -> ActionResult:
        operation = self.cloudformation_backend.list_stack_set_operation_results(
            self._get_param("StackSetName"), self._get_param("OperationId"))
        summaries = operation.get("Results")
        if summaries is None:
            summaries = [{"Account": account, "Region": region, "Status": operation["Status"]}
                         for instance in operation["Instances"]
                         for account, region in instance.items()]
        return ActionResult({"Summaries": summaries})

    return list_stack_set_operation_results


def _with_status_reason(init: Callable[..., Any]) -> Callable[..., Any]:
    """DescribeStackSetOperation: the operation's StatusReason."""
    @functools.wraps(init)
    def wrapper(self: StackSetOperationDTO, operation: dict[str, Any], stack_set: StackSet) -> None:
        init(self, operation, stack_set)
        self.status_reason = operation.get("StatusReason")

    return wrapper


def install(patch: Callable[[Any, str, Callable[[Any], Any]], None]) -> None:
    """Installs the patches with the package's once-only ``patch``."""
    patch(CloudFormationResponse, "create_stack_set", _remembering_auto_deployment)
    patch(CloudFormationResponse, "update_stack_set", _remembering_auto_deployment)
    patch(StackInstances, "create_instances", _creating_instances_at_any_depth)
    patch(StackInstance, "to_dict", _naming_the_ou)
    patch(StackSet, "create_stack_instances", _settling_creations)
    patch(StackSet, "update", _updating_service_managed_instances)
    patch(CloudFormationResponse, "delete_stack_instances", _deleting_by_deployment_targets)
    patch(CloudFormationResponse, "list_stack_set_operation_results", _listing_real_results)
    patch(StackSetOperationDTO, "__init__", _with_status_reason)
    patch(CloudFormationBackend, "create_stack_instances", _remembering_targets)
    patch(OrganizationsBackend, "create_account", _deploying_to_created_accounts)
    patch(OrganizationsBackend, "move_account", _deploying_to_moved_accounts)
    # DescribeStackSet reads the attribute by its shape name.
    if not hasattr(StackSet, "auto_deployment"):
        StackSet.auto_deployment = None
