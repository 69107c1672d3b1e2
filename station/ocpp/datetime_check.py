"""`format: date-time` checking for OCPP 2.0.1 payloads (the `ocpp` package's jsonschema run skips formats).

The date-time field paths of each action's request schema are collected once; each incoming CALL's
values on those paths must be RFC 3339 date-times that exist on the calendar.
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import ocpp.v201

SCHEMAS = Path(ocpp.v201.__file__).parent / "schemas"
_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)$")
Path_ = tuple[str, ...]


def valid_datetime(value: Any) -> bool:
    if not isinstance(value, str) or not _RFC3339.match(value):
        return False
    text = value.upper().replace("Z", "+00:00")
    if "." in text:  # fromisoformat takes at most 6 fraction digits
        head, rest = text.split(".", 1)
        digits = re.match(r"\d+", rest)
        assert digits
        text = f"{head}.{digits.group()[:6].ljust(6, '0')}{rest[digits.end():]}"
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=None)
def datetime_paths(action: str) -> tuple[Path_, ...]:
    path = SCHEMAS / f"{action}Request.json"
    if not path.exists():
        return ()
    schema = json.loads(path.read_text(encoding="utf-8-sig"))
    found: list[Path_] = []
    _walk(schema, schema, (), found, 0)
    return tuple(found)


def _walk(node: dict[str, Any], root: dict[str, Any], at: Path_, found: list[Path_], depth: int) -> None:
    if depth > 20:
        return
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = root.get("definitions", {}).get(name, {})
    if node.get("format") == "date-time":
        found.append(at)
    for key, child in node.get("properties", {}).items():
        _walk(child, root, at + (key,), found, depth + 1)
    if isinstance(node.get("items"), dict):
        _walk(node["items"], root, at + ("*",), found, depth + 1)


def _values(data: Any, path: Path_) -> Iterator[tuple[str, Any]]:
    if not path:
        yield "", data
        return
    head, rest = path[0], path[1:]
    if head == "*":
        if isinstance(data, list):
            for n, item in enumerate(data):
                for where, value in _values(item, rest):
                    yield f"[{n}]{where}", value
    elif isinstance(data, dict) and head in data:
        for where, value in _values(data[head], rest):
            yield f".{head}{where}", value


def bad_datetimes(action: str, payload: dict[str, Any]) -> list[str]:
    """Paths of date-time fields in `payload` that are not valid date-times."""
    return [where.lstrip(".") for path in datetime_paths(action) for where, value in _values(payload, path)
            if not valid_datetime(value)]
