"""Slack incoming webhooks with Block Kit: the documented limits, checked on every request.

The rules come from Slack's Block Kit reference (docs.slack.dev/reference/block-kit) and its
message-formatting guide, not from iamwatchd's renderer:

* the top-level ``text`` is the notification and fallback text; Slack truncates it after
  40,000 characters;
* at most 50 blocks in a message; a ``block_id`` is at most 255 characters;
* a header's text is ``plain_text`` of at most 150 characters;
* a section's ``text`` is at most 3,000 characters, its ``fields`` at most 10, each at most
  2,000 characters;
* a context block has at most 10 elements, an actions block at most 25; a button's text is
  ``plain_text`` of at most 75 characters, its ``url`` at most 3,000;
* no single limit covers the sum, but Slack has been seen answering ``msg_blocks_too_long`` at
  about 13,200 characters of block text in total (slackapi/bolt-js#2509), so more than 12,000 is
  reported;
* in ``mrkdwn`` Slack reads ``<...>`` as a link, a user/channel mention or a special mention
  (``<!channel>`` notifies everyone), and asks senders to escape ``&``, ``<`` and ``>`` as
  ``&amp;``, ``&lt;``, ``&gt;``: text that still contains ``<`` or ``>`` was not escaped.

Slack answers a successful post ``200`` with the body ``ok`` (text/plain).
"""

from __future__ import annotations

import re
from typing import Any

from .checks import Answer, Problems, Request, array, mapping, one_of, string, validate_object

TEXT_LIMIT = 40_000
BLOCKS_LIMIT = 50
BLOCK_ID_LIMIT = 255
HEADER_LIMIT = 150
SECTION_TEXT_LIMIT = 3_000
FIELDS_LIMIT = 10
FIELD_LIMIT = 2_000
CONTEXT_ELEMENTS_LIMIT = 10
ACTIONS_ELEMENTS_LIMIT = 25
BUTTON_TEXT_LIMIT = 75
URL_LIMIT = 3_000
TOTAL_BLOCK_TEXT_LIMIT = 12_000

TEXT_TYPES = ("plain_text", "mrkdwn")
# A special mention, mention or link, through its closing ">" when there is one.
_CONTROL_SEQUENCE = re.compile(r"<([!@#]|http)[^<>]*>?")


def default_answer(_request: Request, _problems: list[str]) -> Answer:
    """What Slack answers an accepted post."""
    return Answer.text(200, "ok")


def validate(request: Request) -> list[str]:
    """Every documented rule the request breaks (see the module docstring)."""
    return validate_object(request, _message)


def _message(problems: Problems, body: dict[str, Any]) -> None:
    if body.get("text") is None and body.get("blocks") is None:
        problems.add("", "neither text nor blocks: Slack needs one of them")
    # The fallback text is formatted as mrkdwn unless the message says "mrkdwn": false.
    text = string(problems, "text", body.get("text"), limit=TEXT_LIMIT)
    if text is not None and body.get("mrkdwn", True) is not False:
        _escaped(problems, "text", text)
    total = 0
    for index, block in enumerate(array(problems, "blocks", body.get("blocks"),
                                        limit=BLOCKS_LIMIT, required=False)):
        total += _block(problems, f"blocks[{index}]", block)
    if total > TOTAL_BLOCK_TEXT_LIMIT:
        problems.add("blocks", f"{total} characters of text in all blocks, over the "
                     f"{TOTAL_BLOCK_TEXT_LIMIT} at which Slack answers msg_blocks_too_long")


def _block(problems: Problems, where: str, block: Any) -> int:
    """Checks one block; returns the number of text characters it holds."""
    block = mapping(problems, where, block)
    string(problems, f"{where}.block_id", block.get("block_id"), limit=BLOCK_ID_LIMIT,
           required=False)
    kind = block.get("type")
    if kind == "header":
        return _text(problems, f"{where}.text", block.get("text"), limit=HEADER_LIMIT,
                     plain_only=True)
    if kind == "section":
        if block.get("text") is None and block.get("fields") is None:
            problems.add(where, "a section needs text or fields")
        total = 0
        if block.get("text") is not None:
            total += _text(problems, f"{where}.text", block["text"], limit=SECTION_TEXT_LIMIT)
        fields = array(problems, f"{where}.fields", block.get("fields"), limit=FIELDS_LIMIT,
                       required=False)
        for index, item in enumerate(fields):
            total += _text(problems, f"{where}.fields[{index}]", item, limit=FIELD_LIMIT)
        return total
    if kind == "context":
        elements = array(problems, f"{where}.elements", block.get("elements"),
                         limit=CONTEXT_ELEMENTS_LIMIT)
        return sum(_context_element(problems, f"{where}.elements[{index}]", element)
                   for index, element in enumerate(elements))
    if kind == "actions":
        elements = array(problems, f"{where}.elements", block.get("elements"),
                         limit=ACTIONS_ELEMENTS_LIMIT)
        return sum(_button(problems, f"{where}.elements[{index}]", element)
                   for index, element in enumerate(elements))
    if kind != "divider":
        one_of(problems, f"{where}.type", kind, ("header", "section", "context", "divider",
                                                 "actions"))
    return 0


def _context_element(problems: Problems, where: str, element: Any) -> int:
    """A context element is a text object or an image (``image_url`` and ``alt_text``)."""
    if isinstance(element, dict) and element.get("type") == "image":
        string(problems, f"{where}.image_url", element.get("image_url"), limit=URL_LIMIT)
        string(problems, f"{where}.alt_text", element.get("alt_text"))
        return 0
    return _text(problems, where, element)


def _button(problems: Problems, where: str, element: Any) -> int:
    """Our messages only carry link buttons: ``plain_text`` of at most 75 characters and a
    ``url`` of at most 3,000."""
    element = mapping(problems, where, element)
    if element.get("type") != "button":
        one_of(problems, f"{where}.type", element.get("type"), ("button",))
        return 0
    string(problems, f"{where}.url", element.get("url"), limit=URL_LIMIT, required=False)
    return _text(problems, f"{where}.text", element.get("text"), limit=BUTTON_TEXT_LIMIT,
                 plain_only=True)


def _text(problems: Problems, where: str, value: Any, *, limit: int | None = None,
          plain_only: bool = False) -> int:
    """A text object: ``type`` plain_text or mrkdwn and a string ``text``; mrkdwn must be
    escaped.  Returns its length."""
    value = mapping(problems, where, value)
    if not value:
        return 0
    kind = value.get("type")
    one_of(problems, f"{where}.type", kind, ("plain_text",) if plain_only else TEXT_TYPES)
    text = string(problems, f"{where}.text", value.get("text"), limit=limit)
    if text is None:
        return 0
    if kind == "mrkdwn":
        _escaped(problems, f"{where}.text", text)
    return len(text)


def _escaped(problems: Problems, where: str, text: str) -> None:
    """Slack reads ``<!..>``, ``<@..>``, ``<#..>`` and ``<http..>`` in mrkdwn as special
    mentions, mentions and links; any other ``<`` or ``>`` should have been written as
    ``&lt;``/``&gt;``."""
    sequences = sorted({"<" + match.group(1) for match in _CONTROL_SEQUENCE.finditer(text)})
    if sequences:
        problems.add(where, f"unescaped mrkdwn control sequence {', '.join(sequences)}")
    bare = [character for character in "<>" if character in _CONTROL_SEQUENCE.sub("", text)]
    if bare:
        problems.add(where, f"unescaped mrkdwn {' and '.join(bare)} (write &lt; and &gt;)")
