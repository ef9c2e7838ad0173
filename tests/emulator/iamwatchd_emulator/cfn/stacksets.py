"""Service-managed StackSets' automatic deployment, which moto leaves out.

moto creates a service-managed stack set's instances (and their resources, in each member
account) for the organizational units named in ``CreateStackInstances``, but drops
``AutoDeployment``: an account created in, or moved into, a targeted OU later gets nothing. AWS
deploys the stack set's instances to it (``AutoDeployment.Enabled``), which is how a member role
reaches every new account. This module keeps the setting (shown by ``DescribeStackSet``), the
OUs and regions each stack set targets, and deploys on ``CreateAccount`` and ``MoveAccount``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from moto.cloudformation.models import CloudFormationBackend, StackSet, cloudformation_backends
from moto.cloudformation.responses import CloudFormationResponse
from moto.organizations.models import OrganizationsBackend


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _remembering_auto_deployment(create_stack_set: Callable[..., Any]) -> Callable[..., Any]:
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
            # moto deploys to the accounts directly in the OU it is given: the account's own;
            # with the stack set's own parameters, as AWS deploys a new account's instance.
            parameters = [{"ParameterKey": k, "ParameterValue": v}
                          for k, v in (stackset.parameters or {}).items()]
            stackset.instances.create_instances(
                accounts=[], regions=sorted(targets["regions"]), parameters=parameters,
                deployment_targets={"OrganizationalUnitIds": [account.parent_id]},
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


def install(patch: Callable[[Any, str, Callable[[Any], Any]], None]) -> None:
    """Installs the patches with the package's once-only ``patch``."""
    patch(CloudFormationResponse, "create_stack_set", _remembering_auto_deployment)
    patch(CloudFormationBackend, "create_stack_instances", _remembering_targets)
    patch(OrganizationsBackend, "create_account", _deploying_to_created_accounts)
    patch(OrganizationsBackend, "move_account", _deploying_to_moved_accounts)
    # DescribeStackSet reads the attribute by its shape name.
    if not hasattr(StackSet, "auto_deployment"):
        StackSet.auto_deployment = None
