"""The lexical rules of the filter-pattern grammar, and the error a malformed pattern raises.

Character classes and the number grammar are quoted from the AWS documentation; the scanner,
the parser, the nodes (numbers compare as numbers) and metric values all use them.
"""

from __future__ import annotations

import re
from decimal import Decimal

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


def _as_number(text: str) -> Decimal | None:
    """``text`` as a number if it is spelled like one by the pattern grammar, else None.

    Decimal, not float: ``{ $.id = 123456789012345678 }`` must compare exactly.
    """
    return Decimal(text) if _NUMBER.fullmatch(text) else None
