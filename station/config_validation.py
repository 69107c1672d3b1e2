"""Validate raw TOML data against pydantic.v1 models and say what is wrong in a field engineer's words.

pydantic v1 coerces silently (1.5 -> 1 for an int, "yes" -> True, 32 -> "32"), which would hide
typos in a config that decides how much current a car may draw. So before pydantic runs, a strict
pass compares every value's TOML type with the field's type; pydantic then checks ranges, literals,
lengths and required keys. Every problem carries the key's location (`loc`, as pydantic spells it:
keys and 0-based list positions) so the caller can print "evse[2].connector[1].id".
"""
from __future__ import annotations

import datetime as dt
import difflib
import json
import math
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Literal, get_args, get_origin

from pydantic.v1 import BaseModel, Extra, ValidationError
from pydantic.v1.fields import SHAPE_LIST, SHAPE_SEQUENCE, SHAPE_SINGLETON, ModelField

from hal import registry
from station.config_model import DriverConfig

Loc = tuple[str | int, ...]

#: Stricter lower bounds than the model's, where the model's bound alone would let a station
#: misbehave (a site limit below 6 A means no EV can ever charge).
BOUND_OVERRIDES: dict[tuple[str, str], tuple[float, bool]] = {
    ("LimitsConfig", "site_max_current_a"): (6, True),
}

#: Regular expressions in the models, in words.
PATTERN_WORDS = {
    r"^[A-Za-z0-9._:-]+$": "may contain only letters, digits and . _ : - (no spaces)",
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the data. `value` is the raw TOML value when the file has one."""

    loc: Loc
    message: str
    value: Any = None
    has_value: bool = False


# --- rendering ------------------------------------------------------------------------------

def key_path(loc: Loc) -> str:
    """('evse', 1, 'connector', 0, 'id') -> 'evse[2].connector[1].id' (positions count from 1)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def table_header(loc: Loc) -> str:
    """('evse', 0, 'connector') -> 'evse.connector': the name used in a [table] header."""
    return ".".join(str(p) for p in loc if not isinstance(p, int))


def number(x: float | int) -> str:
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


def toml_value(value: Any, limit: int | None = 80) -> str:
    """A value as it would be written in TOML (shortened to `limit` characters)."""
    text = _toml(value)
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (str, PurePath)):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{bare_key(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))


def bare_key(key: str) -> str:
    if key and all(c.isalnum() and c.isascii() or c in "_-" for c in key):
        return key
    return json.dumps(key)


def lookup(data: Any, loc: Loc) -> tuple[bool, Any]:
    """(found, value) of the raw value at `loc`."""
    for part in loc:
        if isinstance(part, int):
            if not isinstance(data, list) or part >= len(data):
                return False, None
        elif not isinstance(data, dict) or part not in data:
            return False, None
        data = data[part]
    return True, data


# --- the models' fields -----------------------------------------------------------------------

def fields_by_key(model: type[BaseModel]) -> dict[str, ModelField]:
    """A model's fields under the names a TOML file uses (the alias)."""
    return {f.alias: f for f in model.__fields__.values()}


def is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def is_list(field: ModelField) -> bool:
    return field.shape in (SHAPE_LIST, SHAPE_SEQUENCE)


def field_at(root: type[BaseModel], loc: Loc) -> tuple[type[BaseModel] | None, ModelField | None]:
    """The model that holds the key at `loc` and that key's field (None where unknown)."""
    model: type[BaseModel] | None = root
    field: ModelField | None = None
    for i, part in enumerate(loc):
        if isinstance(part, int):
            continue
        if model is None:
            return None, None
        field = fields_by_key(model).get(part)
        if field is None:
            return (model, None) if i == len(loc) - 1 else (None, None)
        if i == len(loc) - 1:
            return model, field
        model = field.type_ if is_model(field.type_) else None
    return None, None


def allowed_keys(model: type[BaseModel], extra_keys: tuple[str, ...] = ()) -> list[str]:
    return list(fields_by_key(model)) + [k for k in extra_keys if k not in fields_by_key(model)]


def unit(name: str) -> str:
    for suffix, word in (("_a", " A"), ("_s", " s"), ("_v", " V"), ("_w", " W"), ("_kw", " kW")):
        if name.endswith(suffix):
            return word
    return ""


def bounds(model: type[BaseModel], field: ModelField) -> tuple[Any, bool, Any, bool]:
    """(low, low inclusive, high, high inclusive); None where open."""
    info = field.field_info
    low, low_inc = (info.ge, True) if info.ge is not None else (info.gt, False)
    high, high_inc = (info.le, True) if info.le is not None else (info.lt, False)
    override = BOUND_OVERRIDES.get((model.__name__, field.name))
    if override is not None:
        low, low_inc = override
    return low, low_inc, high, high_inc


