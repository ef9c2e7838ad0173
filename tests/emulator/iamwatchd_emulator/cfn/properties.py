"""Property value helpers.

Template values arrive as the template wrote them: booleans and numbers are often strings
("true", "300"), especially when they come from parameters, and policy documents may be objects
or JSON text. Every resource type reads its properties through these.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


def _bool(value: Any, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _optional_bool(value: Any) -> bool | None:
    return None if value is None else _bool(value)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _json_text(document: Any) -> str:
    """Policies may be given as YAML/JSON objects or as JSON strings; services store JSON text."""
    return document if isinstance(document, str) else json.dumps(document)


def _json_object(document: Any) -> Any:
    if isinstance(document, bytes):
        document = document.decode("utf-8")
    return json.loads(document) if isinstance(document, str) else document


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _missing_keys(mapping: dict[str, Any], keys: Iterable[str], pointer: str) -> list[str]:
    return [
        f"{pointer}: required key [{key}] not found" for key in keys if mapping.get(key) is None
    ]


def _tags(properties: dict[str, Any]) -> list[dict[str, str]]:
    return [{"Key": tag["Key"], "Value": str(tag["Value"])} for tag in properties.get("Tags") or []]
