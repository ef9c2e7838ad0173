"""Compiled patterns (``Pattern`` and its four kinds) and the metric values they resolve.

A ``Pattern`` is what ``compile_pattern`` returns: ``matches(message)`` decides whether a log
event matches, ``value(message, metric_value)`` what a metric filter publishes for it.
"""

from __future__ import annotations

import abc
import functools
from dataclasses import dataclass
from decimal import Decimal

from .nodes import (
    Selector,
    _Column,
    _leaf_text,
    _Node,
    _parse_json_object,
    _select,
    _split_fields,
)
from .scanner import _Scanner
from .syntax import _NAME_CHARS, FilterPatternError, _as_number


# --------------------------------------------------------------------------------------------
# Metric values


@dataclass(frozen=True)
class _MetricValue:
    """A parsed metricValue: a constant, a JSON selector (``$.a.b``) or a field (``$bytes``)."""

    constant: Decimal | None = None
    selector: Selector | None = None
    field: str | None = None


@functools.lru_cache(maxsize=256)
def _parse_metric_value(text: str) -> _MetricValue:
    stripped = text.strip()
    number = _as_number(stripped)
    if number is not None:
        return _MetricValue(constant=number)
    if stripped.startswith("$.") or stripped.startswith("$["):
        scanner = _Scanner(text, what="metric value")
        selector = scanner.selector()
        scanner.end("after the selector")
        return _MetricValue(selector=selector)
    if stripped.startswith("$") and len(stripped) > 1 and set(stripped[1:]) <= _NAME_CHARS:
        return _MetricValue(field=stripped[1:])
    raise FilterPatternError(
        "expected a number, a JSON selector like $.latency or a field like $bytes",
        0,
        text,
        what="metric value",
    )


def _number_of(text: str | None) -> float | None:
    number = None if text is None else _as_number(text.strip())
    return None if number is None else float(number)


# --------------------------------------------------------------------------------------------
# Compiled patterns


class Pattern(abc.ABC):
    """A compiled filter pattern. Immutable and shared (``compile_pattern`` caches it)."""

    #: "all", "terms", "json" or "delimited".
    kind: str

    def __init__(self, source: str):
        self.source = source

    @abc.abstractmethod
    def matches(self, message: str) -> bool:
        """Whether a log event with this message matches, as CloudWatch Logs decides it."""

    def value(self, message: str, metric_value: str) -> float | None:
        """The metric value a metric filter publishes for this event, or None for no datapoint.

        ``metric_value`` is a number literal ("1") or a reference into the event: a JSON
        selector ("$.latency") for JSON patterns, a field ("$bytes" or "$7") for space-delimited
        ones. None when the event does not match, or the referenced value is missing or not a
        number. Raises FilterPatternError for a metric value this pattern cannot resolve.
        """
        reference = self.check_metric_value(metric_value)
        if not self.matches(message):
            return None
        if reference.constant is not None:
            return float(reference.constant)
        return self._referenced_number(message, reference)

    def check_metric_value(self, metric_value: str) -> _MetricValue:
        """Parses ``metric_value``; raises FilterPatternError if this kind of pattern cannot
        resolve it (the reason PutMetricFilter rejects it)."""
        reference = _parse_metric_value(metric_value)
        if reference.constant is None and not self._resolves(reference):
            needed = "a JSON" if reference.selector is not None else "a space-delimited"
            raise FilterPatternError(
                f"{metric_value!r} refers to the log event, which needs {needed} filter pattern"
                " that provides it",
                0,
                metric_value,
                what="metric value",
            )
        return reference

    def _resolves(self, reference: _MetricValue) -> bool:
        """Whether this pattern can resolve the (non-constant) reference."""
        return False

    def _referenced_number(self, message: str, reference: _MetricValue) -> float | None:
        """The number a reference points at in a matching message; None if absent or not numeric."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.source!r}>"


class _MatchAll(Pattern):
    kind = "all"

    def matches(self, message: str) -> bool:
        return True


class _TermsPattern(Pattern):
    """Groups of terms: the event matches if any group does; a group matches if all its terms
    occur in the message and none of its excluded terms does.

    ``?`` starts a new group and terms without ``?`` join the current one, which is how AWS CDK's
    ``anyTermGroup`` renders ``?"ERROR" "MainThread" ?"WARN" "Deadlock"``.
    """

    kind = "terms"

    def __init__(self, source: str, groups: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]):
        super().__init__(source)
        self.groups = groups

    def matches(self, message: str) -> bool:
        return any(
            all(term in message for term in required)
            and not any(term in message for term in excluded)
            for required, excluded in self.groups
        )


class _JsonPattern(Pattern):
    kind = "json"

    def __init__(self, source: str, expression: _Node):
        super().__init__(source)
        self.expression = expression

    def matches(self, message: str) -> bool:
        document = _parse_json_object(message)
        return document is not None and self.expression.evaluate(document)

    def _resolves(self, reference: _MetricValue) -> bool:
        return reference.selector is not None

    def _referenced_number(self, message: str, reference: _MetricValue) -> float | None:
        document = _parse_json_object(message)
        assert document is not None and reference.selector is not None  # matched before
        return _number_of(_leaf_text(_select(document, reference.selector)))


class _DelimitedPattern(Pattern):
    kind = "delimited"

    def __init__(self, source: str, columns: tuple[_Column, ...]):
        super().__init__(source)
        self.columns = columns
        self.ellipsis_at = next((i for i, c in enumerate(columns) if c.ellipsis), None)
        self.names = frozenset(c.name for c in columns if c.name is not None)

    def _bind(self, fields: list[str]) -> dict[str, str] | None:
        """Maps column names to fields; None if the line has the wrong number of fields."""
        if self.ellipsis_at is None:
            if len(fields) != len(self.columns):
                return None
            pairs = zip(self.columns, fields)
        else:
            before = self.columns[: self.ellipsis_at]
            after = self.columns[self.ellipsis_at + 1 :]
            if len(fields) < len(before) + len(after):
                return None
            tail = fields[len(fields) - len(after) :] if after else []
            pairs = list(zip(before, fields)) + list(zip(after, tail))
        return {column.name: text for column, text in pairs if column.name is not None}

    def matches(self, message: str) -> bool:
        bindings = self._bind(_split_fields(message))
        return bindings is not None and all(
            column.expression.evaluate(bindings)
            for column in self.columns
            if column.expression is not None
        )

    def _resolves(self, reference: _MetricValue) -> bool:
        return reference.field is not None and (
            reference.field in self.names or reference.field.isdigit()
        )

    def _referenced_number(self, message: str, reference: _MetricValue) -> float | None:
        assert reference.field is not None
        fields = _split_fields(message)
        if reference.field in self.names:
            bindings = self._bind(fields) or {}
            return _number_of(bindings.get(reference.field))
        position = int(reference.field)  # "$7": the 7th field of the line, as AWS numbers them
        return _number_of(fields[position - 1]) if 1 <= position <= len(fields) else None