def range_words(model: type[BaseModel], field: ModelField) -> str:
    low, low_inc, high, high_inc = bounds(model, field)
    u = unit(field.alias)
    if low is not None and high is not None and low_inc and high_inc:
        return f"must be between {number(low)} and {number(high)}{u}"
    parts = []
    if low is not None:
        parts.append(f"at least {number(low)}" if low_inc else f"more than {number(low)}")
    if high is not None:
        parts.append(f"at most {number(high)}" if high_inc else f"less than {number(high)}")
    return "must be " + " and ".join(parts) + u if parts else "is out of range"


def in_bounds(model: type[BaseModel], field: ModelField, x: float) -> bool:
    low, low_inc, high, high_inc = bounds(model, field)
    if low is not None and (x < low or (x == low and not low_inc)):
        return False
    return not (high is not None and (x > high or (x == high and not high_inc)))


# --- type words ------------------------------------------------------------------------------

TYPE_WORDS = {
    "type_error.integer": "must be a whole number",
    "type_error.float": "must be a number",
    "type_error.bool": "must be true or false",
    "type_error.str": "must be text (in quotes)",
    "type_error.path": "must be text (a path, in quotes)",
    "type_error.dict": "must be a table",
    "type_error.list": "must be a list",
}


def expected_type(tp: Any) -> str | None:
    """The pydantic error type a wrongly typed value of field type `tp` corresponds to."""
    if isinstance(tp, type):
        if issubclass(tp, bool):
            return "type_error.bool"
        if issubclass(tp, int):
            return "type_error.integer"
        if issubclass(tp, float):
            return "type_error.float"
        if issubclass(tp, str):
            return "type_error.str"
        if issubclass(tp, PurePath):
            return "type_error.path"
    return None


def type_matches(tp: Any, value: Any) -> bool:
    kind = expected_type(tp)
    if kind == "type_error.bool":
        return isinstance(value, bool)
    if kind == "type_error.integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "type_error.float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind in ("type_error.str", "type_error.path"):
        return isinstance(value, str)
    return True


def literal_words(tp: Any) -> str:
    return "must be one of: " + ", ".join(toml_value(a, None) for a in get_args(tp))


def literal_matches(tp: Any, value: Any) -> bool:
    # True == 1 in Python; a TOML `true` is not the number 1.
    return any(type(a) is type(value) and a == value for a in get_args(tp))


def quote_hint(kind: str, value: Any) -> str:
    """Numbers and booleans written in quotes are the commonest type slip."""
    if not isinstance(value, str):
        return ""
    text = value.strip()
    if kind == "type_error.bool" and text in ("true", "false"):
        return f" (write {text} without quotes)"
    if kind in ("type_error.integer", "type_error.float"):
        try:
            float(text)
        except ValueError:
            return ""
        return f" (write {text} without quotes)"
    return ""


# --- checks ----------------------------------------------------------------------------------

def strict_types(model: type[BaseModel], data: Any, loc: Loc = ()) -> list[Problem]:
    """Values whose TOML type differs from the field's, which pydantic v1 would coerce."""
    if not isinstance(data, dict):
        return []
    problems: list[Problem] = []
    fields = fields_by_key(model)
    for key, value in data.items():
        field = fields.get(key)
        if field is None:
            continue
        here = loc + (key,)
        if is_list(field):
            if isinstance(value, list):
                for i, item in enumerate(value):
                    problems += _strict_item(field.type_, item, here + (i,))
        elif field.shape == SHAPE_SINGLETON:
            problems += _strict_item(field.type_, value, here)
    return problems


def _strict_item(tp: Any, value: Any, loc: Loc) -> list[Problem]:
    if is_model(tp):
        return strict_types(tp, value, loc)
    if get_origin(tp) is Literal:
        if literal_matches(tp, value):
            return []
        return [Problem(loc, literal_words(tp) + _did_you_mean(value, get_args(tp)), value, True)]
    kind = expected_type(tp)
    if kind is None or type_matches(tp, value):
        return []
    return [Problem(loc, TYPE_WORDS[kind] + quote_hint(kind, value), value, True)]


def validate_model(
    model: type[BaseModel], data: Any, loc: Loc = (), extra_keys: tuple[str, ...] = (),
) -> tuple[BaseModel | None, list[Problem]]:
    """Validate `data` (found at `loc` in the file) against `model`; the instance if it is valid.
    `extra_keys` are keys the surrounding table allows besides the model's (e.g. `driver`)."""
    problems = strict_types(model, data, loc)
    reported = {p.loc for p in problems}
    instance = None
    try:
        instance = model.parse_obj(data)
    except ValidationError as exc:
        for error in exc.errors():
            if tuple(error["loc"]) == ("__root__",):  # a root validator: about the table as a whole
                problems.append(Problem(loc, str(error.get("msg", error["type"]))))
            elif loc + tuple(error["loc"]) not in reported:
                problems.append(explain(model, data, loc, error, extra_keys))
    if isinstance(data, dict) and model.__config__.extra != Extra.forbid and not issubclass(model, DriverConfig):
        # A driver whose Settings ignore unknown keys would silently drop a misspelt setting.
        for key in data:
            if key not in fields_by_key(model):
                problems.append(explain(model, data, loc, {"loc": (key,), "type": "value_error.extra"}, extra_keys))
    return (None if problems else instance), problems


