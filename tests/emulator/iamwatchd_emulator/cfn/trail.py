"""AWS::CloudTrail::Trail, and the prerequisites CloudTrail checks before it accepts a trail.

moto's CreateTrail checks only that the bucket exists. CloudTrail also refuses a bucket whose
policy does not let cloudtrail.amazonaws.com write, a KMS key whose policy does not let it make
data keys, a missing SNS topic, a log group that does not
exist and a role CloudTrail cannot assume; a template that forgets ``DependsOn: <bucket policy>``
must fail here as it fails in AWS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from moto.cloudtrail.exceptions import (
    InsufficientSnsTopicPolicyException,
    InvalidParameterCombinationException,
    S3BucketDoesNotExistException,
)
from moto.cloudtrail.models import cloudtrail_backends
from moto.core.common_models import CloudFormationModel
from moto.core.exceptions import JsonRESTError
from moto.iam.exceptions import NotFoundException as RoleNotFound
from moto.iam.models import iam_backends
from moto.logs.models import logs_backends
from moto.s3.exceptions import MissingBucket
from moto.s3.models import s3_backends
from moto.sns.models import sns_backends
from moto.utilities.arns import parse_arn
from moto.utilities.utils import get_partition

from ..organization_trails import organization_of
from .base import _StackResource
from .encryption import CLOUDTRAIL_CALLS, key_refuses
from .errors import ResourceAlreadyExists
from .policy_eval import _policy_allows
from .properties import _bool, _tags

CLOUDTRAIL_PRINCIPAL = "cloudtrail.amazonaws.com"


# CloudTrail's errors for the checks moto does not make.


class InsufficientS3BucketPolicyException(JsonRESTError):
    """CloudTrail's answer when the bucket policy does not let it write (moto does not check)."""

    code = 400

    def __init__(self, bucket_name: str):
        super().__init__(
            "InsufficientS3BucketPolicyException",
            f"Incorrect S3 bucket policy is detected for bucket: {bucket_name}",
        )


class InsufficientEncryptionPolicyException(JsonRESTError):
    """CloudTrail's answer when the trail's KMS key policy does not let it encrypt."""

    code = 400

    def __init__(self, message: str):
        super().__init__("InsufficientEncryptionPolicyException", message)


class InvalidCloudWatchLogsLogGroupArnException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("InvalidCloudWatchLogsLogGroupArnException", message)


class InvalidCloudWatchLogsRoleArnException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("InvalidCloudWatchLogsRoleArnException", message)


@dataclass(frozen=True)
class _TrailSettings:
    """A trail's configuration as CreateTrail/UpdateTrail take it, read from template properties."""

    bucket_name: str
    key_prefix: str | None
    sns_topic_name: str | None
    include_global_events: bool
    multi_region: bool
    log_file_validation: bool
    organization_trail: bool
    log_group_arn: str | None
    role_arn: str | None
    kms_key_id: str | None
    is_logging: bool
    event_selectors: list[dict[str, Any]]
    advanced_event_selectors: list[dict[str, Any]]

    @classmethod
    def from_properties(cls, properties: dict[str, Any]) -> _TrailSettings:
        topic = properties.get("SnsTopicName")
        if topic and topic.startswith("arn:"):
            # CloudTrail accepts a topic name or ARN; moto builds the ARN from a name.
            topic = parse_arn(topic).resource_id
        return cls(
            bucket_name=properties["S3BucketName"],
            key_prefix=properties.get("S3KeyPrefix"),
            sns_topic_name=topic,
            include_global_events=_bool(properties.get("IncludeGlobalServiceEvents"), True),
            multi_region=_bool(properties.get("IsMultiRegionTrail")),
            log_file_validation=_bool(properties.get("EnableLogFileValidation")),
            organization_trail=_bool(properties.get("IsOrganizationTrail")),
            log_group_arn=properties.get("CloudWatchLogsLogGroupArn"),
            role_arn=properties.get("CloudWatchLogsRoleArn"),
            kms_key_id=properties.get("KMSKeyId"),
            is_logging=_bool(properties["IsLogging"]),
            event_selectors=[
                _event_selector(selector) for selector in properties.get("EventSelectors") or []
            ],
            advanced_event_selectors=list(properties.get("AdvancedEventSelectors") or []),
        )


