"""CloudWatch Logs filter patterns, evaluated the way the real service evaluates them.

Why this exists: the daemon's alarm path is a CloudWatch Logs metric filter whose pattern is
generated from the rule catalogue (``{ ($.eventSource = "iam.amazonaws.com") && ... }``). moto's
own ``EventMessageFilter`` treats every JSON pattern as "unsupported" and matches everything, so a
wrong pattern would pass every test. This module is a faithful, self-contained implementation of
the filter-pattern syntax (AWS docs: "Filter pattern syntax for metric filters, subscription
filters, filter log events, and Live Tail"), and ``install()`` puts it into moto so that
FilterLogEvents, StartLiveTail and the validation of PutMetricFilter / PutSubscriptionFilter use it.

API used by the rest of the emulator::

    pattern = compile_pattern('{ $.eventSource = "iam.amazonaws.com" }')   # cached
    pattern.matches(message)            -> bool
    pattern.value(message, "1")         -> 1.0   (None when the event does not match)
    pattern.value(message, "$.latency") -> the number at $.latency, None if missing/non-numeric

Pattern kinds (chosen by the first non-blank character, as AWS does):

* ``""`` (or blanks) matches every event.
* Terms: ``ERROR``, ``"quoted phrase"``, ``ERROR Exception`` (all), ``?ERROR ?WARN`` (any),
  ``ERROR -WARN`` (exclusion). Case-sensitive substring matches.
* JSON: ``{ SELECTOR OP VALUE }``, ``IS NULL``, ``NOT EXISTS``, ``IS TRUE``, ``IS FALSE``,
  ``&&``, ``||`` and parentheses (precedence ``()`` > ``&&`` > ``||``).
* Space-delimited: ``[ip, user, ..., status_code = 4*, bytes > 1000]``.

Semantics taken from the AWS documentation, and where it is silent, from observed AWS behaviour
or a stated choice (each marked "Choice:" below):

* A selector must point at a *value node* (a string or a number). If it points at an object, an
  array, ``null`` or a boolean, or at nothing, both ``=`` and ``!=`` are false ("the filter will
  not be applied because the log format doesn't match the filter", AWS docs on
  ``{$.users != 1}`` with an array). For a missing field this is also what the CloudWatch console's
  pattern tester answers: ``$.userIdentity.invokedBy != "x"`` does not match a record without
  ``invokedBy`` (reported in DataBiosphere/azul issue 5884). Use ``NOT EXISTS`` for absence.
* ``*`` is a wildcard only at the start and/or the end of a value ("*Event", "Event*",
  "*html*"); inside a value it is a literal character: the docs state that ``Ev*ent`` "will only
  match the actual string Ev*ent". ``*`` alone matches any value node (``{ $.latency = * }`` is
  the documented way to say "exists"). Choice: a backslash-escaped ``\\*`` is never a wildcard.
* A value that is a number literal (``400``, ``-1.5``, ``10e-3``, ``+1000``) compares
  numerically; a quoted or non-numeric value compares as text. Choice: a string field that holds a
  number (CloudTrail's ``"recipientAccountId": "123456789012"``) compares numerically too, and a
  number field compares as text with its JSON spelling (``{ $.status = 4* }`` matches 404). A
  numeric comparison against a value that is not a number is false for every operator, like the
  array case above.
* Messages that are not a JSON object never match a JSON pattern, not even ``NOT EXISTS``.
* Selectors: ``$.name``, ``$.a.b``, ``$.a[0].b``, ``$.c[0][1]``; names are letters, digits, ``_``
  and ``-`` (AWS docs). An index must follow a property. Choice: selector wildcards (``$.a.*``,
  ``$.a[*]``) are not documented and are rejected, so that a pattern the emulator accepts is one
  AWS documents.
* Choice: regular expressions (``%...%``) are rejected with a clear error rather than half
  implemented; the daemon's generated patterns do not use them.
"""

from __future__ import annotations

import abc
import functools
import inspect
import json
import operator
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence

__all__ = ["FilterPatternError", "Pattern", "compile_pattern", "install"]

