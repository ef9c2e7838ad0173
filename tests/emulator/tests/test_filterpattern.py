"""Tests of the CloudWatch Logs filter-pattern evaluator (its installation into moto:
test_filterpattern_moto.py).

The expected results come from the AWS documentation's own examples wherever it gives one; the
other cases pin the choices documented in the package docstring. The CloudTrail corpus test
checks the evaluator against a plain Python computation over every public record, because the
daemon's metric filter will be generated for exactly this kind of event.
"""

from __future__ import annotations

import json

import pytest


from conftest import corpus_lines
from iamwatchd_emulator.filterpattern import (
    FilterPatternError,
    compile_pattern,
)

#: The JSON example of the AWS docs ("JSON Metric Filter Examples").
DOC_EVENT = json.dumps(
    {
        "eventType": "UpdateTrail",
        "sourceIPAddress": "111.111.111.111",
        "arrayKey": ["value", "another value"],
        "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
        "SomeObject": None,
        "ThisFlag": True,
    }
)
#: The JSON example of the AWS docs ("JSON Compound Conditions").
DOC_COMPOUND = json.dumps(
    {
        "user": {"id": 1, "email": "John.Stiles@example.com"},
        "users": [
            {"id": 2, "email": "John.Doe@example.com"},
            {"id": 3, "email": "Jane.Doe@example.com"},
        ],
        "actions": ["GET", "PUT", "DELETE"],
        "coordinates": [[0, 1, 2], [4, 5, 6], [7, 8, 9]],
    }
)
#: The space-delimited examples of the AWS docs.
APACHE = [
    '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534',
    '127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324',
    '127.0.0.1 - frank [10/Oct/2000:13:50:35 -0700] "GET /index.html HTTP/1.0" 404 4355',
]
EXAMPLE = '{ ($.a = "x*") && (($.b = "y") || ($.c != "z")) }'


def j(**fields: object) -> str:
    return json.dumps(fields)


