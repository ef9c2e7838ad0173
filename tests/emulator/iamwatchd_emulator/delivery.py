"""The alarm path: trail → log group → metric filter → metric → alarm → SNS.

moto stores each piece but nothing flows between them. The pump, run every ``Settings.tick``
seconds, does what AWS does in the background:

1. delivers each recorded event, once its log delay has passed, to the log group of every logging
   trail that would receive it (same region or multi-region; IAM's global events only to trails
   that include global service events; event selectors respected), the account's own trails
   and its organization's organization trails (``IsOrganizationTrail``, in the management
   account: every member's records reach the one log group, ``recipientAccountId`` telling
   them apart);
2. evaluates each metric filter of that log group on the delivered event and puts the datapoint;
3. publishes each SQS queue's ``AWS/SQS ApproximateAgeOfOldestMessage`` (dimension
   ``QueueName``), at most once a second per queue, so alarms on a consumer that stopped
   reading (iamwatchd's dead-man's switch) can fire;
4. evaluates every metric alarm over its periods and, on a state change, publishes the real
   CloudWatch alarm JSON to the SNS topics among its actions (moto fans that out to SQS) —
   except to a topic encrypted with a KMS key whose policy does not let
   cloudwatch.amazonaws.com use it (or with the AWS-managed SNS key): AWS drops that action
   silently, and so does the pump (counter ``alarm_notifications_refused_by_kms``).
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from moto.cloudtrail.models import cloudtrail_backends
from moto.cloudwatch.models import MetricAggregatedDatum, MetricDatum, cloudwatch_backends
from moto.logs.models import logs_backends
from moto.organizations.models import organizations_backends
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends

from .cfn.encryption import CLOUDWATCH_PRINCIPAL, PUBLISH_CALLS, key_refuses
from .filterpattern import FilterPatternError, compile_pattern
from .records import GLOBAL_SERVICES
from .state import EmulatorState, StoredEvent, clock

log = logging.getLogger("iamwatchd_emulator.delivery")

#: Region display names as CloudWatch writes them into alarm messages.
REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
    "eu-west-2": "EU (London)",
    "eu-central-1": "EU (Frankfurt)",
    "ap-southeast-2": "Asia Pacific (Sydney)",
    "ap-northeast-1": "Asia Pacific (Tokyo)",
}

#: Seconds between two ApproximateAgeOfOldestMessage datapoints of one queue (AWS: a minute;
#: faster here so tests do not wait, slower than the tick so the metric store stays small).
QUEUE_METRIC_INTERVAL = 1.0

#: Log events older than this are refused by PutLogEvents; replayed old records get "now".
MAX_LOG_EVENT_AGE = 13 * 24 * 3600

COMPARISONS = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}

STATISTIC_NAMES = {
    "Sum": "SUM",
    "SampleCount": "SAMPLE_COUNT",
    "Average": "AVERAGE",
    "Minimum": "MINIMUM",
    "Maximum": "MAXIMUM",
}


def existing(backend_dict: Any) -> Iterator[tuple[str, str, Any]]:
    """(account, region, backend) for the backends moto has created, without creating more."""
    for account, regions in list(dict.items(backend_dict)):
        for region, backend in list(dict.items(regions)):
            yield account, region, backend


def _is_global(event: StoredEvent) -> bool:
    source = str(event.record.get("eventSource", ""))
    return source.split(".", 1)[0] in GLOBAL_SERVICES


def _selectors_allow(trail: Any, record: dict[str, Any]) -> bool:
    selectors = getattr(trail, "event_selectors", None) or []
    if not selectors:
        return True  # the default: all management events, read and write
    read_only = bool(record.get("readOnly"))
    for selector in selectors:
        if not selector.get("IncludeManagementEvents", True):
            continue
        kind = selector.get("ReadWriteType", "All")
        if kind == "All" or (kind == "ReadOnly") == read_only:
            return True
    return False


def management_account_of(account: str) -> str | None:
    """The management account of the organization ``account`` is a member of, if any."""
    owner = organizations_backends.master_accounts.get(account)
    return owner[0] if owner else None


def receiving_trails(event: StoredEvent) -> Iterator[Any]:
    """The logging trails with a log group that receive this event: the account's own, and
    the organization trails of its organization's management account (which AWS runs in every
    member account and delivers to the management account's log group)."""
    management = management_account_of(event.account)
    for account, region, backend in existing(cloudtrail_backends):
        own = account == event.account
        if not own and account != management:
            continue
        for trail in list(backend.trails.values()):
            if trail.region_name != region:
                continue  # moto lists multi-region trails in every region; use the home one
            if not own and not getattr(trail, "is_org_trail", False):
                continue
            if not (trail.status.is_logging and trail.cw_log_group_arn):
                continue
            if trail.status.started.replace(tzinfo=timezone.utc).timestamp() > event.recorded_at:
                continue  # recorded before this trail started logging
            if not (trail.is_multi_region or trail.region_name == event.region):
                continue
            if _is_global(event) and not trail.include_global_service_events:
                continue
            if _selectors_allow(trail, event.record):
                yield trail


