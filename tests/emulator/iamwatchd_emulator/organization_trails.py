"""Organization trails: what CloudTrail requires before a trail becomes one, which moto does not
check (it makes any trail an organization trail on request).

``CreateTrail`` / ``UpdateTrail`` with ``IsOrganizationTrail`` true (through the API or a stack)
are refused, in this order and with CloudTrail's error codes, when the caller's account

- is in no organization: ``OrganizationsNotInUseException``;
- is a member, not the organization's management account: ``NotOrganizationMasterAccountException``;
- belongs to an organization without all features: ``OrganizationNotInAllFeaturesModeException``;
- has not enabled CloudTrail's trusted access (``cloudtrail.amazonaws.com`` in
  ``ListAWSServiceAccessForOrganization``): ``CloudTrailAccessNotEnabledException``.

The messages paraphrase the CloudTrail API reference's description of each error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from moto.cloudtrail.models import CloudTrailBackend
from moto.core.exceptions import JsonRESTError
from moto.organizations.models import organizations_backends
from moto.utilities.utils import get_partition

#: CloudTrail's service principal, which trusted access must name.
CLOUDTRAIL_PRINCIPAL = "cloudtrail.amazonaws.com"

_PATCH_MARKER = "_iamwatchd_org_trail_patch"


class OrganizationTrailRefused(JsonRESTError):
    """One of CloudTrail's refusals of an organization trail."""

    code = 400

    def __init__(self, error: str, message: str):
        super().__init__(error, message)


def organization_of(account_id: str, partition: str = "aws") -> tuple[str, Any] | None:
    """(management account, organization) of the organization ``account_id`` is in."""
    member = organizations_backends.master_accounts.get(account_id)
    if member is not None:
        management, partition = member
    else:
        management = account_id
    backend = dict.get(organizations_backends, management)
    organizations = backend.get(partition) if backend is not None else None
    org = getattr(organizations, "org", None)
    if org is None or org.master_account_id != management:
        return None
    return management, organizations


def refusal(account_id: str, region_name: str) -> OrganizationTrailRefused | None:
    """Why CloudTrail would not make a trail of ``account_id`` an organization trail."""
    found = organization_of(account_id, get_partition(region_name))
    if found is None:
        return OrganizationTrailRefused(
            "OrganizationsNotInUseException",
            "This request was made from an account that is not a member of an organization. "
            "To make this request, use the credentials of an account that belongs to an "
            "organization.")
    management, organizations = found
    if management != account_id:
        return OrganizationTrailRefused(
            "NotOrganizationMasterAccountException",
            f"The account {account_id} making the request to create or update an organization "
            f"trail is not the management account of its organization ({management}).")
    if organizations.org.feature_set != "ALL":
        return OrganizationTrailRefused(
            "OrganizationNotInAllFeaturesModeException",
            "Organizations is not configured to support all features. All features must be "
            "enabled in Organizations to create an organization trail.")
    principals = {s.get("ServicePrincipal") for s in organizations.services}
    if CLOUDTRAIL_PRINCIPAL not in principals:
        return OrganizationTrailRefused(
            "CloudTrailAccessNotEnabledException",
            "Trusted access has not been enabled between CloudTrail and Organizations. Enable "
            "it (EnableAWSServiceAccess for cloudtrail.amazonaws.com) and try again.")
    return None


def _checking(method: Callable[..., Any], flag: str, position: int) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: CloudTrailBackend, *args: Any, **kwargs: Any) -> Any:
        wanted = kwargs.get(flag, args[position] if len(args) > position else None)
        if wanted is True or str(wanted).lower() == "true":
            error = refusal(self.account_id, self.region_name)
            if error is not None:
                raise error
        return method(self, *args, **kwargs)

    setattr(wrapper, _PATCH_MARKER, True)
    return wrapper


def install() -> None:
    """Makes moto's CreateTrail and UpdateTrail refuse organization trails as CloudTrail does
    (once, however often it is called)."""
    for name, flag, position in (
        ("create_trail", "is_org_trail", 7),
        ("update_trail", "is_organization_trail", 7),
    ):
        current = getattr(CloudTrailBackend, name)
        if not getattr(current, _PATCH_MARKER, False):
            setattr(CloudTrailBackend, name, _checking(current, flag, position))
