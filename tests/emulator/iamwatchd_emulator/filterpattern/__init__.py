"""CloudWatch Logs filter patterns, evaluated the way the real service evaluates them.

Why this exists: the daemon's alarm path is a CloudWatch Logs metric filter whose pattern is
generated from the rule catalogue (``{ ($.eventSource = "iam.amazonaws.com") && ... }``). moto's
own ``EventMessageFilter`` treats every JSON pattern as "unsupported" and matches everything, so a
wrong pattern would pass every test. This package is a faithful, self-contained implementation of
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

Layout (each module imports only modules listed above it):

    syntax.py      character classes, the number grammar, FilterPatternError
    nodes.py       the nodes of a compiled pattern (comparisons, &&, ||) and their evaluation
    scanner.py     the cursor over a pattern's text and the parsing steps every grammar shares
    patterns.py    Pattern, its four kinds (all, terms, JSON, space-delimited), metric values
    parser.py      the three grammars and compile_pattern()
    moto_hooks.py  install(): the evaluator in moto's FilterLogEvents, PutMetricFilter, ...
"""

from __future__ import annotations

from .moto_hooks import install
from .parser import compile_pattern
from .patterns import Pattern
from .syntax import FilterPatternError

__all__ = ["FilterPatternError", "Pattern", "compile_pattern", "install"]