def _log_group_of(arn: str) -> tuple[str, str, str]:
    """(account, region, name) from ``arn:aws:logs:REGION:ACCOUNT:log-group:NAME[:*]``."""
    parts = arn.split(":")
    if len(parts) < 7 or parts[5] != "log-group":
        raise ValueError(f"not a log group ARN: {arn}")
    return parts[4], parts[3], parts[6]


class Pump:
    """Moves events and evaluates alarms; ``run_once`` is the whole step, for tests too."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._step_lock = threading.Lock()
        self._queue_metric_at: dict[tuple[str, str, str], float] = {}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="delivery-pump", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.state.settings.tick):
            try:
                self.run_once()
            except Exception:  # keep pumping; a broken resource must not stop delivery
                log.exception("delivery pump step failed")

    def run_once(self, now: float | None = None) -> None:
        with self._step_lock:
            now = clock() if now is None else now
            for event in self.state.take_due_for_delivery(now):
                self._deliver(event, now)
            self._publish_queue_ages(now)
            self._evaluate_alarms(now)

    # -- trail → log group → metric filters ----------------------------------------------------

    def _deliver(self, event: StoredEvent, now: float) -> None:
        message = json.dumps(event.record)
        stamp = event.event_time if event.event_time >= now - MAX_LOG_EVENT_AGE else now
        timestamp_ms = int(stamp * 1000)
        for trail in receiving_trails(event):
            # The trail's own account: an organization trail delivers members' records there.
            account, region, group_name = _log_group_of(trail.cw_log_group_arn)
            logs = logs_backends[account][region]
            group = logs.groups.get(group_name)
            if group is None:
                log.warning("trail %s: log group %s does not exist", trail.trail_name, group_name)
                continue
            stream = f"{event.account}_CloudTrail_{event.region}"
            if stream not in group.streams:
                logs.create_log_stream(group_name, stream)
            logs.put_log_events(group_name, stream, [{"timestamp": timestamp_ms, "message": message}])
            with self.state.lock:
                self.state.counters["log_events_delivered"] += 1
            # Datapoints are stamped when they arrive, not with the event's (whole-second, often
            # earlier) time: real CloudWatch alarms also evaluate data that arrives late for a
            # period, which this evaluator (current periods only) would otherwise never see.
            self._apply_metric_filters(logs, group_name, message, now, account, region)

    def _apply_metric_filters(
        self, logs: Any, group_name: str, message: str, stamp: float, account: str, region: str
    ) -> None:
        for metric_filter in logs.filters.get_matching_filters(log_group_name=group_name):
            try:
                pattern = compile_pattern(metric_filter["filterPattern"])
            except FilterPatternError:
                continue  # PutMetricFilter refuses these; an old one is simply inert
            if not pattern.matches(message):
                continue
            for transformation in metric_filter["metricTransformations"]:
                value = pattern.value(message, str(transformation.get("metricValue", "1")))
                if value is None:
                    continue
                cloudwatch_backends[account][region].put_metric_data(
                    transformation["metricNamespace"],
                    [
                        {
                            "MetricName": transformation["metricName"],
                            "Value": value,
                            "Timestamp": datetime.fromtimestamp(stamp, tz=timezone.utc),
                            "Dimensions": [
                                {"Name": k, "Value": v}
                                for k, v in (transformation.get("dimensions") or {}).items()
                            ],
                        }
                    ],
                )
                with self.state.lock:
                    self.state.counters["metric_datapoints"] += 1

    # -- SQS metrics ----------------------------------------------------------------------------

    def _publish_queue_ages(self, now: float) -> None:
        for account, region, backend in existing(sqs_backends):
            for name, queue in list(backend.queues.items()):
                key = (account, region, name)
                if now - self._queue_metric_at.get(key, -math.inf) < QUEUE_METRIC_INTERVAL:
                    continue
                self._queue_metric_at[key] = now
                cloudwatch_backends[account][region].put_metric_data(
                    "AWS/SQS",
                    [
                        {
                            "MetricName": "ApproximateAgeOfOldestMessage",
                            "Value": oldest_message_age(queue, now),
                            "Unit": "Seconds",
                            # Naive UTC, as moto stores PutMetricData's own timestamps, so
                            # GetMetricStatistics can compare them.
                            "Timestamp": datetime.fromtimestamp(now, tz=timezone.utc).replace(
                                tzinfo=None),
                            "Dimensions": [{"Name": "QueueName", "Value": name}],
                        }
                    ],
                )
                with self.state.lock:
                    self.state.counters["queue_age_datapoints"] += 1

    # -- alarms ---------------------------------------------------------------------------------

    def _evaluate_alarms(self, now: float) -> None:
        for account, region, backend in existing(cloudwatch_backends):
            for alarm in list(backend.alarms.values()):
                if alarm.metric_name and alarm.period and alarm.comparison_operator in COMPARISONS:
                    self._evaluate(alarm, backend, account, region, now)

    def _evaluate(self, alarm: Any, backend: Any, account: str, region: str, now: float) -> None:
        period = int(alarm.period)
        count = int(alarm.evaluation_periods or 1)
        needed = int(alarm.datapoints_to_alarm or count)
        current = math.floor(now / period) * period
        windows = [current - (count - 1 - i) * period for i in range(count)]
        values = [self._statistic(alarm, backend, start, start + period) for start in windows]

        treat = alarm.treat_missing_data or "missing"
        breaching = 0
        evaluated = 0
        for value in values:
            if value is None:
                if treat in ("breaching", "notBreaching"):
                    evaluated += 1
                    breaching += treat == "breaching"
                continue
            evaluated += 1
            breaching += COMPARISONS[alarm.comparison_operator](value, float(alarm.threshold))
        if breaching >= needed:
            new_state = "ALARM"
        elif evaluated:
            new_state = "OK"
        elif treat == "ignore":
            return
        else:
            new_state = "INSUFFICIENT_DATA"
        if new_state == alarm.state_value:
            return
        present = [(w, v) for w, v in zip(windows, values) if v is not None]
        reason = self._reason(alarm, new_state, present, breaching, needed, count)
        self._transition(alarm, backend, account, region, new_state, reason, now)

    @staticmethod
    def _statistic(alarm: Any, backend: Any, start: float, end: float) -> float | None:
        wanted = {(d.name, d.value) for d in alarm.dimensions}
        total = minimum = maximum = None
        samples = 0.0
        for datum in list(backend.metric_data):
            if datum.namespace != alarm.namespace or datum.name != alarm.metric_name:
                continue
            if {(d.name, d.value) for d in datum.dimensions} != wanted:
                continue
            moment = datum.timestamp
            if moment.tzinfo is None:  # moto keeps API-put datapoints naive, in UTC
                moment = moment.replace(tzinfo=timezone.utc)
            stamp = moment.timestamp()
            if not start <= stamp < end:
                continue
            if isinstance(datum, MetricDatum):
                s, lo, hi, n = datum.value, datum.value, datum.value, 1.0
            elif isinstance(datum, MetricAggregatedDatum):
                s, lo, hi, n = datum.sum_stat, datum.min_stat, datum.max_stat, datum.sample_count
            else:
                continue
            total = s if total is None else total + s
            minimum = lo if minimum is None else min(minimum, lo)
            maximum = hi if maximum is None else max(maximum, hi)
            samples += n
        if total is None:
            return None
        return {
            "Sum": total,
            "SampleCount": samples,
            "Average": total / samples if samples else 0.0,
            "Minimum": minimum,
            "Maximum": maximum,
        }.get(alarm.statistic or "Sum", total)

    @staticmethod
    def _reason(alarm: Any, state: str, present: list, breaching: int, needed: int, count: int) -> str:
        if state == "INSUFFICIENT_DATA":
            return "Insufficient Data: no datapoints were received for the evaluation periods."
        points = ", ".join(
            f"{v} ({datetime.fromtimestamp(w, tz=timezone.utc).strftime('%d/%m/%y %H:%M:%S')})"
            for w, v in present
        )
        relation = "was" if state == "ALARM" else "was not"
        return (
            f"Threshold Crossed: {breaching} out of the last {count} datapoints [{points}] "
            f"{relation} {_operator_text(alarm.comparison_operator)} the threshold "
            f"({float(alarm.threshold)}) (minimum {needed} datapoint"
            f"{'s' if needed != 1 else ''} for OK -> ALARM transition)."
        )

    def _transition(
        self, alarm: Any, backend: Any, account: str, region: str, state: str, reason: str, now: float
    ) -> None:
        old_state = alarm.state_value
        reason_data = json.dumps({"version": "1.0", "queryDate": _alarm_time(now)})
        backend.set_alarm_state(alarm.name, reason, reason_data, state)
        with self.state.lock:
            self.state.counters[f"alarm_{state.lower()}"] += 1
        if not alarm.actions_enabled:
            return
        actions = {
            "ALARM": alarm.alarm_actions,
            "OK": alarm.ok_actions,
            "INSUFFICIENT_DATA": alarm.insufficient_data_actions,
        }[state]
        message = json.dumps(alarm_message(alarm, account, region, old_state, state, reason, now))
        subject = f'{state}: "{alarm.name}" in {REGION_NAMES.get(region, region)}'[:100]
        for action in actions or []:
            if not action.startswith("arn:aws:sns:"):
                continue
            topic_region, topic_account = action.split(":")[3], action.split(":")[4]
            topic = sns_backends[topic_account][topic_region].topics.get(action)
            if topic is None:
                log.warning("alarm %s: action topic %s does not exist", alarm.name, action)
                continue
            refused = _kms_refuses_alarm(topic, topic_account, topic_region)
            if refused:
                # What AWS does: the alarm changes state, the action fails, nothing is published
                # and only the alarm's history says why.
                log.warning("alarm %s: cannot publish to %s: %s", alarm.name, action, refused)
                with self.state.lock:
                    self.state.counters["alarm_notifications_refused_by_kms"] += 1
                continue
            topic.publish(message, subject=subject)
            with self.state.lock:
                self.state.counters["alarm_notifications"] += 1


def _kms_refuses_alarm(topic: Any, account: str, region: str) -> str | None:
    """Why CloudWatch cannot publish to ``topic`` (encrypted with a key whose policy does not let
    cloudwatch.amazonaws.com make data keys and decrypt, or with the AWS-managed SNS key)."""
    key = getattr(topic, "kms_master_key_id", None)
    if not key:
        return None
    return key_refuses(account, region, key, CLOUDWATCH_PRINCIPAL, PUBLISH_CALLS)


def oldest_message_age(queue: Any, now: float) -> float:
    """Seconds since the oldest message still in ``queue`` (received or not) was sent; 0 when
    empty. moto stamps ``sent_timestamp`` in milliseconds when a message is added."""
    stamps = [m.sent_timestamp for m in list(queue._messages) if m.sent_timestamp is not None]
    if not stamps:
        return 0.0
    return max(0.0, now - min(stamps) / 1000)


def _operator_text(operator: str) -> str:
    return {
        "GreaterThanOrEqualToThreshold": "greater than or equal to",
        "GreaterThanThreshold": "greater than",
        "LessThanThreshold": "less than",
        "LessThanOrEqualToThreshold": "less than or equal to",
    }[operator]


def _alarm_time(epoch: float) -> str:
    """CloudWatch's alarm timestamp format: ``2015-06-03T17:43:27.123+0000``."""
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def alarm_message(
    alarm: Any, account: str, region: str, old: str, new: str, reason: str, now: float
) -> dict[str, Any]:
    """The JSON CloudWatch publishes to an alarm's SNS topics."""
    return {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description or None,
        "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": _alarm_time(
            alarm.configuration_updated_timestamp.timestamp()
        ),
        "NewStateValue": new,
        "NewStateReason": reason,
        "StateChangeTime": _alarm_time(now),
        "Region": REGION_NAMES.get(region, region),
        "AlarmArn": alarm.alarm_arn,
        "OldStateValue": old,
        "OKActions": list(alarm.ok_actions or []),
        "AlarmActions": list(alarm.alarm_actions or []),
        "InsufficientDataActions": list(alarm.insufficient_data_actions or []),
        "Trigger": {
            "MetricName": alarm.metric_name,
            "Namespace": alarm.namespace,
            "StatisticType": "Statistic",
            "Statistic": STATISTIC_NAMES.get(alarm.statistic or "Sum", str(alarm.statistic).upper()),
            "Unit": alarm.unit,
            "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions],
            "Period": int(alarm.period),
            "EvaluationPeriods": int(alarm.evaluation_periods or 1),
            "DatapointsToAlarm": int(alarm.datapoints_to_alarm or alarm.evaluation_periods or 1),
            "ComparisonOperator": alarm.comparison_operator,
            "Threshold": float(alarm.threshold),
            "TreatMissingData": alarm.treat_missing_data or "missing",
            "EvaluateLowSampleCountPercentile": "",
        },
    }
