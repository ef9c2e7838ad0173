"""Resource policies: AWS::SNS::TopicPolicy, AWS::SQS::QueuePolicy, AWS::S3::BucketPolicy.

The three share one shape (a document attached to one or more targets, detached again on update
and delete), so they share ``_ResourcePolicy``; each type says only where its targets are and how
its service attaches a policy.
"""

from __future__ import annotations

import json
import re
from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.s3.models import s3_backends
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends
from moto.utilities.arns import parse_arn
from moto.utilities.utils import get_partition

from .base import _StackResource
from .errors import _is_not_found
from .properties import _json_text


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
