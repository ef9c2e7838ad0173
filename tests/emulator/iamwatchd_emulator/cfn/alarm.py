"""AWS::CloudWatch::Alarm through moto's PutMetricAlarm/DeleteAlarms, keeping an updated
alarm's state as PutMetricAlarm does."""

from __future__ import annotations

from typing import Any

from moto.cloudwatch.models import (
    Alarm,
    Dimension,
    Metric,
    MetricDataQuery,
    MetricStat,
    cloudwatch_backends,
)
from moto.core.common_models import CloudFormationModel

from .base import _StackResource
from .errors import ResourceAlreadyExists
from .properties import _bool, _optional_bool, _optional_float, _optional_int, _tags


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
