"""Customer-managed KMS keys in stacks, and the encryption properties moto's CloudFormation drops.

iamwatchd's stack encrypts its trail, log group, topics and queue with one KMS key. moto 5.2.5
models the key (AWS::KMS::Key) but, through CloudFormation:

- stores a KeyPolicy given as a JSON object as that object, so GetKeyPolicy fails, and has no
  in-place update for a key (policy, rotation, description);
- ignores KmsKeyId on AWS::Logs::LogGroup (its model reads ``kmsKeyId``);
- replaces an AWS::SNS::Topic on every update (a new topic, its subscriptions gone) where AWS
  updates DisplayName and KmsMasterKeyId in place, and updates only two attributes of an
  AWS::SQS::Queue in place (KmsMasterKeyId is among those it drops);
- ignores VersioningConfiguration and LoggingConfiguration on AWS::S3::Bucket.

And AWS checks key policies where moto does not: a log group's key must let
``logs.<region>.amazonaws.com`` use it, a trail's key must let ``cloudtrail.amazonaws.com``
make data keys, and an alarm can publish to an encrypted topic only if the topic's key lets
``cloudwatch.amazonaws.com`` make data keys and decrypt (``key_refuses``, used by the delivery
pump; an AWS-managed ``alias/aws/sns`` key never lets it), and SNS delivers to an encrypted SQS
queue only if the queue's key lets ``sns.amazonaws.com`` do the same. Policies are read with
``policy_eval``'s simplifications: conditions hold.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.kms.models import Key, kms_backends
from moto.logs.models import LogGroup, logs_backends
from moto.s3.models import FakeBucket, s3_backends
from moto.sns.models import Subscription, Topic
from moto.sqs.models import Queue, sqs_backends
from moto.utilities.utils import get_partition

from .policy_eval import _policy_allows
from .properties import _bool, _json_text

#: What each service needs to do with the key (the calls it makes, as AWS documents them).
CLOUDWATCH_PRINCIPAL = "cloudwatch.amazonaws.com"
SNS_PRINCIPAL = "sns.amazonaws.com"
PUBLISH_CALLS = ("kms:GenerateDataKey", "kms:Decrypt")
CLOUDTRAIL_CALLS = ("kms:GenerateDataKey",)
LOGS_CALLS = ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey")


log = logging.getLogger("iamwatchd_emulator.encryption")


class KmsAccessDenied(JsonRESTError):
    """The error AWS services answer when a key's policy does not let them use the key."""

    code = 400

    def __init__(self, code: str, message: str):
        super().__init__(code, message)


def find_key(account_id: str, region_name: str, key_ref: str) -> Key | None:
    """The key a service is configured with (id, key ARN, alias or alias ARN), or None."""
    backend = kms_backends[account_id][region_name]
    try:
        return backend.keys.get(backend.any_id_to_key_id(key_ref))
    except Exception:  # an alias that does not exist
        return None


def key_refuses(
    account_id: str, region_name: str, key_ref: str, principal: str, calls: tuple[str, ...]
) -> str | None:
    """Why ``principal`` cannot make ``calls`` with the key ``key_ref``; None when it can.

    An AWS-managed key (``alias/aws/...``) has a policy no other service can be added to.
    """
    if key_ref.split(":alias/")[-1].startswith(("alias/aws/", "aws/")):
        return f"the AWS-managed key {key_ref} cannot be used by {principal}"
    key = find_key(account_id, region_name, key_ref)
    if key is None:
        return f"the KMS key {key_ref} does not exist"
    if key.key_state != "Enabled":
        return f"the KMS key {key_ref} is {key.key_state}"
    denied = [call for call in calls if not _policy_allows(key.policy, call, service=principal)]
    if denied:
        return f"the key policy of {key.arn} does not allow {principal} {', '.join(denied)}"
    return None


# -- AWS::KMS::Key ------------------------------------------------------------------------------


def _apply_key_properties(key: Key, properties: dict[str, Any]) -> None:
    key.policy = _json_text(properties["KeyPolicy"])
    key.key_rotation_status = _bool(properties.get("EnableKeyRotation"))
    key.enabled = _bool(properties.get("Enabled"), True)
    key.description = properties.get("Description") or ""