def _event_selector(selector: dict[str, Any]) -> dict[str, Any]:
    """An EventSelector with CloudTrail's defaults filled in, as GetEventSelectors returns it."""
    return {
        "ReadWriteType": selector.get("ReadWriteType", "All"),
        "IncludeManagementEvents": _bool(selector.get("IncludeManagementEvents"), True),
        "DataResources": list(selector.get("DataResources") or []),
        "ExcludeManagementEventSources": list(selector.get("ExcludeManagementEventSources") or []),
    }


_LOG_GROUP_ARN = re.compile(r"^arn:[^:]+:logs:([^:]*):([^:]*):log-group:(.+?)(?::\*)?$")


def _check_trail_prerequisites(settings: _TrailSettings, account_id: str, region_name: str) -> None:
    """Refuse a trail configuration the way CloudTrail does, in CloudTrail's order."""
    partition = get_partition(region_name)
    if settings.multi_region and not settings.include_global_events:
        raise InvalidParameterCombinationException(
            "Multi-Region trail must include global service events."
        )

    try:
        bucket = s3_backends[account_id][partition].get_bucket(settings.bucket_name)
    except MissingBucket:
        raise S3BucketDoesNotExistException(
            f"S3 bucket {settings.bucket_name} does not exist!"
        ) from None
    prefix = f"{settings.key_prefix}/" if settings.key_prefix else ""
    bucket_arn = f"arn:{partition}:s3:::{settings.bucket_name}"
    log_object_arn = (
        f"{bucket_arn}/{prefix}AWSLogs/{account_id}/CloudTrail/{region_name}/log.json.gz"
    )
    log_objects = [log_object_arn]
    organization = organization_of(account_id, partition) if settings.organization_trail else None
    if organization is not None:
        # An organization trail writes the members' files under the organization's ID.
        org_id = organization[1].org.id
        log_objects.append(
            f"{bucket_arn}/{prefix}AWSLogs/{org_id}/{account_id}/CloudTrail/{region_name}/log.json.gz")
    if not bucket.policy or not (
        _policy_allows(bucket.policy, "s3:GetBucketAcl", bucket_arn, CLOUDTRAIL_PRINCIPAL)
        and all(_policy_allows(bucket.policy, "s3:PutObject", arn, CLOUDTRAIL_PRINCIPAL)
                for arn in log_objects)
    ):
        raise InsufficientS3BucketPolicyException(settings.bucket_name)

    if settings.sns_topic_name:
        topic_arn = f"arn:{partition}:sns:{region_name}:{account_id}:{settings.sns_topic_name}"
        if topic_arn not in sns_backends[account_id][region_name].topics:
            raise InsufficientSnsTopicPolicyException(
                "SNS Topic does not exist or the topic policy is incorrect!"
            )

    if settings.kms_key_id:
        reason = key_refuses(
            account_id, region_name, settings.kms_key_id, CLOUDTRAIL_PRINCIPAL, CLOUDTRAIL_CALLS
        )
        if reason:
            raise InsufficientEncryptionPolicyException(
                f"Insufficient permissions to access S3 bucket {settings.bucket_name} or KMS key "
                f"{settings.kms_key_id} ({reason})."
            )

    if bool(settings.log_group_arn) != bool(settings.role_arn):
        raise InvalidParameterCombinationException(
            "CloudWatchLogsLogGroupArn and CloudWatchLogsRoleArn must be specified together."
        )
    if settings.log_group_arn:
        _check_log_group(settings.log_group_arn, account_id, region_name)
        _check_cloudtrail_role(settings.role_arn or "", account_id, partition)


def _check_log_group(log_group_arn: str, account_id: str, region_name: str) -> None:
    match = _LOG_GROUP_ARN.match(log_group_arn)
    if match is None:
        raise InvalidCloudWatchLogsLogGroupArnException(
            f"CloudWatch Logs log group ARN {log_group_arn} is not valid."
        )
    group_region, group_account, group_name = match.groups()
    backend = logs_backends[group_account or account_id][group_region or region_name]
    if group_name not in backend.groups:
        raise InvalidCloudWatchLogsLogGroupArnException(
            f"Access denied. CloudWatch Logs log group {group_name} does not exist."
        )


