"""AWS-managed IAM policies, as every real account has them — the commonly attached ones.

Attaching ``AdministratorAccess`` is the change iamwatchd must report first, so the emulator needs
AWS's managed policies. moto can load all of them (``MOTO_IAM_LOAD_MANAGED_POLICIES``), but that
builds ~1,300 policy objects per account and adds seconds to every emulator start. This loads the
ones tests, the demo and real incidents use, from moto's own copy of AWS's definitions.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from moto.iam import models as iam_models

POLICY_NAMES = (
    "AdministratorAccess",
    "PowerUserAccess",
    "IAMFullAccess",
    "IAMReadOnlyAccess",
    "IAMUserChangePassword",
    "ReadOnlyAccess",
    "SecurityAudit",
    "AmazonS3FullAccess",
    "AmazonS3ReadOnlyAccess",
    "AWSCloudTrail_FullAccess",
    "CloudWatchLogsFullAccess",
    "AmazonSNSFullAccess",
    "AmazonSQSFullAccess",
)


@functools.cache
def _definitions() -> dict[str, Any]:
    everything = json.loads(iam_models.aws_managed_policies_data)
    missing = [name for name in POLICY_NAMES if name not in everything]
    if missing:
        raise RuntimeError(f"moto's managed-policy data lacks {missing}")
    return {name: everything[name] for name in POLICY_NAMES}


def _init_aws_policies(self: Any) -> list[Any]:
    return [
        iam_models.AWSManagedPolicy.from_data(name, self.account_id, self.region_name, data)
        for name, data in _definitions().items()
    ]


def install() -> None:
    """Makes every IAM backend moto creates from now on start with these policies."""
    iam_models.IAMBackend._init_aws_policies = _init_aws_policies