def _key_created(create: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(create)
    def wrapper(resource_name: str, cloudformation_json: Any, account_id: str, region_name: str,
                **kwargs: Any) -> Any:
        properties = cloudformation_json["Properties"]
        text = dict(cloudformation_json, Properties=dict(properties,
                                                         KeyPolicy=_json_text(properties["KeyPolicy"])))
        key = create(resource_name, text, account_id, region_name, **kwargs)
        _apply_key_properties(key, properties)
        return key

    return wrapper


def _key_updated(original_resource: Key, new_resource_name: str, cloudformation_json: Any,
                 account_id: str, region_name: str) -> Key:
    """KeyPolicy, EnableKeyRotation, Enabled and Description update a key in place."""
    _apply_key_properties(original_resource, cloudformation_json["Properties"])
    return original_resource


# -- AWS::Logs::LogGroup ------------------------------------------------------------------------


def _check_log_group_key(key_ref: str, account_id: str, region_name: str, name: str) -> None:
    principal = f"logs.{region_name}.amazonaws.com"
    reason = key_refuses(account_id, region_name, key_ref, principal, LOGS_CALLS)
    if reason:
        raise KmsAccessDenied(
            "AccessDeniedException",
            f"The specified KMS key does not exist or is not allowed to be used with log group "
            f"'{name}' ({reason})",
        )


def set_log_group_key(group: LogGroup, key_ref: str | None) -> None:
    """AssociateKmsKey / DisassociateKmsKey, as CloudFormation applies a KmsKeyId change."""
    if key_ref:
        _check_log_group_key(key_ref, group.account_id, group.region, group.name)
    group.kms_key_id = key_ref or None


def _log_group_created(create: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(create)
    def wrapper(resource_name: str, cloudformation_json: Any, account_id: str, region_name: str,
                **kwargs: Any) -> Any:
        key_ref = (cloudformation_json.get("Properties") or {}).get("KmsKeyId")
        if key_ref:
            _check_log_group_key(key_ref, account_id, region_name, resource_name)
        group = create(resource_name, cloudformation_json, account_id, region_name, **kwargs)
        group.kms_key_id = key_ref or None
        return group

    return wrapper


# -- AWS::SNS::Topic, AWS::SQS::Queue -----------------------------------------------------------

#: Topic properties SNS updates in place (SetTopicAttributes; "" unsets), by moto's attribute.
_TOPIC_IN_PLACE = {"DisplayName": "display_name", "KmsMasterKeyId": "kms_master_key_id"}


def _topic_updated(original_resource: Topic, new_resource_name: str, cloudformation_json: Any,
                   account_id: str, region_name: str) -> Topic:
    """DisplayName and KmsMasterKeyId change in place: same ARN, same subscriptions."""
    properties = cloudformation_json.get("Properties") or {}
    for name, attribute in _TOPIC_IN_PLACE.items():
        setattr(original_resource, attribute, properties.get(name) or "")
    return original_resource


#: Queue properties SQS updates in place (SetQueueAttributes), with what "unset" is.
_QUEUE_IN_PLACE: dict[str, Any] = {
    "KmsMasterKeyId": None,
    "KmsDataKeyReusePeriodSeconds": 300,
    "SqsManagedSseEnabled": False,
    "MessageRetentionPeriod": 345600,
    "VisibilityTimeout": 30,
    "ReceiveMessageWaitTimeSeconds": 0,
}


def _queue_updated(original_resource: Queue, new_resource_name: str, cloudformation_json: Any,
                   account_id: str, region_name: str) -> Queue:
    properties = cloudformation_json.get("Properties") or {}
    attributes = {name: properties.get(name, unset) for name, unset in _QUEUE_IN_PLACE.items()}
    attributes["SqsManagedSseEnabled"] = _bool(attributes["SqsManagedSseEnabled"])
    sqs_backends[account_id][region_name].set_queue_attributes(original_resource.name, attributes)
    return original_resource


# -- AWS::S3::Bucket ----------------------------------------------------------------------------


def _apply_bucket_properties(bucket: FakeBucket, properties: dict[str, Any]) -> None:
    backend = s3_backends[bucket.account_id][get_partition(bucket.region_name)]
    versioning = (properties.get("VersioningConfiguration") or {}).get("Status")
    if versioning or bucket.versioning_status:
        backend.put_bucket_versioning(bucket.name, versioning or "Suspended")
    logging_config = properties.get("LoggingConfiguration")
    backend.put_bucket_logging(
        bucket.name,
        {
            "TargetBucket": logging_config.get("DestinationBucketName") or bucket.name,
            "TargetPrefix": logging_config.get("LogFilePrefix") or "",
        }
        if logging_config
        else {},
    )


def _bucket_created(create: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(create)
    def wrapper(resource_name: str, cloudformation_json: Any, account_id: str, region_name: str,
                **kwargs: Any) -> Any:
        bucket = create(resource_name, cloudformation_json, account_id, region_name, **kwargs)
        _apply_bucket_properties(bucket, cloudformation_json.get("Properties") or {})
        return bucket

    return wrapper


def _bucket_updated(update: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(update)
    def wrapper(**kwargs: Any) -> Any:
        bucket = update(**kwargs)
        _apply_bucket_properties(bucket, kwargs["cloudformation_json"].get("Properties") or {})
        return bucket

    return wrapper


def _as_classmethod(function: Callable[..., Any]) -> classmethod:
    """A replacement for a model's classmethod: ``cls`` dropped, the rest passed on."""

    @functools.wraps(function)
    def method(cls: Any, *args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    return classmethod(method)


_MARKER = "_iamwatchd_encryption_patch"


def _replace(model: type, name: str, build: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    """``model.name`` (a classmethod) replaced by ``build(original)``, once."""
    current = getattr(model, name)
    if getattr(current, _MARKER, False):
        return
    replacement = _as_classmethod(build(current))
    setattr(replacement.__func__, _MARKER, True)
    setattr(model, name, replacement)


def _delivering_to_encrypted_queues_only_with_the_keys_grant(
    publish: Callable[..., Any],
) -> Callable[..., Any]:
    """SNS delivers to an SQS queue encrypted with a KMS key only if the key's policy lets
    sns.amazonaws.com make data keys and decrypt (never with the AWS-managed ``alias/aws/sqs``);
    otherwise the message is dropped, as AWS drops it (moto delivers it regardless)."""

    @functools.wraps(publish)
    def wrapper(self: Subscription, *args: Any, **kwargs: Any) -> Any:
        if self.protocol == "sqs":
            region, account, name = self.endpoint.split(":")[3:6]
            queue = sqs_backends[account][region].queues.get(name)
            key = getattr(queue, "kms_master_key_id", None) if queue else None
            refused = key and key_refuses(account, region, key, SNS_PRINCIPAL, PUBLISH_CALLS)
            if refused:
                log.warning("SNS cannot deliver to %s: %s", self.endpoint, refused)
                return None
        return publish(self, *args, **kwargs)

    setattr(wrapper, _MARKER, True)
    return wrapper


def install_encryption() -> None:
    """Apply the fixes above to moto's models (idempotent)."""
    _replace(Key, "create_from_cloudformation_json", _key_created)
    _replace(Key, "update_from_cloudformation_json", lambda _original: _key_updated)
    _replace(LogGroup, "create_from_cloudformation_json", _log_group_created)
    _replace(Topic, "update_from_cloudformation_json", lambda _original: _topic_updated)
    _replace(Queue, "update_from_cloudformation_json", lambda _original: _queue_updated)
    _replace(FakeBucket, "create_from_cloudformation_json", _bucket_created)
    _replace(FakeBucket, "update_from_cloudformation_json", _bucket_updated)
    if not getattr(Subscription.publish, _MARKER, False):
        Subscription.publish = _delivering_to_encrypted_queues_only_with_the_keys_grant(
            Subscription.publish)