MATCH_CASES = [
    # -- the AWS docs' JSON examples, all matching DOC_EVENT
    ('{ $.eventType = "UpdateTrail" }', DOC_EVENT, True),
    ("{ $.sourceIPAddress != 123.123.* }", DOC_EVENT, True),
    ('{ $.arrayKey[0] = "value" }', DOC_EVENT, True),
    ("{ $.objectList[1].id = 2 }", DOC_EVENT, True),
    ("{ $.SomeObject IS NULL }", DOC_EVENT, True),
    ("{ $.SomeOtherObject NOT EXISTS }", DOC_EVENT, True),
    ("{ $.ThisFlag IS TRUE }", DOC_EVENT, True),
    # -- and their negatives
    ('{ $.eventType = "UpdateTrails" }', DOC_EVENT, False),
    ("{ $.sourceIPAddress != 111.111.* }", DOC_EVENT, False),
    ('{ $.arrayKey[2] = "value" }', DOC_EVENT, False),  # index out of range
    ("{ $.objectList[1].id = 1 }", DOC_EVENT, False),
    ('{ $.eventType[0] = "U" }', DOC_EVENT, False),  # index into a string
    ("{ $.SomeOtherObject IS NULL }", DOC_EVENT, False),  # missing is not null
    ("{ $.SomeObject NOT EXISTS }", DOC_EVENT, False),  # null exists
    ("{ $.ThisFlag IS FALSE }", DOC_EVENT, False),
    ("{ $.eventType IS TRUE }", DOC_EVENT, False),
    ('{ $.ThisFlag IS TRUE }', j(ThisFlag="true"), False),  # a string is not a boolean
    ("{ $.ThisFlag IS FALSE }", j(ThisFlag=False), True),
    # -- the docs' compound conditions and precedence () > && > ||
    ('{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }', DOC_COMPOUND, True),
    ('{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }',
     DOC_COMPOUND, False),
    ('{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch'
     " && $.actions[2] = nomatch }", DOC_COMPOUND, True),
    ('{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch)'
     " && $.actions[2] = nomatch }", DOC_COMPOUND, False),
    ("{ $.coordinates[2][0] = 7 }", DOC_COMPOUND, True),
    # a selector at an array or object matches neither = nor != (docs: "JSON Special
    # Considerations")
    ("{ $.users = 1 }", DOC_COMPOUND, False),
    ("{ $.users != 1 }", DOC_COMPOUND, False),
    ('{ $.user != "x" }', DOC_COMPOUND, False),
    # -- the brief's example, each branch
    (EXAMPLE, j(a="xyz", b="y"), True),
    (EXAMPLE, j(a="xyz", b="n", c="q"), True),
    (EXAMPLE, j(a="x", b="n", c="z"), False),
    (EXAMPLE, j(a="xyz", b="n"), False),  # != on a missing field does not match
    (EXAMPLE, j(a="axy", b="y"), False),
    (EXAMPLE, j(b="y"), False),
    ('{($.a="x*")&&(($.b="y")||($.c!="z"))}', j(a="xyz", b="n", c="q"), True),
    ('{\n  ( $.a = "x*" )\n  && ( ( $.b = "y" ) || ( $.c != "z" ) )\n}', j(a="x", b="y"), True),
    ("{ ((($.a = 1))) }", j(a=1), True),
    # -- quoted and unquoted values
    ("{ $.eventName = ConsoleLogin }", j(eventName="ConsoleLogin"), True),
    ('{ $.eventName = "ConsoleLogin" }', j(eventName="ConsoleLogin"), True),
    ("{ $.eventName = consolelogin }", j(eventName="ConsoleLogin"), False),  # case-sensitive
    ('{ $.msg = "a b" }', j(msg="a b"), True),
    ('{ $.msg = "say \\"hi\\"" }', j(msg='say "hi"'), True),
    ('{ $.path = "C:\\\\temp" }', j(path="C:\\temp"), True),
    ('{ $.arn = "arn:aws:iam::123456789012:user/*" }', j(arn="arn:aws:iam::123456789012:user/bob"),
     True),
    ("{ $.ip = 10.0.0.1 }", j(ip="10.0.0.1"), True),
    # CIS-benchmark style, without parentheses
    ('{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS'
     ' && $.eventType != "AwsServiceEvent" }',
     json.dumps({"userIdentity": {"type": "Root"}, "eventType": "AwsApiCall"}), True),
    # -- wildcards: at the start and/or end only; '*' inside a value is literal (AWS docs)
    ('{ $.e = "*Event" }', j(e="PutEvent"), True),
    ('{ $.e = "*Event" }', j(e="EventPut"), False),
    ('{ $.e = "Event*" }', j(e="EventName"), True),
    ('{ $.e = "Event*" }', j(e="PutEvent"), False),
    ('{ $.e = "*ven*" }', j(e="PutEvents"), True),
    ('{ $.e = "Ev*ent" }', j(e="Event"), False),
    ('{ $.e = "Ev*ent" }', j(e="Ev*ent"), True),
    ('{ $.e = "\\*Event" }', j(e="PutEvent"), False),  # an escaped '*' is a character
    ('{ $.e = "\\*Event" }', j(e="*Event"), True),
    ("{ $.e = * }", j(e=""), True),
    ("{ $.e = * }", j(e=0), True),
    ("{ $.e = * }", j(f="x"), False),
    ("{ $.e = * }", j(e=None), False),
    ("{ $.e = * }", j(e=["x"]), False),
    ("{ $.e != * }", j(e="x"), False),
    ('{ $.errorCode = "*UnauthorizedOperation" || $.errorCode = "AccessDenied*" }',
     j(errorCode="Client.UnauthorizedOperation"), True),
    ('{ $.errorCode = "*UnauthorizedOperation" || $.errorCode = "AccessDenied*" }',
     j(errorCode="AccessDeniedException"), True),
    ('{ $.errorCode = "*UnauthorizedOperation" || $.errorCode = "AccessDenied*" }',
     j(errorCode="ThrottlingException"), False),
    # -- numbers (docs: "Numeric Comparisons")
    ("{ $.latency >= 500 }", j(latency=500), True),
    ("{ $.latency >= 500 }", j(latency=499.99), False),
    ("{ $.numbers[0] < 10e3 }", j(numbers=[9999]), True),
    ("{ $.numbers[0] < 10e-3 }", j(numbers=[0.001]), True),
    ("{ $.numbers[0] < 10e-3 }", j(numbers=[0.01]), False),
    ("{ $.processes[4].averageRuntime <= 55.5 }",
     json.dumps({"processes": [{}, {}, {}, {}, {"averageRuntime": 55.5}]}), True),
    ("{ $.errorCode = 400 }", j(errorCode=400), True),
    ("{ $.errorCode = 400 }", j(errorCode=400.0), True),
    ("{ $.errorCode != 500 }", j(errorCode=400), True),
    ("{ $.errorCode != 500 }", j(errorCode=500), False),
    ("{ $.latency > +1000 }", j(latency=1001), True),
    ("{ $.latency > -1 }", j(latency=0), True),
    ("{ $.id = 123456789012345678 }", '{"id": 123456789012345679}', False),  # exact, not float
    # a string holding a number compares numerically (CloudTrail's account ids are strings)
    ("{ $.recipientAccountId = 123456789012 }", j(recipientAccountId="123456789012"), True),
    ("{ $.n > 5 }", j(n="12"), True),
    # a numeric comparison with a non-number matches under no operator
    ("{ $.errorCode != 500 }", j(errorCode="AccessDenied"), False),
    ("{ $.errorCode = 500 }", j(errorCode="AccessDenied"), False),
    ("{ $.n > 5 }", j(n=True), False),
    ("{ $.n != 5 }", j(n=None), False),
    # a number compares as text with its JSON spelling
    ("{ $.status = 4* }", j(status=404), True),
    ('{ $.status = "404" }', j(status=404), True),
    ('{ $.status = "404" }', '{"status": 404.0}', False),
    # -- non-JSON messages never match a JSON pattern
    ("{ $.a NOT EXISTS }", "plain text", False),
    ("{ $.a NOT EXISTS }", "[1, 2]", False),
    ("{ $.a NOT EXISTS }", '"a string"', False),
    ("{ $.a NOT EXISTS }", '{"b": 1} trailing', False),
    ("{ $.a NOT EXISTS }", '{"b": NaN}', False),
    ("{ $.a NOT EXISTS }", '  {"b": 1}  ', True),
    # -- the empty pattern
    ("", "anything", True),
    ("   ", "", True),
    # -- terms (docs: "Matching Terms in Log Events")
    ("ERROR", "[ERROR] A fatal exception has occurred", True),
    ("ERROR", "Exiting with ERRORCODE: -1", True),
    ("ERROR", "error: lower case", False),
    ('"ERROR" - "Exiting"', "Exiting with ERRORCODE: -1", False),
    ('"ERROR" - "Exiting"', "[ERROR] A fatal exception has occurred", True),
    ("ERROR Exception", "[ERROR] Caught IllegalArgumentException", True),
    ("ERROR Exception", "[ERROR] Caught IllegalArgument", False),
    ("Failed to process the request", "[WARN] Failed to process the request", True),
    ("Failed to process the request", "[WARN] Failed to handle the request", False),
    ("?ERROR ?WARN", "ERROR WARN message", True),
    ("?ERROR ?WARN", "ERROR message", True),
    ("?ERROR ?WARN", "WARN message", True),
    ("?ERROR ?WARN", "INFO message", False),
    ("ERROR WARN", "ERROR message", False),
    ("ERROR -WARN", "ERROR message", True),
    ("ERROR -WARN", "ERROR WARN message", False),
    ("-DEBUG", "INFO message", True),
    ('"[ERROR 401]"', "[ERROR 401] UNAUTHORIZED REQUEST", True),
    ('"ERROR 401"', "ERROR  401", False),
    ('""', "anything", True),
    # AWS CDK's anyTermGroup rendering: '?' opens a group, later plain terms join it
    ('?"ERROR" "MainThread" ?"WARN" "Deadlock"', "ERROR in MainThread", True),
    ('?"ERROR" "MainThread" ?"WARN" "Deadlock"', "WARN Deadlock found", True),
    ('?"ERROR" "MainThread" ?"WARN" "Deadlock"', "ERROR in worker", False),
    # -- space-delimited (docs: "Using Metric Filters to Extract Values from Space-Delimited Log
    # Events")
    ("[ip, user, username, timestamp, request, status_code, bytes]", APACHE[0], True),
    ("[ip, user, username, timestamp, request, status_code]", APACHE[0], False),  # field count
    ("[..., status_code, bytes]", APACHE[0], True),
    ("[ip, user, ..., status_code, bytes]", APACHE[0], True),
    ("[ip, user, ...]", APACHE[0], True),
    ("[ip, ..., a, b, c, d, e, f, g]", APACHE[0], False),  # too few fields for the slots
    ("[ip, user, username, timestamp, request, status_code, bytes > 1000]", APACHE[0], True),
    ("[ip, user, username, timestamp, request, status_code, bytes > 5000]", APACHE[0], False),
    ("[ip, user, username, timestamp, request, status_code = 200, bytes]", APACHE[0], True),
    ("[ip, user, username, timestamp, request, status_code = 200, bytes]", APACHE[1], False),
    ("[ip, user, username, timestamp, request, status_code = 4*, bytes]", APACHE[2], True),
    ("[ip, user, username, timestamp, request, status_code = 4*, bytes]", APACHE[1], False),
    ("[ip, user, username, timestamp, request = *html*, status_code = 4*, bytes]", APACHE[2],
     True),
    ("[ip, user, username, timestamp, request = *html*, status_code = 4*, bytes]", APACHE[0],
     False),
    ("[ip, user, username, timestamp, request, status_code = 4* && status_code != 403, bytes]",
     APACHE[2], True),
    ("[ip, user, username, timestamp, request, status_code = 403 || status_code = 404, bytes]",
     APACHE[2], True),
    ("[ip, user, username, timestamp, request, status_code = 403 || status_code = 404, bytes]",
     APACHE[0], False),
    ('[..., request = "GET /index.html HTTP/1.0", status_code, bytes]', APACHE[2], True),
    ("[..., request=*.html*, status_code=4*,]", APACHE[2], True),
    ("[..., timestamp = 10/Oct/2000:13:50:35*, request, status_code, bytes]", APACHE[2], True),
    ("[w1=ERROR, w2]", "ERROR message", True),
    ("[w1=ERROR, w2]", "ERROR WARN message", False),
    ("[w1=ERROR || w1=WARN, w2]", "WARN message", True),
    ("[w1!=ERROR&&w1!=WARN, w2]", "INFO message", True),
    ("[w1!=ERROR&&w1!=WARN, w2]", "WARN message", False),
    ("[w1, w2 > 3]", "a b", False),  # numeric test of a non-number
    ("[w1, w2 = b]", "a   b", True),  # a run of blanks is one separator
]


