"""``_Scanner``: the cursor over a pattern's text, with the parsing steps all three grammars
(JSON, space-delimited, terms) and metric values share: quoted strings, ``&&``/``||``/``()``,
comparison operators and values, selectors. Errors name the offset where the problem is.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Callable

from .nodes import Selector, _All, _Any, _Condition, _Node, _Text
from .syntax import (
    _BARE_VALUE_CHARS,
    _NAME_CHARS,
    _OPERATORS,
    _RELATIONAL,
    _VALUE_END,
    FilterPatternError,
    _as_number,
)


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
