"""``install()``: puts the evaluator into moto's CloudWatch Logs backend.

moto's own ``EventMessageFilter`` matches every JSON pattern, so FilterLogEvents and StartLiveTail
get ``compile_pattern`` instead, and the calls that take a pattern reject a malformed one with
the real API's InvalidParameterException. (Evaluating metric filters on delivered events is
delivery.py's job; it calls ``compile_pattern`` and ``Pattern.value`` directly.)
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Mapping

from .parser import compile_pattern
from .patterns import Pattern
from .syntax import FilterPatternError

_INSTALLED = "_iamwatchd_filterpattern_installed"


class _MotoEventMessageFilter:
    """Drop-in for ``moto.logs.utils.EventMessageFilter`` (same constructor and ``matches``)."""

    def __init__(self, pattern: str | None):
        self._pattern = compile_pattern(pattern or "")

    def matches(self, message: str) -> bool:
        return self._pattern.matches(message)


def _validating(
    method: Callable[..., Any],
    parameter: str,
    what: str,
    also: Callable[[Pattern, Mapping[str, Any]], None] | None = None,
) -> Callable[..., Any]:
    """Wraps a LogsBackend method so that a malformed pattern in ``parameter`` is answered
    with the real API's InvalidParameterException before moto does anything."""
    from moto.logs.exceptions import InvalidParameterException

    signature = inspect.signature(method)

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(*args, **kwargs).arguments
        try:
            pattern = compile_pattern(arguments.get(parameter) or "")
            if also is not None:
                also(pattern, arguments)
        except FilterPatternError as error:
            # Name the pattern as the operation does ("metric filter pattern"); other invalid
            # inputs (a metric value) keep their own noun.
            noun = what if error.what == "filter pattern" else None
            raise InvalidParameterException(msg=error.describe(noun)) from error
        return method(*args, **kwargs)

    return wrapper


def _check_metric_values(pattern: Pattern, arguments: Mapping[str, Any]) -> None:
    """PutMetricFilter: every transformation's metricValue must be resolvable by the pattern."""
    for transformation in arguments.get("metric_transformations") or []:
        metric_value = transformation.get("metricValue")
        if metric_value is not None:
            pattern.check_metric_value(str(metric_value))


def install() -> None:
    """Makes moto's CloudWatch Logs use this evaluator. Idempotent.

    * FilterLogEvents and StartLiveTail match with ``compile_pattern`` (moto looks its
      ``EventMessageFilter`` up in ``moto.logs.models`` at call time, so replacing that name is
      enough).
    * FilterLogEvents, StartLiveTail, PutMetricFilter and PutSubscriptionFilter reject a
      malformed pattern with InvalidParameterException; PutMetricFilter also rejects a
      metricValue the pattern cannot resolve (``$.x`` on a non-JSON pattern).
    """
    from moto.logs import models

    if getattr(models, _INSTALLED, False):
        return
    backend = models.LogsBackend
    models.EventMessageFilter = _MotoEventMessageFilter  # type: ignore[misc,assignment]
    backend.filter_log_events = _validating(  # type: ignore[method-assign]
        backend.filter_log_events, "filter_pattern", "filter pattern"
    )
    backend.start_live_tail = _validating(  # type: ignore[method-assign]
        backend.start_live_tail, "log_event_filter_pattern", "filter pattern"
    )
    backend.put_subscription_filter = _validating(  # type: ignore[method-assign]
        backend.put_subscription_filter, "filter_pattern", "subscription filter pattern"
    )
    backend.put_metric_filter = _validating(  # type: ignore[method-assign]
        backend.put_metric_filter, "filter_pattern", "metric filter pattern", _check_metric_values
    )
    setattr(models, _INSTALLED, True)
