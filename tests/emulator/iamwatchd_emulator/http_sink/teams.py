"""Microsoft Teams Workflows webhooks ("post to a channel when a webhook request is received").

Workflows accept Adaptive Cards only, not the retired connectors' MessageCard (Microsoft Learn,
"Create Incoming Webhooks", known issues).  The request is a message with one attachment:

    {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
      "content": {"$schema": ..., "type": "AdaptiveCard", "version": "1.4", "body": [...]}}]}

Checked here:

* the shape above, with ``$schema`` present and a non-empty ``body``;
* card ``version`` at most 1.4 (compared as numbers): what Teams clients render reliably, the
  community's compatibility advice rather than a number Microsoft publishes;
* body elements of the types our cards use: ``TextBlock`` (string ``text``), ``FactSet``
  (``facts`` of string ``title``/``value``), ``Container`` (``items``), ``ColumnSet``
  (``columns`` of ``Column`` with ``items``); ``actions`` of type ``Action.OpenUrl`` with a
  ``url``;
* Teams rejects messages over 28 KB, so the whole request body must be at most 28 × 1024 bytes.

Workflows answer an accepted request ``202 Accepted`` with an empty body.
"""

from __future__ import annotations

import re
from typing import Any

from .checks import Answer, Problems, Request, array, mapping, one_of, string, validate_object

SIZE_LIMIT = 28 * 1024
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_VERSION = (1, 4)
ELEMENT_TYPES = ("TextBlock", "FactSet", "Container", "ColumnSet")
_VERSION = re.compile(r"^\d+(\.\d+)*$")


def default_answer(_request: Request, _problems: list[str]) -> Answer:
    """What a Workflows trigger answers an accepted request."""
    return Answer(202)


def validate(request: Request) -> list[str]:
    """Every documented rule the request breaks (see the module docstring)."""
    return validate_object(request, _message, size_limit=SIZE_LIMIT,
                           limit_name="the 28 KB Teams message limit")


def _message(problems: Problems, body: dict[str, Any]) -> None:
    one_of(problems, "type", body.get("type"), ("message",))
    attachments = array(problems, "attachments", body.get("attachments"))
    if len(attachments) != 1:
        problems.add("attachments", f"{len(attachments)} attachments, expected exactly 1")
    for index, attachment in enumerate(attachments):
        where = f"attachments[{index}]"
        attachment = mapping(problems, where, attachment)
        one_of(problems, f"{where}.contentType", attachment.get("contentType"),
               (CARD_CONTENT_TYPE,))
        _card(problems, f"{where}.content", attachment.get("content"))


def _card(problems: Problems, where: str, card: Any) -> None:
    card = mapping(problems, where, card)
    if not card:
        return
    one_of(problems, f"{where}.type", card.get("type"), ("AdaptiveCard",))
    if "$schema" not in card:
        problems.add(f"{where}.$schema", "missing")
    version = string(problems, f"{where}.version", card.get("version"))
    if version is not None:
        if not _VERSION.match(version):
            problems.add(f"{where}.version", f"{version!r} is not a version number")
        elif tuple(int(part) for part in version.split(".")) > MAX_VERSION:
            problems.add(f"{where}.version", f"{version} is newer than 1.4")
    body = array(problems, f"{where}.body", card.get("body"))
    if isinstance(card.get("body"), list) and not body:
        problems.add(f"{where}.body", "empty")
    _elements(problems, f"{where}.body", body)
    for index, action in enumerate(array(problems, f"{where}.actions", card.get("actions"),
                                         required=False)):
        action = mapping(problems, f"{where}.actions[{index}]", action)
        one_of(problems, f"{where}.actions[{index}].type", action.get("type"),
               ("Action.OpenUrl",))
        string(problems, f"{where}.actions[{index}].url", action.get("url"), non_empty=True)


def _elements(problems: Problems, where: str, elements: list[Any]) -> None:
    for index, element in enumerate(elements):
        _element(problems, f"{where}[{index}]", element)


def _element(problems: Problems, where: str, element: Any) -> None:
    element = mapping(problems, where, element)
    kind = element.get("type")
    if kind == "TextBlock":
        string(problems, f"{where}.text", element.get("text"))
    elif kind == "FactSet":
        for index, fact in enumerate(array(problems, f"{where}.facts", element.get("facts"))):
            fact = mapping(problems, f"{where}.facts[{index}]", fact)
            string(problems, f"{where}.facts[{index}].title", fact.get("title"))
            string(problems, f"{where}.facts[{index}].value", fact.get("value"))
    elif kind == "Container":
        _elements(problems, f"{where}.items", array(problems, f"{where}.items",
                                                    element.get("items")))
    elif kind == "ColumnSet":
        columns = array(problems, f"{where}.columns", element.get("columns"))
        for index, column in enumerate(columns):
            column = mapping(problems, f"{where}.columns[{index}]", column)
            one_of(problems, f"{where}.columns[{index}].type", column.get("type"), ("Column",))
            items = array(problems, f"{where}.columns[{index}].items", column.get("items"))
            _elements(problems, f"{where}.columns[{index}].items", items)
    else:
        one_of(problems, f"{where}.type", kind, ELEMENT_TYPES)