@pytest.mark.parametrize(("pattern", "message", "expected"), MATCH_CASES)
def test_matches(pattern: str, message: str, expected: bool) -> None:
    assert compile_pattern(pattern).matches(message) is expected


ERROR_CASES = [
    # (pattern, words of the problem, offset of the problem)
    ("{ $.a = }", "expected a value after '='", 8),
    ('{ $.a = "x }', "unterminated quoted string", 8),
    ("{ ($.a = 1 }", "expected ')'", 11),
    ("{ $.a = 1 } x", "after the closing '}'", 12),
    ("{ $.a = 1", "expected '&&', '||' or '}'", 9),
    ("{ }", "empty JSON pattern", 2),
    ("{ a = 1 }", "selector starting with '$.'", 2),
    ("{ $ = 1 }", "must name a property", 2),
    ("{ $.a[x] = 1 }", "array index", 6),
    ("{ $[0] = 1 }", "must follow a property", 3),
    ("{ $.a.* = 1 }", "property name", 6),
    ("{ $.a == 1 }", "'==' is not an operator", 6),
    ("{ $.a < abc }", "compares numbers", 8),
    ('{ $.a >= "5" }', "compares numbers", 9),
    ("{ $.a IS MAYBE }", "NULL, TRUE or FALSE", 9),
    ("{ $.a NOT THERE }", "EXISTS after NOT", 6),
    ("{ $.a EXISTS }", "expected an operator", 6),
    ("{ $.a }", "expected an operator", 6),
    ("{ $.a = 1 && }", "expected a condition", 13),
    ("{ $.a = 1 & $.b = 2 }", "expected '&&', '||' or '}'", 10),
    ("{ && $.a = 1 }", "expected a condition", 2),
    ("{ $.a = foo@bar }", "enclose the value in double quotes", 11),
    ("{ $.a = %ab% }", "regular expressions", 8),
    ("%AUTHORIZED%", "regular expressions", 0),
    ("[a, ..., b, ...]", "'...' may appear only once", 12),
    ("[a, a]", "used twice", 4),
    ("[a b]", "expected ',' or ']'", 3),
    ("[a, b", "expected ',' or ']'", 5),
    ("[]", "at least one field", 0),
    ("[a = ]", "expected a value after '='", 5),
    ("ERROR!", "after the term 'ERROR'", 5),
    ("user@example.com", "after the term 'user'", 4),
    ('"unterminated', "unterminated quoted string", 0),
    ("ERROR -", "must be enclosed in double quotes", 7),
]