def explain(model: type[BaseModel], data: Any, loc: Loc, error: dict, extra_keys: tuple[str, ...] = ()) -> Problem:
    """One pydantic v1 error in plain words."""
    rel: Loc = tuple(error["loc"])
    full = loc + rel
    kind = error["type"]
    ctx = error.get("ctx") or {}
    found, value = lookup(data, rel)
    holder, field = field_at(model, rel)

    if kind == "value_error.missing":
        if holder is not None and issubclass(holder, DriverConfig) and rel[-1] == "driver":
            return Problem(full, "required key is missing" + _driver_hint(full))
        return Problem(full, "required key is missing" + _missing_hint(full, field))
    if kind == "value_error.extra":
        allowed = allowed_keys(holder, extra_keys if len(rel) == 1 else ()) if holder else []
        return Problem(full, _unknown_words(str(rel[-1]), allowed))
    if kind == "value_error.const" and field is not None:
        return Problem(full, literal_words(field.type_) + _did_you_mean(value, get_args(field.type_)), value, found)
    if kind.startswith("value_error.number.") and field is not None and holder is not None:
        return Problem(full, range_words(holder, field), value, found)
    if kind == "value_error.any_str.min_length":
        limit = ctx.get("limit_value", 1)
        words = "must not be empty" if limit == 1 else f"must be at least {limit} characters long"
        return Problem(full, words, value, found)
    if kind == "value_error.any_str.max_length":
        return Problem(full, f"must be at most {ctx.get('limit_value')} characters long", value, found)
    if kind == "value_error.str.regex":
        pattern = str(ctx.get("pattern", ""))
        return Problem(full, PATTERN_WORDS.get(pattern, f"must match the pattern {pattern}"), value, found)
    if kind == "value_error.list.min_items":
        return Problem(full, _min_items_words(full, field, ctx.get("limit_value", 1)), value, found)
    if kind == "value_error.list.max_items":
        return Problem(full, f"must have at most {ctx.get('limit_value')} entries", value, found)
    if kind == "type_error.dict" and field is not None and issubclass(field.type_, DriverConfig) and not is_list(field):
        return Problem(full, f'must be a table, e.g. {rel[-1]} = {{ driver = "sim" }}', value, found)
    if kind == "type_error.list" and field is not None and is_model(field.type_):
        header = table_header(full)
        return Problem(full, f"must be a list of tables: write [[{header}]] (double brackets) for each", value, found)
    if kind in TYPE_WORDS:
        return Problem(full, TYPE_WORDS[kind] + quote_hint(kind, value), value, found)
    # Custom validators (value_error) and anything new: pydantic's own words are the best we have.
    return Problem(full, str(error.get("msg", kind)), value, found)


def _missing_hint(loc: Loc, field: ModelField | None) -> str:
    if field is None:
        return ""
    if is_model(field.type_) and is_list(field):
        return f" (add [[{table_header(loc)}]] tables)"
    if field.type_ is not None and is_model(field.type_) and issubclass(field.type_, DriverConfig):
        return f' (add an [{table_header(loc)}] table with driver = "...")'
    if is_model(field.type_):
        return f" (add a [{table_header(loc)}] table)"
    return ""


def _driver_hint(loc: Loc) -> str:
    kind = next((p for p in reversed(loc[:-1]) if p in registry.KINDS), None)
    if kind is None:
        return ""
    available = ", ".join(registry.available(str(kind))) or "none"
    return f" (the {str(kind).replace('_', ' ')} driver's name; available: {available})"


def _min_items_words(loc: Loc, field: ModelField | None, limit: int) -> str:
    if field is not None and is_model(field.type_):
        return f"needs at least {limit} [[{table_header(loc)}]] table{'s' if limit != 1 else ''}"
    return f"must have at least {limit} entr{'ies' if limit != 1 else 'y'}"


def _unknown_words(key: str, allowed: list[str]) -> str:
    words = "unknown key; allowed: " + (", ".join(allowed) or "none")
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
    if close:
        words += f"; did you mean {close[0]}?"
    return words


def _did_you_mean(value: Any, choices: tuple[Any, ...]) -> str:
    if not isinstance(value, str):
        return ""
    texts = [c for c in choices if isinstance(c, str)]
    by_lower = {c.lower(): c for c in texts}
    close = difflib.get_close_matches(value.lower(), list(by_lower), n=1, cutoff=0.75)
    return f"; did you mean {toml_value(by_lower[close[0]])}?" if close else ""
