"""CloudFormation resource types that moto 5.2.5 lacks, and the stack-engine fixes they need.

iamwatchd deploys its safety net with CloudFormation: a trail logging to a CloudWatch Logs group
(through an IAM role), a metric filter on that group, an alarm on the filter's metric, an SNS topic
with an e-mail subscription, optionally an SQS queue subscribed to the topic (with its queue
policy) and optionally the trail's S3 bucket with a bucket policy that lets CloudTrail write.
moto parses such a template but *silently skips* every resource type it has no model for (one log
warning, no error): the stack reports CREATE_COMPLETE while the trail, the filter, the alarm, the
subscriptions and every policy are missing. Tests written against that would prove nothing.

This package adds those types as ``CloudFormationModel`` subclasses that drive moto's own service
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
subclasses only. Every resource class therefore names ``CloudFormationModel`` as a direct base;
the behaviour they share lives in mixins that are deliberately not CloudFormationModels. Defining
the classes (importing this package) registers them; ``install()`` additionally resets moto's
cached type registry and applies the stack-engine fixes listed in its docstring.

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

Layout (each module imports only modules listed above it):

    errors.py            CloudFormation's own errors; the ResourceStatusReason of a service error
    properties.py        reading template property values ("true", "300", JSON text or objects)
    policy_eval.py       the small policy evaluator CloudTrail's checks use
    encryption.py        KMS keys in stacks, the encryption properties moto drops, key policy checks
    base.py              _StackResource, the lifecycle every type below shares
    trail.py             AWS::CloudTrail::Trail and CloudTrail's prerequisite checks
    logs.py              AWS::Logs::MetricFilter
    alarm.py             AWS::CloudWatch::Alarm
    sns.py               AWS::SNS::Subscription, confirm_subscription()
    policies.py          AWS::SNS::TopicPolicy, AWS::SQS::QueuePolicy, AWS::S3::BucketPolicy
    resource_patches.py  fixes to moto's per-resource creation and update (moto's parsing module)
    stack_patches.py     fixes to moto's stack operations: failures, rollbacks, change sets
    stacksets.py         service-managed stack sets' automatic deployment to new accounts
    __init__.py          RESOURCE_CLASSES and install(), which applies the fixes
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.models import CloudFormationBackend, Stack
from moto.core.common_models import CloudFormationModel
from moto.iam import models as iam_models

from .alarm import CloudWatchAlarm
from .encryption import install_encryption, key_refuses
from .logs import LogsMetricFilter
from .policies import S3BucketPolicy, SNSTopicPolicy, SQSQueuePolicy
from .resource_patches import (
    _counting_sub_variables_as_references,
    _creating_dependencies_first_and_naming_failures,
    _naming_update_failures,
    _reconciling_conditions,
    _storing_policy_documents_as_json,
)
from .sns import SNSSubscription, confirm_subscription
from .stacksets import install as install_stacksets
from .stack_patches import (
    _executing_change_sets_fully,
    _listing_only_existing_resources,
    _rolling_back_failed_creation,
    _rolling_back_failed_update,
)
from .trail import CloudTrailTrail

__all__ = [
    "RESOURCE_CLASSES",
    "CloudFormationModel",
    "CloudTrailTrail",
    "CloudWatchAlarm",
    "LogsMetricFilter",
    "S3BucketPolicy",
    "SNSSubscription",
    "SNSTopicPolicy",
    "SQSQueuePolicy",
    "confirm_subscription",
    "install",
    "key_refuses",
]

RESOURCE_CLASSES: tuple[type[CloudFormationModel], ...] = (
    CloudTrailTrail,
    LogsMetricFilter,
    CloudWatchAlarm,
    SNSSubscription,
    SNSTopicPolicy,
    SQSQueuePolicy,
    S3BucketPolicy,
)


_PATCH_MARKER = "_iamwatchd_cfn_patch"


def _patch(owner: Any, name: str, wrap: Callable[[Any], Any]) -> None:
    """Replace ``owner.name`` by ``wrap(owner.name)`` once, however often install() runs.

    For a property the getter is wrapped (a property object takes no marker attribute).
    """
    current = getattr(owner, name)
    is_property = isinstance(current, property)
    function = current.fget if is_property else current
    if getattr(function, _PATCH_MARKER, False):
        return
    replacement = wrap(function)
    setattr(replacement, _PATCH_MARKER, True)
    setattr(owner, name, property(replacement) if is_property else replacement)


def install() -> None:
    """Make moto's CloudFormation create, update and delete the resource types of this package.

    Safe to call more than once. It
    - clears moto's cached type registry (get_model_list/get_model_map/get_name_type_map are
      lru_cached: if anything parsed a template before this package was imported, the cache
      lacks these types and they would still be skipped), then checks they are registered;
    - honours DependsOn on every creation path and names the resource that failed;
    - rolls a stack back when a resource fails: CreateStack and CREATE change sets end in
      ROLLBACK_COMPLETE, UpdateStack and UPDATE change sets in UPDATE_ROLLBACK_COMPLETE;
    - refreshes Outputs/Exports after ExecuteChangeSet;
    - lists only the resources a stack has (none left out by a false Condition) in
      DescribeStackResource(s) and ListStackResources;
    - counts Fn::Sub "${Parameter}" as a reference when deciding what a stack update touches;
    - honours Conditions on update (create what became true, delete what became false) and
      keeps resources of types moto cannot update in place;
    - stores a template's inline policies as JSON text, as IAM does (moto kept the parsed
      object, and GetAccountAuthorizationDetails then failed for the whole account);
    - applies the KMS key and encryption properties moto drops and updates them in place
      (``encryption``);
    - deploys auto-deploying service-managed stack sets to accounts created in or moved into
      a targeted OU (``stacksets``).
    """
    _patch(parsing, "parse_and_create_resource", _creating_dependencies_first_and_naming_failures)
    _patch(parsing, "parse_and_update_resource", _naming_update_failures)
    _patch(parsing, "get_references_from_template", _counting_sub_variables_as_references)
    _patch(parsing.ResourceMap, "update", _reconciling_conditions)
    _patch(CloudFormationBackend, "create_stack", _rolling_back_failed_creation)
    _patch(CloudFormationBackend, "update_stack", _rolling_back_failed_update)
    _patch(CloudFormationBackend, "execute_change_set", _executing_change_sets_fully)
    _patch(Stack, "stack_resources", _listing_only_existing_resources)
    for entity in (iam_models.Role, iam_models.User, iam_models.Group):
        _patch(entity, "put_policy", _storing_policy_documents_as_json)
    install_encryption()
    install_stacksets(_patch)

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