@pytest.mark.parametrize(("pattern", "problem", "offset"), ERROR_CASES)
def test_malformed_patterns_are_rejected(pattern: str, problem: str, offset: int) -> None:
    with pytest.raises(FilterPatternError) as caught:
        compile_pattern(pattern)
    error = caught.value
    assert problem in error.problem
    assert error.position == offset
    assert str(error).startswith("Invalid filter pattern: ")
    assert f"at offset {offset}" in str(error)
    assert error.describe("metric filter pattern").startswith("Invalid metric filter pattern: ")


def test_error_is_a_value_error() -> None:
    assert issubclass(FilterPatternError, ValueError)


def test_compiled_patterns_are_cached() -> None:
    assert compile_pattern("{ $.a = 1 }") is compile_pattern("{ $.a = 1 }")


VALUE_CASES = [
    ("{ $.latency = * }", j(latency=250), "1", 1.0),
    ("{ $.latency = * }", j(latency=250), "2.5", 2.5),
    ("{ $.latency = * }", j(latency=250), "$.latency", 250.0),
    ("{ $.latency = * }", j(latency=0.25), "$.latency", 0.25),
    ("{ $.latency = * }", j(latency="12"), "$.latency", 12.0),
    ("{ $.latency = * }", j(latency="slow"), "$.latency", None),
    ("{ $.a = * }", j(a=1), "$.latency", None),  # missing
    ("{ $.a = * }", json.dumps({"a": 1, "latency": [1]}), "$.latency", None),  # not a leaf
    ("{ $.a = * }", json.dumps({"a": 1, "m": {"v": [3, 4]}}), "$.m.v[1]", 4.0),
    ("{ $.latency = * }", j(other=1), "1", None),  # no match, no datapoint
    ("ERROR", "ERROR here", "1", 1.0),
    ("ERROR", "nothing", "1", None),
    ("", "anything", "3", 3.0),
    ("[ip, user, username, timestamp, request, status_code, bytes]", APACHE[0], "$bytes", 1534.0),
    ("[ip, user, username, timestamp, request, status_code, bytes]", APACHE[0], "$7", 1534.0),
    ("[ip, user, username, timestamp, request, status_code, bytes]", APACHE[0], "$9", None),
    ("[ip, user, username, timestamp, request, status_code, bytes]", APACHE[0], "$user", None),
]


