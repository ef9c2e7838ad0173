"""HTTP sink: the chat, paging and webhook endpoints the daemon posts to in the tests.

It stands in for Slack incoming webhooks, Microsoft Teams Workflows, PagerDuty's Events API v2
and Standard Webhooks receivers, chosen by the first path segment (``/slack/...``,
``/teams/...``, ``/pagerduty/...``, ``/webhook/...``; anything else is ``other``).  Every
request is stored (format in ``store.py``) and checked against what the platform *documents*,
written independently of iamwatchd's renderers, so a test can assert that a notification would
be accepted, not just that it was sent.  What is wrong ends up in the record's ``problems``;
the sink still answers as the platform would (PagerDuty: 400 for an invalid event).

Control API (JSON, same port, never stored)::

    POST /_sink/script  {"path": "/slack/ops", "responses": [{"status": 429,
                         "headers": {"Retry-After": "2"}, "body": "...", "delay": 0.5}, ...]}
        queue answers for paths starting with ``path``, used once each in order (the longest
        prefix with answers left wins); then the default again
    POST /_sink/script  {"path": "/teams", "default": {"status": 500}}
        a standing answer for the prefix until reset (queued answers still go first)
    POST /_sink/script  {"path": "/teams", "default": null}
        lift that prefix's standing answer only (secrets and other prefixes stay)
    POST /_sink/secret  {"path": "/webhook/x", "secret": "whsec_..."}
        verify Standard Webhooks signatures under ``path`` (record field
        ``signature_verified``)
    POST /_sink/reset   clear scripts, standing answers and secrets (not the records)
    GET  /_sink/requests[?path=/slack/ops]
        the stored records in sequence order, optionally only those under a prefix

A malformed control request is answered 400 ``{"error": "..."}``.  ``delay`` is seconds to
wait before answering; the record is stored before the wait, with the status that follows it.

Layout (each module imports only modules listed above it):

    checks.py      Request, Answer, and the small typed checks the validators share
    slack.py       Slack Block Kit rules         teams.py      Teams Adaptive Card rules
    pagerduty.py   PagerDuty Events v2 rules     webhook.py    Standard Webhooks rules
    script.py      scripted and standing answers, secrets (the control API's state)
    store.py       the record files: names, fields, atomic writes
    server.py      HttpSinkConfig, HttpSink: the threaded server and the control routes
"""

from __future__ import annotations

from .server import HttpSink, HttpSinkConfig

__all__ = ["HttpSink", "HttpSinkConfig"]
