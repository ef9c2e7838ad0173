"""AWS::SNS::Subscription, with e-mail subscriptions pending until their recipient confirms.

moto confirms every subscription at once; SNS leaves an e-mail subscription
"PendingConfirmation" until someone follows the link, and the daemon's checks report exactly
that. ``confirm_subscription`` is the emulator's stand-in for the click (the control endpoint
calls it).
"""

from __future__ import annotations

from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.sns.exceptions import SNSNotFoundError
from moto.sns.models import Subscription, sns_backends
from moto.utilities.arns import parse_arn

from .base import _StackResource
from .properties import _bool, _json_text


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