def _check_cloudtrail_role(role_arn: str, account_id: str, partition: str) -> None:
    try:
        role = iam_backends[account_id][partition].get_role_by_arn(role_arn)
    except RoleNotFound:
        role = None
    if role is None or not _policy_allows(
        role.assume_role_policy_document, "sts:AssumeRole", service=CLOUDTRAIL_PRINCIPAL
    ):
        raise InvalidCloudWatchLogsRoleArnException(
            f"Access denied. Verify in IAM that the role {role_arn} exists and that "
            f"{CLOUDTRAIL_PRINCIPAL} can assume it."
        )


class CloudTrailTrail(_StackResource, CloudFormationModel):
    """AWS::CloudTrail::Trail through moto's CreateTrail/UpdateTrail/StartLogging/DeleteTrail."""

    TYPE = "AWS::CloudTrail::Trail"
    NAME_PROPERTY = "TrailName"
    REQUIRED = ("S3BucketName", "IsLogging")
    ATTRIBUTES = {"Arn": "arn", "SnsTopicArn": "sns_topic_arn"}

    arn: str
    sns_topic_arn: str | None

    @property
    def _backend(self) -> Any:
        return cloudtrail_backends[self.account_id][self.region_name]

    def _create(self) -> None:
        if self.name in self._backend.trails:
            raise ResourceAlreadyExists(self.TYPE, self.name)
        settings = _TrailSettings.from_properties(self.properties)
        _check_trail_prerequisites(settings, self.account_id, self.region_name)
        trail = self._backend.create_trail(
            self.name,
            settings.bucket_name,
            settings.key_prefix,
            settings.sns_topic_name,
            settings.include_global_events,
            settings.multi_region,
            settings.log_file_validation,
            settings.organization_trail,
            settings.log_group_arn,
            settings.role_arn,
            settings.kms_key_id,
            _tags(self.properties),
        )
        self.arn = trail.arn
        self._apply_selectors_and_logging(trail, settings)

    def _update(self, properties: dict[str, Any]) -> None:
        settings = _TrailSettings.from_properties(properties)
        _check_trail_prerequisites(settings, self.account_id, self.region_name)
        trail = self._backend.update_trail(
            name=self.name,
            s3_bucket_name=settings.bucket_name,
            s3_key_prefix=settings.key_prefix,
            sns_topic_name=settings.sns_topic_name,
            include_global_service_events=settings.include_global_events,
            is_multi_region_trail=settings.multi_region,
            enable_log_file_validation=settings.log_file_validation,
            is_organization_trail=settings.organization_trail,
            cw_log_group_arn=settings.log_group_arn,
            cw_role_arn=settings.role_arn,
            kms_key_id=settings.kms_key_id,
        )
        # moto's update_trail reads None as "leave unchanged"; a property removed from the
        # template means "unset" to CloudFormation.
        for attribute, value in (
            ("s3_key_prefix", settings.key_prefix),
            ("sns_topic_name", settings.sns_topic_name),
            ("cw_log_group_arn", settings.log_group_arn),
            ("cw_role_arn", settings.role_arn),
            ("kms_key_id", settings.kms_key_id),
        ):
            if value is None:
                setattr(trail, attribute, None)
        self._backend.remove_tags(self.arn, _tags(self.properties))
        self._backend.add_tags(self.arn, _tags(properties))
        self._apply_selectors_and_logging(trail, settings)

    def _apply_selectors_and_logging(self, trail: Any, settings: _TrailSettings) -> None:
        # Set both kinds: moto's put_event_selectors ignores an empty list and never clears the
        # other kind, while the template's selectors replace whatever the trail had.
        trail.event_selectors = settings.event_selectors
        trail.advanced_event_selectors = settings.advanced_event_selectors
        if settings.is_logging and not trail.status.is_logging:
            self._backend.start_logging(self.name)
        elif not settings.is_logging and trail.status.is_logging:
            self._backend.stop_logging(self.name)
        self.sns_topic_arn = trail.topic_arn

    def _delete(self) -> None:
        self._backend.delete_trail(self.name)
