"""CloudFormation resource types that moto 5.2.5 lacks, and the stack-engine fixes they need.

iamwatchd deploys its safety net with CloudFormation: a trail logging to a CloudWatch Logs group
(through an IAM role), a metric filter on that group, an alarm on the filter's metric, an SNS topic
with an e-mail subscription, optionally an SQS queue subscribed to the topic (with its queue
policy) and optionally the trail's S3 bucket with a bucket policy that lets CloudTrail write.
moto parses such a template but *silently skips* every resource type it has no model for (one log
warning, no error): the stack reports CREATE_COMPLETE while the trail, the filter, the alarm, the
subscriptions and every policy are missing. Tests written against that would prove nothing.

This module adds those types as ``CloudFormationModel`` subclasses that drive moto's own service
backends, so what a stack creates is visible through the ordinary service APIs (DescribeTrails,
DescribeMetricFilters, DescribeAlarms, ListSubscriptionsByTopic, GetQueueAttributes,
GetBucketPolicy, ...):

    AWS::CloudTrail::Trail      Ref: trail name      GetAtt: Arn, SnsTopicArn
    AWS::Logs::MetricFilter     Ref: filter name
    AWS::CloudWatch::Alarm      Ref: alarm name      GetAtt: Arn
    AWS::SNS::Subscription      Ref: subscription ARN
    AWS::SNS::TopicPolicy       Ref: generated Id    GetAtt: Id
    AWS::SQS::QueuePolicy       Ref: generated Id    GetAtt: Id
    AWS::S3::BucketPolicy       Ref: bucket name (the resource's primary identifier)

moto finds resource types with ``CloudFormationModel.__subclasses__()``, which lists *direct*
subclasses only. Every class below therefore names ``CloudFormationModel`` as a direct base; the
behaviour they share lives in mixins that are deliberately not CloudFormationModels. Defining the
classes (importing this module) registers them; ``install()`` additionally resets moto's cached
type registry and applies the stack-engine fixes listed in its docstring.

Realism choices, all modelled on what AWS does and moto does not:
- A resource that fails fails the stack, not the API call: CREATE_FAILED / UPDATE_FAILED with
  a ResourceStatusReason shaped like CloudFormation's, then a rollback (ROLLBACK_COMPLETE after
  a failed creation, UPDATE_ROLLBACK_COMPLETE after a failed update). moto itself lets the
  service error escape from CreateStack/UpdateStack/ExecuteChangeSet.
- CreateTrail checks what CloudTrail checks: the bucket exists *and its policy lets
  cloudtrail.amazonaws.com call s3:GetBucketAcl and s3:PutObject* (so a template that forgets
  ``DependsOn: <bucket policy>`` fails here as it fails in AWS), the SNS topic exists, the log
  group exists and the role exists and trusts cloudtrail.amazonaws.com.
- E-mail subscriptions stay "PendingConfirmation" until confirmed (see confirm_subscription());
  moto confirms every subscription at once.
- An in-place update keeps the physical name and, for an alarm, its state: PutMetricAlarm leaves
  the state of an existing alarm unchanged.
- Deleting a resource that is already gone (say the log group went first and took its filters
  with it) counts as deleted, as it does in CloudFormation.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import functools
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from moto.cloudformation import parsing
from moto.cloudformation.exceptions import (
    CloudFormationError,
    UnformattedGetAttTemplateException,
)
from moto.cloudformation.models import CloudFormationBackend, Event, Stack
from moto.cloudtrail.exceptions import (
    InsufficientSnsTopicPolicyException,
    InvalidParameterCombinationException,
    S3BucketDoesNotExistException,
)
from moto.cloudtrail.models import cloudtrail_backends
from moto.cloudwatch.models import (
    Alarm,
    Dimension,
    Metric,
    MetricDataQuery,
    MetricStat,
    cloudwatch_backends,
)
from moto.core.common_models import CloudFormationModel
from moto.core.exceptions import JsonRESTError, ServiceException
from moto.iam.exceptions import NotFoundException as RoleNotFound
from moto.iam.models import iam_backends
from moto.logs.exceptions import ResourceNotFoundException as LogGroupNotFound
from moto.logs.models import logs_backends
from moto.moto_api._internal import mock_random
from moto.s3.exceptions import MissingBucket
from moto.s3.models import s3_backends
from moto.sns.exceptions import SNSNotFoundError
from moto.sns.models import Subscription, sns_backends
from moto.sqs.models import sqs_backends
from moto.utilities.arns import parse_arn
from moto.utilities.utils import get_partition

logger = logging.getLogger(__name__)

CLOUDTRAIL_PRINCIPAL = "cloudtrail.amazonaws.com"

# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class StackResourceError(Exception):
    """A failure that CloudFormation itself reports (not a service's handler error).

    Its text is the ResourceStatusReason verbatim, e.g. the properties validation message.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class PropertiesValidationError(StackResourceError):
    """A required property is missing or malformed, worded like CloudFormation's schema check."""

    def __init__(self, logical_id: str, problems: Iterable[str]):
        super().__init__(
            f"Properties validation failed for resource {logical_id} with message: "
            + "\n".join(problems)
        )


class ResourceAlreadyExists(StackResourceError):
    """CloudFormation refuses to adopt an existing resource with the name the template asks for."""

    def __init__(self, resource_type: str, identifier: str):
        super().__init__(
            f"Resource of type '{resource_type}' with identifier '{identifier}' already exists."
        )


class InsufficientS3BucketPolicyException(JsonRESTError):
    """CloudTrail's answer when the bucket policy does not let it write (moto does not check)."""

    code = 400

    def __init__(self, bucket_name: str):
        super().__init__(
            "InsufficientS3BucketPolicyException",
            f"Incorrect S3 bucket policy is detected for bucket: {bucket_name}",
        )


class InvalidCloudWatchLogsLogGroupArnException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("InvalidCloudWatchLogsLogGroupArnException", message)


class InvalidCloudWatchLogsRoleArnException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("InvalidCloudWatchLogsRoleArnException", message)


def _aws_error(exc: BaseException) -> tuple[str, str, int] | None:
    """(error code, message, HTTP status) of a moto service error; None for anything else.

    moto has two error families: ``ServiceException`` (code is the AWS error code) and the
    older werkzeug-based ``JsonRESTError`` (``error_type`` is the AWS code, ``code`` the status).
    """
    if isinstance(exc, ServiceException):
        status = 500 if "Internal" in exc.code else 400
        return exc.code, exc.message, status
    error_type = getattr(exc, "error_type", None)
    if isinstance(error_type, str):
        status = getattr(exc, "code", 400)
        return error_type, getattr(exc, "message", str(exc)), int(status) if status else 400
    return None


def _is_not_found(exc: BaseException) -> bool:
    error = _aws_error(exc)
    return error is not None and any(
        marker in error[0] for marker in ("NotFound", "NoSuch", "DoesNotExist", "NonExistent")
    )


def _failure_reason(resource_type: str, exc: BaseException) -> str:
    """The ResourceStatusReason CloudFormation shows for a resource that failed to create.

    Registry-based resources report the service error wrapped like this:
    ``Resource handler returned message: "<message> (Service: CloudTrail, Status Code: 400,
    Request ID: ...)" (RequestToken: ..., HandlerErrorCode: NotFound)``.
    """
    if isinstance(exc, StackResourceError):
        return exc.reason
    error = _aws_error(exc)
    if error is None:
        # Not a service error: a bug here or in moto. Keep the stack honest (it failed) and keep
        # the traceback for whoever debugs the emulator.
        logger.error("creating a %s failed unexpectedly", resource_type, exc_info=exc)
        return f"Internal Failure ({type(exc).__name__}: {exc})"
    code, message, status = error
    if _is_not_found(exc):
        handler_code = "NotFound"
    elif status < 500:
        handler_code = "InvalidRequest"
    else:
        handler_code = "ServiceInternalError"
    service = resource_type.split("::")[1]
    return (
        f'Resource handler returned message: "{message} (Service: {service}, '
        f'Status Code: {status}, Request ID: {mock_random.uuid4()})" '
        f"(RequestToken: {mock_random.uuid4()}, HandlerErrorCode: {handler_code})"
    )


# ---------------------------------------------------------------------------------------------
# Property value helpers. Template values arrive as the template wrote them: booleans and numbers
# are often strings ("true", "300"), especially when they come from parameters.
# ---------------------------------------------------------------------------------------------


def _bool(value: Any, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _optional_bool(value: Any) -> bool | None:
    return None if value is None else _bool(value)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _json_text(document: Any) -> str:
    """Policies may be given as YAML/JSON objects or as JSON strings; services store JSON text."""
    return document if isinstance(document, str) else json.dumps(document)


def _json_object(document: Any) -> Any:
    if isinstance(document, bytes):
        document = document.decode("utf-8")
    return json.loads(document) if isinstance(document, str) else document


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _missing_keys(mapping: dict[str, Any], keys: Iterable[str], pointer: str) -> list[str]:
    return [
        f"{pointer}: required key [{key}] not found" for key in keys if mapping.get(key) is None
    ]


def _tags(properties: dict[str, Any]) -> list[dict[str, str]]:
    return [{"Key": tag["Key"], "Value": str(tag["Value"])} for tag in properties.get("Tags") or []]


# ---------------------------------------------------------------------------------------------
# A deliberately small policy evaluator, used where AWS checks a policy before it accepts a
# configuration (CloudTrail and its bucket policy / role trust policy). It honours Effect,
# Action, Resource and Service/"*" principals with IAM wildcards; Conditions are taken as
# satisfied. That catches the mistakes that matter here (no statement for CloudTrail, wrong
# bucket or prefix, a policy that does not exist yet) without pretending to be IAM.
# ---------------------------------------------------------------------------------------------


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


def _policy_allows(
    document: Any, action: str, resource: str | None = None, service: str | None = None
) -> bool:
    """Whether ``document`` allows ``action`` (on ``resource``; to service principal ``service``)
    under the simplifications above."""
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
            return False
        if statement.get("Effect") == "Allow":
            allowed = True
    return allowed


# ---------------------------------------------------------------------------------------------
# Shared resource behaviour
# ---------------------------------------------------------------------------------------------


class _StackResource:
    """Lifecycle shared by every resource type in this module.

    Subclasses declare their CloudFormation type, name property, required properties, the
    properties whose change needs a replacement and their Fn::GetAtt attributes, and implement
    ``_create``, ``_update`` and ``_delete`` against moto's backends. This class turns that into
    the interface moto's stack engine calls (create/update_from_cloudformation_json, delete,
    physical_resource_id, has_cfn_attr/get_cfn_attribute).

    Not a CloudFormationModel on purpose: moto registers only *direct* subclasses.
    """

    TYPE: ClassVar[str]
    NAME_PROPERTY: ClassVar[str] = ""
    REQUIRED: ClassVar[tuple[str, ...]] = ()
    REPLACED_WHEN_CHANGED: ClassVar[tuple[str, ...]] = ()
    # Fn::GetAtt attribute -> instance attribute holding its value
    ATTRIBUTES: ClassVar[dict[str, str]] = {}

    def __init__(
        self,
        name: str,
        properties: dict[str, Any],
        account_id: str,
        region_name: str,
        logical_id: str,
        explicit_name: bool,
    ):
        self.name = name
        self.properties = properties
        self.account_id = account_id
        self.region_name = region_name
        self.logical_id = logical_id
        # CloudFormation generates a name when the template gives none, and keeps it across
        # in-place updates; only a name written in the template can change it.
        self.explicit_name = explicit_name

    # -- moto's registry interface -------------------------------------------------------------

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.TYPE

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.NAME_PROPERTY

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name not in self.ATTRIBUTES:
            raise UnformattedGetAttTemplateException()
        return getattr(self, self.ATTRIBUTES[attribute_name])

    @property
    def physical_resource_id(self) -> str:
        return self.name

    def is_created(self) -> bool:
        return True

    # -- lifecycle -------------------------------------------------------------------------------

    @classmethod
    def _validate(cls, logical_id: str, properties: dict[str, Any]) -> None:
        problems = _missing_keys(properties, cls.REQUIRED, "#")
        if problems:
            raise PropertiesValidationError(logical_id, problems)

    @classmethod
    def _is_named_in(cls, properties: dict[str, Any]) -> bool:
        return bool(cls.NAME_PROPERTY) and properties.get(cls.NAME_PROPERTY) is not None

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        properties = cloudformation_json.get("Properties") or {}
        logical_id = kwargs.get("LogicalId", resource_name)
        cls._validate(logical_id, properties)
        resource = cls(
            resource_name,
            properties,
            account_id,
            region_name,
            logical_id,
            explicit_name=cls._is_named_in(properties),
        )
        resource._create()
        return resource

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        """Update in place when AWS can, otherwise replace (create the new one, delete the old).

        moto hands every update a *freshly generated* name when the template names nothing; using
        it would rename (replace) the resource on every update. CloudFormation keeps the physical
        name, so it is only taken when the template drops a name it used to give.
        """
        properties = cloudformation_json.get("Properties") or {}
        cls._validate(original_resource.logical_id, properties)
        explicit_name = cls._is_named_in(properties)
        if explicit_name:
            name = properties[cls.NAME_PROPERTY]
        elif original_resource.explicit_name:
            name = new_resource_name
        else:
            name = original_resource.name

        needs_replacement = name != original_resource.name or any(
            properties.get(key) != original_resource.properties.get(key)
            for key in cls.REPLACED_WHEN_CHANGED
        )
        if needs_replacement:
            replacement = cls(
                name,
                properties,
                account_id,
                region_name,
                original_resource.logical_id,
                explicit_name,
            )
            replacement._create()
            original_resource.delete(account_id, region_name)
            return replacement

        original_resource._update(properties)
        original_resource.properties = properties
        original_resource.explicit_name = explicit_name
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        """Called by moto on stack deletion, resource removal and rollback.

        A resource that is already gone counts as deleted, as in CloudFormation (e.g. a metric
        filter whose log group was deleted first).
        """
        try:
            self._delete()
        except Exception as exc:
            if not _is_not_found(exc):
                raise

    def _create(self) -> None:
        raise NotImplementedError

    def _update(self, properties: dict[str, Any]) -> None:
        raise NotImplementedError

    def _delete(self) -> None:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# AWS::CloudTrail::Trail
# ---------------------------------------------------------------------------------------------


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
    if not bucket.policy or not (
        _policy_allows(bucket.policy, "s3:GetBucketAcl", bucket_arn, CLOUDTRAIL_PRINCIPAL)
        and _policy_allows(bucket.policy, "s3:PutObject", log_object_arn, CLOUDTRAIL_PRINCIPAL)
    ):
        raise InsufficientS3BucketPolicyException(settings.bucket_name)

    if settings.sns_topic_name:
        topic_arn = f"arn:{partition}:sns:{region_name}:{account_id}:{settings.sns_topic_name}"
        if topic_arn not in sns_backends[account_id][region_name].topics:
            raise InsufficientSnsTopicPolicyException(
                "SNS Topic does not exist or the topic policy is incorrect!"
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


# ---------------------------------------------------------------------------------------------
# AWS::Logs::MetricFilter
# ---------------------------------------------------------------------------------------------


def _metric_transformation(transformation: dict[str, Any]) -> dict[str, Any]:
    """A template MetricTransformation in the shape PutMetricFilter stores and returns."""
    api: dict[str, Any] = {
        "metricName": transformation["MetricName"],
        "metricNamespace": transformation["MetricNamespace"],
        "metricValue": str(transformation["MetricValue"]),
    }
    if transformation.get("DefaultValue") is not None:
        api["defaultValue"] = float(transformation["DefaultValue"])
    if transformation.get("Unit"):
        api["unit"] = transformation["Unit"]
    if transformation.get("Dimensions"):
        api["dimensions"] = {
            dimension["Key"]: dimension["Value"] for dimension in transformation["Dimensions"]
        }
    return api


class LogsMetricFilter(_StackResource, CloudFormationModel):
    """AWS::Logs::MetricFilter through moto's PutMetricFilter/DeleteMetricFilter."""

    TYPE = "AWS::Logs::MetricFilter"
    NAME_PROPERTY = "FilterName"
    REQUIRED = ("FilterPattern", "LogGroupName", "MetricTransformations")
    REPLACED_WHEN_CHANGED = ("LogGroupName",)

    @property
    def _backend(self) -> Any:
        return logs_backends[self.account_id][self.region_name]

    @property
    def log_group_name(self) -> str:
        return self.properties["LogGroupName"]

    @classmethod
    def _validate(cls, logical_id: str, properties: dict[str, Any]) -> None:
        super()._validate(logical_id, properties)
        transformations = _as_list(properties["MetricTransformations"])
        problems = []
        if len(transformations) != 1:
            problems.append(
                f"#/MetricTransformations: expected exactly 1 item, found: {len(transformations)}"
            )
        for index, transformation in enumerate(transformations):
            problems += _missing_keys(
                transformation,
                ("MetricName", "MetricNamespace", "MetricValue"),
                f"#/MetricTransformations/{index}",
            )
        if problems:
            raise PropertiesValidationError(logical_id, problems)

    def _existing(self) -> list[dict[str, Any]]:
        return [
            metric_filter
            for metric_filter in self._backend.describe_metric_filters(
                prefix=self.name, log_group_name=self.log_group_name
            )
            if metric_filter["filterName"] == self.name
        ]

    def _put(self, properties: dict[str, Any]) -> None:
        # moto's put_metric_filter accepts a filter for a log group that does not exist;
        # CloudWatch Logs answers ResourceNotFoundException.
        if properties["LogGroupName"] not in self._backend.groups:
            raise LogGroupNotFound()
        self._backend.put_metric_filter(
            self.name,
            properties["FilterPattern"],
            properties["LogGroupName"],
            [_metric_transformation(t) for t in _as_list(properties["MetricTransformations"])],
        )

    def _create(self) -> None:
        if self.log_group_name in self._backend.groups and self._existing():
            raise ResourceAlreadyExists(self.TYPE, self.name)
        self._put(self.properties)

    def _update(self, properties: dict[str, Any]) -> None:
        # PutMetricFilter replaces a filter of the same name; moto's appends a second copy.
        self._backend.delete_metric_filter(self.name, self.log_group_name)
        self._put(properties)

    def _delete(self) -> None:
        self._backend.delete_metric_filter(self.name, self.log_group_name)


# ---------------------------------------------------------------------------------------------
# AWS::CloudWatch::Alarm
# ---------------------------------------------------------------------------------------------


def _metric_stat(stat: dict[str, Any] | None) -> MetricStat | None:
    if not stat:
        return None
    metric = stat.get("Metric") or {}
    return MetricStat(
        metric=Metric(
            metric_name=metric.get("MetricName"),
            namespace=metric.get("Namespace"),
            dimensions=[
                Dimension(dimension.get("Name"), dimension.get("Value"))
                for dimension in metric.get("Dimensions") or []
            ],
        ),
        period=_optional_int(stat.get("Period")),
        stat=stat.get("Stat"),
        unit=stat.get("Unit"),
    )


def _metric_data_queries(metrics: list[dict[str, Any]] | None) -> list[MetricDataQuery] | None:
    """The alarm's ``Metrics`` (metric math) as moto's PutMetricAlarm takes them."""
    if not metrics:
        return None
    return [
        MetricDataQuery(
            query_id=metric.get("Id"),
            label=metric.get("Label"),
            period=_optional_int(metric.get("Period")),
            return_data=_optional_bool(metric.get("ReturnData")),
            expression=metric.get("Expression"),
            metric_stat=_metric_stat(metric.get("MetricStat")),
        )
        for metric in metrics
    ]


class CloudWatchAlarm(_StackResource, CloudFormationModel):
    """AWS::CloudWatch::Alarm through moto's PutMetricAlarm/DeleteAlarms."""

    TYPE = "AWS::CloudWatch::Alarm"
    NAME_PROPERTY = "AlarmName"
    REQUIRED = ("ComparisonOperator", "EvaluationPeriods")
    ATTRIBUTES = {"Arn": "arn"}

    arn: str

    @property
    def _backend(self) -> Any:
        return cloudwatch_backends[self.account_id][self.region_name]

    def _put(self, properties: dict[str, Any]) -> Alarm:
        return self._backend.put_metric_alarm(
            name=self.name,
            namespace=properties.get("Namespace"),
            metric_name=properties.get("MetricName"),
            metric_data_queries=_metric_data_queries(properties.get("Metrics")),
            comparison_operator=properties["ComparisonOperator"],
            evaluation_periods=int(properties["EvaluationPeriods"]),
            datapoints_to_alarm=_optional_int(properties.get("DatapointsToAlarm")),
            period=_optional_int(properties.get("Period")),
            threshold=_optional_float(properties.get("Threshold")),
            statistic=properties.get("Statistic"),
            extended_statistic=properties.get("ExtendedStatistic"),
            description=properties.get("AlarmDescription"),
            dimensions=list(properties.get("Dimensions") or []),
            alarm_actions=list(properties.get("AlarmActions") or []),
            ok_actions=list(properties.get("OKActions") or []),
            insufficient_data_actions=list(properties.get("InsufficientDataActions") or []),
            unit=properties.get("Unit"),
            actions_enabled=_bool(properties.get("ActionsEnabled"), True),
            treat_missing_data=properties.get("TreatMissingData"),
            evaluate_low_sample_count_percentile=properties.get("EvaluateLowSampleCountPercentile"),
            threshold_metric_id=properties.get("ThresholdMetricId"),
            tags=_tags(properties) or None,
        )

    def _create(self) -> None:
        if self.name in self._backend.alarms:
            raise ResourceAlreadyExists(self.TYPE, self.name)
        self.arn = self._put(self.properties).alarm_arn

    def _update(self, properties: dict[str, Any]) -> None:
        previous = self._backend.alarms.get(self.name)
        self._backend.tagger.delete_all_tags_for_resource(self.arn)
        alarm = self._put(properties)
        if previous is not None:
            # "When you update an existing alarm, its state is left unchanged" (PutMetricAlarm);
            # moto's put_metric_alarm builds a brand-new alarm in its initial state.
            for attribute in (
                "state_value",
                "state_reason",
                "state_reason_data",
                "state_updated_timestamp",
                "history",
            ):
                setattr(alarm, attribute, getattr(previous, attribute))

    def _delete(self) -> None:
        self._backend.delete_alarms([self.name])


# ---------------------------------------------------------------------------------------------
# AWS::SNS::Subscription
# ---------------------------------------------------------------------------------------------

# Protocols whose endpoint owner must confirm before SNS delivers anything.
_CONFIRMED_BY_ENDPOINT_OWNER = ("email", "email-json")

# Subscription attributes the template can set, in the order they must be applied: moto checks
# a FilterPolicy against the FilterPolicyScope already set. Value: what "not set" looks like.
_SUBSCRIPTION_ATTRIBUTES: dict[str, Any] = {
    "FilterPolicyScope": "",
    "FilterPolicy": "",
    "RawMessageDelivery": False,
    "DeliveryPolicy": "",
    "RedrivePolicy": "",
    "SubscriptionRoleArn": "",
}


def _subscription_attribute(name: str, value: Any) -> Any:
    if name == "RawMessageDelivery":
        # A bool, not "true"/"false": moto delivers raw whenever the stored value is truthy,
        # and the string "false" is truthy.
        return _bool(value)
    if name in ("FilterPolicy", "DeliveryPolicy", "RedrivePolicy"):
        return _json_text(value)
    return value


def _await_confirmation(subscription: Subscription) -> None:
    """Put an e-mail subscription in the state SNS leaves it in until the recipient confirms."""
    subscription.confirmed = False
    subscription.attributes["PendingConfirmation"] = True
    subscription.attributes["ConfirmationWasAuthenticated"] = False
    # ListSubscriptions(ByTopic) show the literal "PendingConfirmation" instead of the ARN of an
    # unconfirmed subscription. moto's serializer reads `subscription_arn` before `arn`.
    subscription.subscription_arn = "PendingConfirmation"  # type: ignore[attr-defined]


def confirm_subscription(subscription_arn: str) -> None:
    """Confirm a pending subscription, as the recipient clicking the confirmation link would.

    Raises the SNS NotFound error when the subscription does not exist.
    """
    arn = parse_arn(subscription_arn)
    subscription = sns_backends[arn.account][arn.region].subscriptions.get(subscription_arn)
    if subscription is None:
        raise SNSNotFoundError("Subscription does not exist")
    subscription.confirmed = True
    subscription.attributes["PendingConfirmation"] = False
    subscription.attributes["ConfirmationWasAuthenticated"] = True
    vars(subscription).pop("subscription_arn", None)


class SNSSubscription(_StackResource, CloudFormationModel):
    """AWS::SNS::Subscription through moto's Subscribe/SetSubscriptionAttributes/Unsubscribe.

    Ref returns the subscription ARN even while an e-mail subscription is pending (CloudFormation
    subscribes with ReturnSubscriptionArn).
    """

    TYPE = "AWS::SNS::Subscription"
    REQUIRED = ("Protocol", "TopicArn")
    REPLACED_WHEN_CHANGED = ("Endpoint", "Protocol", "TopicArn")

    arn: str

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @property
    def _backend(self) -> Any:
        region = self.properties.get("Region") or parse_arn(self.properties["TopicArn"]).region
        return sns_backends[self.account_id][region]

    def _create(self) -> None:
        existing = set(self._backend.subscriptions)
        subscription = self._backend.subscribe(
            self.properties["TopicArn"],
            self.properties.get("Endpoint"),
            self.properties["Protocol"],
        )
        self.arn = subscription.arn
        self._apply_attributes(self.properties, previous={})
        # SNS answers a repeated Subscribe with the existing subscription, in whatever state
        # it is; only a new one starts unconfirmed.
        if (
            subscription.arn not in existing
            and self.properties["Protocol"] in _CONFIRMED_BY_ENDPOINT_OWNER
        ):
            _await_confirmation(subscription)

    def _update(self, properties: dict[str, Any]) -> None:
        self._apply_attributes(properties, previous=self.properties)

    def _apply_attributes(self, properties: dict[str, Any], previous: dict[str, Any]) -> None:
        for name, unset in _SUBSCRIPTION_ATTRIBUTES.items():
            if properties.get(name) is not None:
                value = _subscription_attribute(name, properties[name])
            elif previous.get(name) is not None:
                value = unset
            else:
                continue
            self._backend.set_subscription_attributes(self.arn, name, value)

    def _delete(self) -> None:
        self._backend.unsubscribe(self.arn)


# ---------------------------------------------------------------------------------------------
# Resource policies: AWS::SNS::TopicPolicy, AWS::SQS::QueuePolicy, AWS::S3::BucketPolicy
# ---------------------------------------------------------------------------------------------


class _ResourcePolicy(_StackResource):
    """A policy document attached to one or more targets (topics, queues, a bucket).

    Subclasses say where the targets are listed and how to attach and detach the document;
    an update detaches it from targets no longer listed. Not a CloudFormationModel (see
    _StackResource).
    """

    def _targets(self, properties: dict[str, Any]) -> list[str]:
        raise NotImplementedError

    def _attach(self, target: str, document: str) -> None:
        raise NotImplementedError

    def _detach(self, target: str) -> None:
        raise NotImplementedError

    def _detach_if_present(self, target: str) -> None:
        try:
            self._detach(target)
        except Exception as exc:
            if not _is_not_found(exc):
                raise

    def _create(self) -> None:
        document = _json_text(self.properties["PolicyDocument"])
        for target in self._targets(self.properties):
            self._attach(target, document)

    def _update(self, properties: dict[str, Any]) -> None:
        targets = self._targets(properties)
        for target in self._targets(self.properties):
            if target not in targets:
                self._detach_if_present(target)
        document = _json_text(properties["PolicyDocument"])
        for target in targets:
            self._attach(target, document)

    def _delete(self) -> None:
        for target in self._targets(self.properties):
            self._detach_if_present(target)


class SNSTopicPolicy(_ResourcePolicy, CloudFormationModel):
    """AWS::SNS::TopicPolicy: sets each topic's Policy; deleting restores the default policy."""

    TYPE = "AWS::SNS::TopicPolicy"
    REQUIRED = ("PolicyDocument", "Topics")
    ATTRIBUTES = {"Id": "name"}

    def _targets(self, properties: dict[str, Any]) -> list[str]:
        return list(properties["Topics"])

    def _topic(self, topic_arn: str) -> Any:
        return sns_backends[self.account_id][parse_arn(topic_arn).region].get_topic(topic_arn)

    def _attach(self, target: str, document: str) -> None:
        self._topic(target).policy = document

    def _detach(self, target: str) -> None:
        topic = self._topic(target)
        # A topic always has a policy: removing the custom one brings back SNS's default.
        default = topic._create_default_topic_policy(
            topic.sns_backend.region_name, topic.account_id, topic.name
        )
        topic.policy = json.dumps(default)


_QUEUE_URL = re.compile(r"^https?://sqs\.([a-z0-9-]+)\.[^/]+/(\d+)/([^/?#]+)")


class SQSQueuePolicy(_ResourcePolicy, CloudFormationModel):
    """AWS::SQS::QueuePolicy: sets each queue's Policy attribute (queues are given by URL)."""

    TYPE = "AWS::SQS::QueuePolicy"
    REQUIRED = ("PolicyDocument", "Queues")
    ATTRIBUTES = {"Id": "name"}

    def _targets(self, properties: dict[str, Any]) -> list[str]:
        return list(properties["Queues"])

    def _set_policy(self, queue_url: str, document: str) -> None:
        match = _QUEUE_URL.match(queue_url)
        if match:
            region, account, name = match.groups()
        else:  # e.g. http://localhost:5000/123456789012/name from a client of moto's server
            region, account, name = (
                self.region_name,
                self.account_id,
                queue_url.rstrip("/").split("/")[-1],
            )
        sqs_backends[account][region].set_queue_attributes(name, {"Policy": document})

    def _attach(self, target: str, document: str) -> None:
        self._set_policy(target, document)

    def _detach(self, target: str) -> None:
        self._set_policy(target, "")


class S3BucketPolicy(_ResourcePolicy, CloudFormationModel):
    """AWS::S3::BucketPolicy: PutBucketPolicy on the bucket; deleting the resource deletes it."""

    TYPE = "AWS::S3::BucketPolicy"
    REQUIRED = ("Bucket", "PolicyDocument")
    REPLACED_WHEN_CHANGED = ("Bucket",)

    @property
    def physical_resource_id(self) -> str:
        # The resource's primary identifier is the bucket name, so that is what Ref returns.
        return self.properties["Bucket"]

    @property
    def _backend(self) -> Any:
        return s3_backends[self.account_id][get_partition(self.region_name)]

    def _targets(self, properties: dict[str, Any]) -> list[str]:
        return [properties["Bucket"]]

    def _attach(self, target: str, document: str) -> None:
        self._backend.put_bucket_policy(target, document.encode("utf-8"))

    def _detach(self, target: str) -> None:
        self._backend.delete_bucket_policy(target)


RESOURCE_CLASSES: tuple[type[CloudFormationModel], ...] = (
    CloudTrailTrail,
    LogsMetricFilter,
    CloudWatchAlarm,
    SNSSubscription,
    SNSTopicPolicy,
    SQSQueuePolicy,
    S3BucketPolicy,
)


# ---------------------------------------------------------------------------------------------
# Stack-engine fixes
# ---------------------------------------------------------------------------------------------

_FAILED_RESOURCE = "_iamwatchd_failed_resource"
_PATCH_MARKER = "_iamwatchd_cfn_patch"


@dataclass(frozen=True)
class _FailedResource:
    logical_id: str
    resource_type: str
    operation: str  # CREATE or UPDATE


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
        if getattr(exc, _FAILED_RESOURCE, None) is None:
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
    """moto's AWS::Logs::LogGroup has no in-place update; its retention is the property a
    stack update changes, and PutRetentionPolicy is how CloudFormation applies it."""
    properties = parsing.clean_json(resource_json.get("Properties") or {}, resources_map)
    days = _optional_int(properties.get("RetentionInDays"))
    backend = logs_backends[log_group.account_id][log_group.region]
    if days is None:
        backend.delete_retention_policy(log_group.name)
    else:
        backend.put_retention_policy(log_group.name, days)


def _naming_update_failures(parse_and_update_resource: Callable[..., Any]) -> Callable[..., Any]:
    """moto's per-resource update, naming failures and honouring Conditions.

    moto decides what an update touches without looking at Conditions: a resource left out by a
    false condition but referencing a changed parameter was "updated" from nothing (an internal
    error), and a type without an in-place update (AWS::Logs::LogGroup) became None, breaking
    every later Ref/GetAtt to it. Here a left-out resource stays left out (the condition
    reconciliation after the update creates or deletes it), a resource that never existed is
    created, and a type moto cannot update keeps its resource (LogGroup retention is applied).
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


def _record_event(
    stack: Stack,
    logical_id: str,
    physical_id: str,
    resource_type: str,
    status: str,
    reason: str | None = None,
) -> None:
    """Append a stack event the way moto's Stack._add_stack_event does, for any resource."""
    event = Event(
        stack_id=stack.stack_id,
        stack_name=stack.name,
        logical_resource_id=logical_id,
        physical_resource_id=physical_id,
        resource_type=resource_type,
        resource_status=status,
        resource_status_reason=reason,
        resource_properties=None,
    )
    event.sendToSns(stack.account_id, stack.region_name, stack.notification_arns)
    stack.events.append(event)


def _record_stack_event(stack: Stack, status: str, reason: str | None = None) -> None:
    _record_event(stack, stack.name, stack.stack_id, "AWS::CloudFormation::Stack", status, reason)


def _record_failure(stack: Stack, failed: _FailedResource, error: BaseException) -> None:
    _record_event(
        stack,
        failed.logical_id,
        "",
        failed.resource_type,
        f"{failed.operation}_FAILED",
        _failure_reason(failed.resource_type, error),
    )


def _put_template(stack: Stack, text: Any, template: dict[str, Any]) -> None:
    """Make ``template`` the stack's template (GetTemplate, Description)."""
    stack.template = text
    stack.template_dict = template
    stack.description = template.get("Description")


def _refresh_outputs(
    backend: CloudFormationBackend, stack: Stack, template: dict[str, Any]
) -> None:
    """Give a stack the Outputs and Exports declared in ``template``.

    moto builds a stack's Outputs once, from the template it was created with: a stack created
    by a change set starts with an empty template and never had Outputs, and a change-set
    update kept the old ones.
    """
    stack.output_map = parsing.OutputMap(stack.resource_map, template, stack.stack_id)
    for name in [n for n, e in backend.exports.items() if e.exporting_stack_id == stack.stack_id]:
        del backend.exports[name]
    for export in stack.exports:
        backend.exports[export.name] = export


def _roll_back_creation(
    backend: CloudFormationBackend, stack: Stack, failed: _FailedResource, error: BaseException
) -> None:
    """What CloudFormation does when a resource fails to create (rollback enabled, the default):
    CREATE_FAILED for the resource, ROLLBACK_IN_PROGRESS, delete what was created,
    ROLLBACK_COMPLETE (or ROLLBACK_FAILED if a deletion fails)."""
    if not stack.events:  # failed while moto evaluated Outputs, before its first event
        _record_stack_event(stack, "CREATE_IN_PROGRESS", "User Initiated")
    _record_failure(stack, failed, error)
    stack.status = "ROLLBACK_IN_PROGRESS"
    _record_stack_event(
        stack,
        "ROLLBACK_IN_PROGRESS",
        f"The following resource(s) failed to create: [{failed.logical_id}]. "
        "Rollback requested by user.",
    )
    resource_map = stack.resource_map
    created = [
        resource
        for resource in resource_map._parsed_resources.values()
        if getattr(resource, "logical_resource_id", None)
    ]
    try:
        resource_map.delete()
    except Exception as exc:
        stack.status = "ROLLBACK_FAILED"
        _record_stack_event(stack, "ROLLBACK_FAILED", f"Rollback failed: {exc}")
        return
    for resource in created:
        _record_event(
            stack,
            resource.logical_resource_id,
            str(getattr(resource, "physical_resource_id", "") or ""),
            getattr(resource, "cf_resource_type", ""),
            "DELETE_COMPLETE",
        )
    # Nothing of the template exists any more. moto creates resources lazily on first access,
    # and DescribeStacks (Outputs) / DescribeStackResources access them all: without this the
    # rolled-back resources would be created again by the next describe call.
    resource_map._resource_json_map = {}
    _refresh_outputs(backend, stack, {})  # a rolled-back stack has no Outputs
    stack.status = "ROLLBACK_COMPLETE"
    _record_stack_event(stack, "ROLLBACK_COMPLETE")


@dataclass(frozen=True)
class _StackSnapshot:
    """What a failed update rolls back to: the template and parameters in force before it."""

    template: Any
    template_dict: dict[str, Any]
    parameters: dict[str, Any]

    @classmethod
    def of(cls, stack: Stack) -> _StackSnapshot:
        return cls(
            stack.template,
            copy.deepcopy(stack.template_dict),
            dict(stack.resource_map.input_parameters),
        )

    def parameters_replacing(self, current: dict[str, Any]) -> dict[str, Any]:
        """The previous parameters, plus the previous default of every parameter the failed
        update set: moto's update only revisits resources whose parameters it sees change."""
        restored = dict(self.parameters)
        declared = self.template_dict.get("Parameters") or {}
        for key in current:
            if key not in restored and "Default" in declared.get(key, {}):
                default = declared[key]["Default"]
                restored[key] = (
                    ",".join(map(str, default)) if isinstance(default, list) else str(default)
                )
        return restored


def _roll_back_update(
    backend: CloudFormationBackend,
    stack: Stack,
    failed: _FailedResource,
    error: BaseException,
    previous: _StackSnapshot,
) -> None:
    """What CloudFormation does when an update fails: roll the stack back to the previous
    template (itself an update), UPDATE_ROLLBACK_COMPLETE or UPDATE_ROLLBACK_FAILED."""
    _record_failure(stack, failed, error)
    stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
    verb = "create" if failed.operation == "CREATE" else "update"
    _record_stack_event(
        stack,
        "UPDATE_ROLLBACK_IN_PROGRESS",
        f"The following resource(s) failed to {verb}: [{failed.logical_id}].",
    )
    resource_map = stack.resource_map
    if failed.logical_id not in resource_map._parsed_resources:
        # A resource that failed to create has nothing to roll back (moto would warn that it
        # cannot delete it).
        resource_map._resource_json_map = {
            logical_id: resource
            for logical_id, resource in resource_map._resource_json_map.items()
            if logical_id != failed.logical_id
        }
    try:
        resource_map.update(
            previous.template_dict, previous.parameters_replacing(resource_map.input_parameters)
        )
    except Exception as exc:
        stack.status = "UPDATE_ROLLBACK_FAILED"
        _record_stack_event(stack, "UPDATE_ROLLBACK_FAILED", f"Rollback failed: {exc}")
        return
    _put_template(stack, previous.template, previous.template_dict)
    _refresh_outputs(backend, stack, previous.template_dict)
    _record_stack_event(stack, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
    stack.status = "UPDATE_ROLLBACK_COMPLETE"
    _record_stack_event(stack, "UPDATE_ROLLBACK_COMPLETE")


def _failed_resource(exc: BaseException) -> _FailedResource | None:
    return getattr(exc, _FAILED_RESOURCE, None)


def _rolling_back_failed_creation(create_stack: Callable[..., Stack]) -> Callable[..., Stack]:
    """CreateStack returns the stack id and the stack fails on its own, as in AWS.

    moto lets the service error escape from CreateStack instead (in the wrong protocol for a
    JSON service, so clients cannot even parse it) and leaves the stack CREATE_IN_PROGRESS.
    """

    @functools.wraps(create_stack)
    def wrapper(self: CloudFormationBackend, name: str, *args: Any, **kwargs: Any) -> Stack:
        try:
            return create_stack(self, name, *args, **kwargs)
        except Exception as exc:
            failed = _failed_resource(exc)
            stack = next((s for s in self.stacks.values() if s.name == name), None)
            if failed is None or stack is None:
                raise
            _roll_back_creation(self, stack, failed, exc)
            return stack

    return wrapper


def _rolling_back_failed_update(update_stack: Callable[..., Stack]) -> Callable[..., Stack]:
    """UpdateStack: a resource that fails to update rolls the stack back, as in AWS."""

    @functools.wraps(update_stack)
    def wrapper(self: CloudFormationBackend, name: str, *args: Any, **kwargs: Any) -> Stack:
        stack = self.get_stack(name)
        previous = _StackSnapshot.of(stack)
        try:
            return update_stack(self, name, *args, **kwargs)
        except Exception as exc:
            failed = _failed_resource(exc)
            if failed is None:
                raise
            _roll_back_update(self, stack, failed, exc, previous)
            return stack

    return wrapper


def _executing_change_sets_fully(execute_change_set: Callable[..., None]) -> Callable[..., None]:
    """ExecuteChangeSet with Outputs refreshed and failures rolled back like the stack calls."""

    @functools.wraps(execute_change_set)
    def wrapper(
        self: CloudFormationBackend, change_set_name: str, stack_name: str | None = None
    ) -> None:
        change_set = self.describe_change_set(change_set_name)
        stack = change_set.stack
        previous = _StackSnapshot.of(stack)
        try:
            execute_change_set(self, change_set_name, stack_name)
        except Exception as exc:
            failed = _failed_resource(exc)
            if failed is None:
                raise
            change_set.execution_status = "EXECUTE_FAILED"
            if change_set.change_set_type == "CREATE":
                _put_template(stack, change_set.template, change_set.template_dict)
                _roll_back_creation(self, stack, failed, exc)
            else:
                _roll_back_update(self, stack, failed, exc, previous)
            return
        _put_template(stack, change_set.template, change_set.template_dict)
        _refresh_outputs(self, stack, change_set.template_dict)

    return wrapper


def _patch(owner: Any, name: str, wrap: Callable[[Any], Any]) -> None:
    """Replace ``owner.name`` by ``wrap(owner.name)`` once, however often install() runs."""
    current = getattr(owner, name)
    if getattr(current, _PATCH_MARKER, False):
        return
    replacement = wrap(current)
    setattr(replacement, _PATCH_MARKER, True)
    setattr(owner, name, replacement)


def install() -> None:
    """Make moto's CloudFormation create, update and delete the resource types of this module.

    Safe to call more than once. It
    - clears moto's cached type registry (get_model_list/get_model_map/get_name_type_map are
      lru_cached: if anything parsed a template before this module was imported, the cache
      lacks these types and they would still be skipped), then checks they are registered;
    - honours DependsOn on every creation path and names the resource that failed;
    - rolls a stack back when a resource fails: CreateStack and CREATE change sets end in
      ROLLBACK_COMPLETE, UpdateStack and UPDATE change sets in UPDATE_ROLLBACK_COMPLETE;
    - refreshes Outputs/Exports after ExecuteChangeSet;
    - counts Fn::Sub "${Parameter}" as a reference when deciding what a stack update touches;
    - honours Conditions on update (create what became true, delete what became false) and
      keeps resources of types moto cannot update in place.
    """
    _patch(parsing, "parse_and_create_resource", _creating_dependencies_first_and_naming_failures)
    _patch(parsing, "parse_and_update_resource", _naming_update_failures)
    _patch(parsing, "get_references_from_template", _counting_sub_variables_as_references)
    _patch(parsing.ResourceMap, "update", _reconciling_conditions)
    _patch(CloudFormationBackend, "create_stack", _rolling_back_failed_creation)
    _patch(CloudFormationBackend, "update_stack", _rolling_back_failed_update)
    _patch(CloudFormationBackend, "execute_change_set", _executing_change_sets_fully)

    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()
    registered = parsing.get_model_map()
    missing = [
        cls.cloudformation_type()
        for cls in RESOURCE_CLASSES
        if registered.get(cls.cloudformation_type()) is not cls
    ]
    if missing:
        raise RuntimeError(f"moto did not register these CloudFormation types: {missing}")