#: The number grammar of the AWS docs: an integer or decimal with optional sign, optionally in
#: scientific notation. ASCII digits only (``\d`` would accept other scripts' digits).
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
#: Property and field names: "alphanumeric strings that also support '-' and '_'".
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
#: Unquoted search terms: "terms that include characters other than alphanumeric or underscore
#: must be placed inside double quotes".
_TERM_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
#: Characters allowed in an unquoted comparison value. The docs' own examples use '.', '*' and
#: signs (``123.123.*``, ``+1000``); '@', '$', '\\' and other symbols "must be enclosed in double
#: quotes".
_BARE_VALUE_CHARS = _NAME_CHARS | frozenset(".*:/+")
#: Characters that end an unquoted value (besides white space).
_VALUE_END = frozenset(")&|},]")
_OPERATORS = ("!=", "<=", ">=", "=", "<", ">")  # longest first
_RELATIONAL = frozenset({"<", "<=", ">", ">="})
_NUMERIC_TESTS: Mapping[str, Callable[[Decimal, Decimal], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class FilterPatternError(ValueError):
    """A malformed filter pattern (or metric value), with the problem and where it is.

    ``what`` names the thing that is invalid; ``describe()`` renders the text of the real API's
    ``InvalidParameterException`` ("Invalid metric filter pattern ...") with details appended, so
    the emulator's error says why instead of only that.
    """

    def __init__(self, problem: str, position: int, source: str, what: str = "filter pattern"):
        self.problem = problem
        self.position = position
        self.source = source
        self.what = what
        super().__init__(self.describe())

    def describe(self, what: str | None = None) -> str:
        """The message for an API error; ``what`` overrides the noun ("metric filter pattern")."""
        return (
            f"Invalid {what or self.what}: {self.problem} "
            f"(at offset {self.position} of {self.source!r})"
        )


# --------------------------------------------------------------------------------------------
# Values and comparisons, shared by JSON and space-delimited patterns


def _as_number(text: str) -> Decimal | None:
    """``text`` as a number if it is spelled like one by the pattern grammar, else None.

    Decimal, not float: ``{ $.id = 123456789012345678 }`` must compare exactly.
    """
    return Decimal(text) if _NUMBER.fullmatch(text) else None


@dataclass(frozen=True)
class _Text:
    """A text operand: exact text with an optional wildcard before and/or after it."""

    core: str
    any_prefix: bool
    any_suffix: bool

    def matches(self, text: str) -> bool:
        if self.any_prefix and self.any_suffix:
            return self.core in text
        if self.any_prefix:
            return text.endswith(self.core)
        if self.any_suffix:
            return text.startswith(self.core)
        return text == self.core

    @classmethod
    def from_chars(cls, chars: Sequence[tuple[str, bool]]) -> _Text:
        """Builds the operand from (character, was-escaped) pairs; only bare '*' are wildcards."""
        any_prefix = bool(chars) and chars[0] == ("*", False)
        rest = chars[1:] if any_prefix else chars
        any_suffix = bool(rest) and rest[-1] == ("*", False)
        rest = rest[:-1] if any_suffix else rest
        return cls("".join(char for char, _ in rest), any_prefix, any_suffix)


@dataclass(frozen=True)
class _Condition:
    """``OP operand`` applied to the text of one value (a JSON leaf or a delimited field)."""

    op: str
    operand: _Text | Decimal

    def test(self, text: str) -> bool:
        if isinstance(self.operand, Decimal):
            number = _as_number(text)
            return number is not None and _NUMERIC_TESTS[self.op](number, self.operand)
        hit = self.operand.matches(text)
        return hit if self.op == "=" else not hit


class _Node(Protocol):
    """A boolean expression node; ``env`` is the JSON document or the delimited field bindings."""

    def evaluate(self, env: Any) -> bool: ...


@dataclass(frozen=True)
class _All:
    parts: tuple[_Node, ...]

    def evaluate(self, env: Any) -> bool:
        return all(part.evaluate(env) for part in self.parts)


@dataclass(frozen=True)
class _Any:
    parts: tuple[_Node, ...]

    def evaluate(self, env: Any) -> bool:
        return any(part.evaluate(env) for part in self.parts)


# --------------------------------------------------------------------------------------------
# JSON documents


class _JsonNumber:
    """A JSON number that keeps its spelling, for text comparisons (``4*`` against ``404``)."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


@functools.lru_cache(maxsize=128)
def _parse_json_object(message: str) -> dict[str, Any] | None:
    """The message as a JSON object, or None. Cached: several filters look at the same event.

    The result is shared between callers and must not be modified.
    """
    try:
        document = json.loads(
            message,
            parse_int=_JsonNumber,
            parse_float=_JsonNumber,
            parse_constant=_reject_constant,
        )
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


_MISSING = object()
Selector = tuple[str | int, ...]


def _select(document: Any, selector: Selector) -> Any:
    """The node at ``selector``, or ``_MISSING`` when any step does not exist."""
    node = document
    for step in selector:
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return _MISSING
            node = node[step]
        else:
            if not isinstance(node, dict) or step not in node:
                return _MISSING
            node = node[step]
    return node


def _leaf_text(node: Any) -> str | None:
    """The text of a value node (string or number); None for anything a comparison skips."""
    if isinstance(node, str):
        return node
    if isinstance(node, _JsonNumber):
        return node.text
    return None


@dataclass(frozen=True)
class _JsonComparison:
    selector: Selector
    condition: _Condition

    def evaluate(self, document: Any) -> bool:
        text = _leaf_text(_select(document, self.selector))
        return text is not None and self.condition.test(text)


@dataclass(frozen=True)
class _JsonState:
    """``IS NULL`` / ``IS TRUE`` / ``IS FALSE`` / ``NOT EXISTS``."""

    selector: Selector
    state: str

    def evaluate(self, document: Any) -> bool:
        node = _select(document, self.selector)
        if self.state == "NOT EXISTS":
            return node is _MISSING
        expected = {"NULL": None, "TRUE": True, "FALSE": False}[self.state]
        return node is expected


# --------------------------------------------------------------------------------------------
# Space-delimited messages


def _split_fields(message: str) -> list[str]:
    """Splits a log line into fields: runs of white space separate them, and text between a
    pair of double quotes or square brackets is one field (without the enclosing characters), as
    in ``127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET / HTTP/1.0" 200 1534``.

    Choice: an unclosed quote or bracket extends to the end of the line.
    """
    fields: list[str] = []
    index, length = 0, len(message)
    while index < length:
        if message[index].isspace():
            index += 1
            continue
        closer = {'"': '"', "[": "]"}.get(message[index])
        if closer is not None:
            end = message.find(closer, index + 1)
            end = length if end < 0 else end
            fields.append(message[index + 1 : end])
            index = end + 1
            continue
        end = index
        while end < length and not message[end].isspace():
            end += 1
        fields.append(message[index:end])
        index = end
    return fields


@dataclass(frozen=True)
class _FieldComparison:
    """``name OP value`` in a space-delimited pattern.

    Choice: a condition may name any field of the pattern (the AWS docs show
    ``status_code = 4* && bytes > 1000`` in one column); a name no column binds is never true.
    """

    name: str
    condition: _Condition

    def evaluate(self, bindings: Mapping[str, str]) -> bool:
        text = bindings.get(self.name)
        return text is not None and self.condition.test(text)


@dataclass(frozen=True)
class _FieldName:
    """A bare column name: binds the field, matches any value."""

    name: str

    def evaluate(self, bindings: Mapping[str, str]) -> bool:
        return True


@dataclass(frozen=True)
class _Column:
    """One comma-separated slot: ``...``, an unnamed field, or a named field with conditions."""

    name: str | None
    expression: _Node | None
    ellipsis: bool = False


def _names_in(node: _Node) -> Iterator[str]:
    if isinstance(node, (_All, _Any)):
        for part in node.parts:
            yield from _names_in(part)
    elif isinstance(node, (_FieldComparison, _FieldName)):
        yield node.name


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


# --------------------------------------------------------------------------------------------
# Parser


class _Scanner:
    """A cursor over the pattern text with the small parsing steps all three grammars share."""

    def __init__(self, text: str, what: str = "filter pattern"):
        self.text = text
        self.pos = 0
        self.what = what

    # -- primitives
    def error(self, problem: str, position: int | None = None) -> FilterPatternError:
        return FilterPatternError(
            problem, self.pos if position is None else position, self.text, self.what
        )

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def describe_here(self) -> str:
        return repr(self.peek()) if not self.at_end() else "end of pattern"

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def take(self, literal: str) -> bool:
        self.skip_space()
        if self.text.startswith(literal, self.pos):
            self.pos += len(literal)
            return True
        return False

    def expect(self, literal: str, expectation: str) -> None:
        if not self.take(literal):
            raise self.error(f"expected {expectation}, found {self.describe_here()}")

    def take_while(self, allowed: frozenset[str]) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in allowed:
            self.pos += 1
        return self.text[start : self.pos]

    def end(self, context: str) -> None:
        self.skip_space()
        if not self.at_end():
            raise self.error(f"unexpected {self.describe_here()} {context}")

    def quoted(self) -> list[tuple[str, bool]]:
        """A double-quoted string as (character, was-escaped) pairs; backslash escapes the next
        character (AWS CDK writes ``\\"`` and ``\\\\`` this way)."""
        start = self.pos
        self.pos += 1
        chars: list[tuple[str, bool]] = []
        while True:
            if self.at_end():
                raise self.error("unterminated quoted string", start)
            char = self.text[self.pos]
            if char == '"':
                self.pos += 1
                return chars
            if char == "\\":
                if self.pos + 1 >= len(self.text):
                    raise self.error("unterminated quoted string", start)
                chars.append((self.text[self.pos + 1], True))
                self.pos += 2
            else:
                chars.append((char, False))
                self.pos += 1

    # -- boolean structure: () > && > ||
    def disjunction(self, primary: Callable[[], _Node]) -> _Node:
        parts = [self.conjunction(primary)]
        while self.take("||"):
            parts.append(self.conjunction(primary))
        return parts[0] if len(parts) == 1 else _Any(tuple(parts))

    def conjunction(self, primary: Callable[[], _Node]) -> _Node:
        parts = [self.group(primary)]
        while self.take("&&"):
            parts.append(self.group(primary))
        return parts[0] if len(parts) == 1 else _All(tuple(parts))

    def group(self, primary: Callable[[], _Node]) -> _Node:
        if self.take("("):
            inner = self.disjunction(primary)
            self.expect(")", "')', '&&' or '||'")
            return inner
        self.skip_space()
        if self.at_end() or self.peek() in "&|)}],":
            raise self.error(f"expected a condition, found {self.describe_here()}")
        return primary()

    # -- comparisons
    def comparison_operator(self) -> str | None:
        self.skip_space()
        if self.text.startswith("==", self.pos):
            raise self.error("'==' is not an operator; use '='")
        for op in _OPERATORS:
            if self.text.startswith(op, self.pos):
                self.pos += len(op)
                return op
        return None

    def condition(self, op: str) -> _Condition:
        """The value after ``op``: quoted text, a number, or unquoted text with wildcards."""
        self.skip_space()
        start = self.pos
        if self.peek() == '"':
            operand: _Text | Decimal = _Text.from_chars(self.quoted())
        elif self.peek() == "%":
            raise self.error("regular expressions (%...%) are not supported by the emulator")
        else:
            while (
                not self.at_end()
                and not self.peek().isspace()
                and self.peek() not in _VALUE_END
            ):
                if self.peek() not in _BARE_VALUE_CHARS:
                    raise self.error(
                        f"{self.describe_here()} is not allowed in an unquoted value;"
                        " enclose the value in double quotes"
                    )
                self.pos += 1
            bare = self.text[start : self.pos]
            if not bare:
                raise self.error(f"expected a value after '{op}', found {self.describe_here()}")
            number = _as_number(bare)
            operand = number if number is not None else _Text.from_chars([(c, False) for c in bare])
        if op in _RELATIONAL and not isinstance(operand, Decimal):
            raise self.error(f"operator '{op}' compares numbers; the value is not a number", start)
        return _Condition(op, operand)

    def selector(self) -> Selector:
        """``$.name``, ``.name`` and ``[index]`` steps; the first step must be a property."""
        self.skip_space()
        start = self.pos
        if not self.take("$"):
            raise self.error(
                f"expected a selector starting with '$.', found {self.describe_here()}"
            )
        steps: list[str | int] = []
        while True:
            if self.peek() == ".":
                self.pos += 1
                name = self.take_while(_NAME_CHARS)
                if not name:
                    raise self.error(
                        f"expected a property name (letters, digits, '_', '-') after '.',"
                        f" found {self.describe_here()}"
                    )
                steps.append(name)
            elif self.peek() == "[":
                if not steps:
                    raise self.error("an array index must follow a property, as in $.users[0]")
                self.pos += 1
                digits = self.take_while(frozenset("0123456789"))
                if not digits:
                    raise self.error(
                        f"expected an array index (a number) after '[',"
                        f" found {self.describe_here()}"
                    )
                if self.peek() != "]":
                    raise self.error(f"expected ']', found {self.describe_here()}")
                self.pos += 1
                steps.append(int(digits))
            else:
                break
        if not steps:
            raise self.error("a selector must name a property, as in $.eventName", start)
        return tuple(steps)


def _parse_json(scanner: _Scanner) -> _JsonPattern:
    scanner.expect("{", "'{'")
    scanner.skip_space()
    if scanner.peek() == "}":
        raise scanner.error("empty JSON pattern; write at least one condition inside '{ }'")

    def condition() -> _Node:
        selector = scanner.selector()
        op = scanner.comparison_operator()
        if op is not None:
            return _JsonComparison(selector, scanner.condition(op))
        scanner.skip_space()
        word_at = scanner.pos
        word = scanner.take_while(frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
        if word == "IS":
            scanner.skip_space()
            state_at = scanner.pos
            state = scanner.take_while(frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
            if state in ("NULL", "TRUE", "FALSE"):
                return _JsonState(selector, state)
            raise scanner.error("expected NULL, TRUE or FALSE after IS", state_at)
        if word == "NOT":
            scanner.skip_space()
            if scanner.take_while(frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")) == "EXISTS":
                return _JsonState(selector, "NOT EXISTS")
            raise scanner.error("expected EXISTS after NOT", word_at)
        raise scanner.error(
            "expected an operator (= != < <= > >=), IS NULL, IS TRUE, IS FALSE or NOT EXISTS"
            " after the selector",
            word_at,
        )

    expression = scanner.disjunction(condition)
    scanner.expect("}", "'&&', '||' or '}'")
    scanner.end("after the closing '}'")
    return _JsonPattern(scanner.text, expression)


def _parse_delimited(scanner: _Scanner) -> _DelimitedPattern:
    scanner.expect("[", "'['")

    def field_condition() -> _Node:
        scanner.skip_space()
        name = scanner.take_while(_NAME_CHARS)
        if not name:
            raise scanner.error(f"expected a field name, found {scanner.describe_here()}")
        op = scanner.comparison_operator()
        return _FieldName(name) if op is None else _FieldComparison(name, scanner.condition(op))

    columns: list[_Column] = []
    seen: set[str] = set()
    while True:
        scanner.skip_space()
        column_at = scanner.pos
        if scanner.take("..."):
            if any(column.ellipsis for column in columns):
                raise scanner.error("'...' may appear only once", column_at)
            columns.append(_Column(None, None, ellipsis=True))
        elif scanner.peek() in (",", "]"):
            # An empty slot is an unnamed field: for the AWS docs' example
            # [..., request=*.html*, status_code=4*,] the line's last field is extracted as "$7".
            columns.append(_Column(None, None))
        else:
            expression = scanner.disjunction(field_condition)
            name = next(_names_in(expression))
            if name in seen:
                raise scanner.error(f"field name {name!r} is used twice", column_at)
            seen.add(name)
            columns.append(_Column(name, expression))
        if scanner.take(","):
            continue
        scanner.expect("]", "',' or ']' after the field")
        break
    scanner.end("after the closing ']'")
    if len(columns) == 1 and columns[0].name is None and not columns[0].ellipsis:
        raise scanner.error("a space-delimited pattern needs at least one field", 0)
    return _DelimitedPattern(scanner.text, tuple(columns))


def _parse_terms(scanner: _Scanner) -> _TermsPattern:
    groups: list[tuple[list[str], list[str]]] = []
    while True:
        scanner.skip_space()
        if scanner.at_end():
            break
        starts_group = scanner.take("?")
        excluded = scanner.take("-")
        if excluded:
            scanner.skip_space()
        if scanner.peek() == '"':
            term = "".join(char for char, _ in scanner.quoted())
        else:
            term = scanner.take_while(_TERM_CHARS)
            if not term:
                raise scanner.error(
                    f"unexpected {scanner.describe_here()}; terms with characters other than"
                    " letters, digits and '_' must be enclosed in double quotes"
                )
        if starts_group or not groups:
            groups.append(([], []))
        groups[-1][1 if excluded else 0].append(term)
        if not scanner.at_end() and not scanner.peek().isspace():
            raise scanner.error(
                f"unexpected {scanner.describe_here()} after the term {term!r};"
                " separate terms with spaces and quote terms with other characters"
            )
    return _TermsPattern(
        scanner.text, tuple((tuple(required), tuple(excluded)) for required, excluded in groups)
    )


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Pattern:
    """Parses a filter pattern; raises FilterPatternError if CloudWatch Logs would reject it.

    Cached, because every log event of every metric filter is matched against the same few
    patterns.
    """
    scanner = _Scanner(pattern)
    scanner.skip_space()
    first = scanner.peek()
    if not first:
        return _MatchAll(pattern)
    if first == "{":
        return _parse_json(scanner)
    if first == "[":
        return _parse_delimited(scanner)
    if first == "%":
        raise scanner.error("regular expressions (%...%) are not supported by the emulator")
    return _parse_terms(scanner)


# --------------------------------------------------------------------------------------------
# moto integration

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
