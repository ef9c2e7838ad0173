"""The three grammars (JSON, space-delimited, terms) and ``compile_pattern``, which picks one
by the pattern's first character as CloudWatch Logs does and caches the result."""

from __future__ import annotations

import functools

from .nodes import (
    _Column,
    _FieldComparison,
    _FieldName,
    _JsonComparison,
    _JsonState,
    _names_in,
    _Node,
)
from .patterns import Pattern, _DelimitedPattern, _JsonPattern, _MatchAll, _TermsPattern
from .scanner import _Scanner
from .syntax import _NAME_CHARS, _TERM_CHARS


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