@pytest.mark.parametrize(("pattern", "message", "metric_value", "expected"), VALUE_CASES)
def test_value(pattern: str, message: str, metric_value: str, expected: float | None) -> None:
    assert compile_pattern(pattern).value(message, metric_value) == expected


@pytest.mark.parametrize(
    ("pattern", "metric_value"),
    [
        ("ERROR", "$.latency"),  # a selector needs a JSON pattern
        ("", "$bytes"),
        ("[a, b]", "$c"),  # not a field of the pattern
        ("{ $.a = 1 }", "$bytes"),
        ("{ $.a = 1 }", "latency"),
        ("{ $.a = 1 }", "$.a[x]"),
        ("{ $.a = 1 }", "$.a b"),
    ],
)
def test_unresolvable_metric_values_are_rejected(pattern: str, metric_value: str) -> None:
    with pytest.raises(FilterPatternError) as caught:
        compile_pattern(pattern).value("{}", metric_value)
    assert str(caught.value).startswith("Invalid metric value: ")


# ---------------------------------------------------------------------------------------------
# The public CloudTrail records: the evaluator against a plain computation over each record


def _at(record: dict, *path: str) -> object:
    """The value at ``path`` in a record, None where a step is missing or not an object."""
    node: object = record
    for step in path:
        if not isinstance(node, dict):
            return None
        node = node.get(step)
    return node


