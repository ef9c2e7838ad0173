"""AWS::Logs::MetricFilter through moto's PutMetricFilter/DeleteMetricFilter."""

from __future__ import annotations

from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.logs.exceptions import ResourceNotFoundException as LogGroupNotFound
from moto.logs.models import logs_backends

from .base import _StackResource
from .errors import PropertiesValidationError, ResourceAlreadyExists
from .properties import _as_list, _missing_keys


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
