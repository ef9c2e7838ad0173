"""The nodes of a compiled pattern and their evaluation against one log event.

A JSON or space-delimited pattern compiles to a tree of these: ``_All``/``_Any`` for ``&&``/``||``
and, at the leaves, comparisons of one value (a JSON leaf or a delimited field) with a
``_Condition``. They know nothing about the pattern's text; the parser builds them.
"""

from __future__ import annotations

import functools
import json
import operator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence

from .syntax import _as_number

_NUMERIC_TESTS: Mapping[str, Callable[[Decimal, Decimal], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


# --------------------------------------------------------------------------------------------
# Values and comparisons, shared by JSON and space-delimited patterns


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