CORPUS_PATTERNS = {
    '{ $.eventSource = "iam.amazonaws.com" }':
        lambda r: r.get("eventSource") == "iam.amazonaws.com",
    '{ ($.eventSource = "iam.amazonaws.com") && ($.eventName != "Get*")'
    ' && ($.eventName != "List*") }':
        lambda r: r.get("eventSource") == "iam.amazonaws.com"
        and isinstance(r.get("eventName"), str)
        and not r["eventName"].startswith(("Get", "List")),
    '{ $.errorCode = "*" }':
        lambda r: isinstance(r.get("errorCode"), str),
    "{ $.errorCode NOT EXISTS }":
        lambda r: "errorCode" not in r,
    '{ $.userIdentity.type = "AssumedRole" }':
        lambda r: _at(r, "userIdentity", "type") == "AssumedRole",
    '{ $.userIdentity.sessionContext.attributes.mfaAuthenticated != "true" }':
        lambda r: isinstance(_at(r, "userIdentity", "sessionContext", "attributes",
                                   "mfaAuthenticated"), str)
        and _at(r, "userIdentity", "sessionContext", "attributes", "mfaAuthenticated") != "true",
    "{ $.readOnly IS FALSE }":
        lambda r: r.get("readOnly") is False,
}


@pytest.fixture(scope="module")
def cloudtrail_lines() -> tuple[str, ...]:
    return corpus_lines()


@pytest.mark.parametrize("pattern", list(CORPUS_PATTERNS))
def test_cloudtrail_records_agree_with_a_plain_computation(
    pattern: str, cloudtrail_lines: tuple[str, ...]
) -> None:
    expected_of = CORPUS_PATTERNS[pattern]
    compiled = compile_pattern(pattern)
    matched = 0
    for number, line in enumerate(cloudtrail_lines):
        expected = bool(expected_of(json.loads(line)))
        assert compiled.matches(line) is expected, f"record on line {number + 1}: {line[:200]}"
        matched += expected
    # Both outcomes must occur, or the comparison proves nothing.
    assert 0 < matched < len(cloudtrail_lines)


def test_cloudtrail_iam_records_are_all_found(cloudtrail_lines: tuple[str, ...]) -> None:
    """tests/data/cloudtrail/README.md: 155 IAM calls that are not reads and 315 IAM reads."""
    pattern = compile_pattern('{ $.eventSource = "iam.amazonaws.com" }')
    assert sum(pattern.matches(line) for line in cloudtrail_lines) == 155 + 315
