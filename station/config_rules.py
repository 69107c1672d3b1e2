"""Checks that span several keys, and the drivers' own settings.

They run on the raw TOML data next to the model validation, so one run reports everything.
Each check looks only at values of the right type; wrong types are the model validation's to report.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

from pydantic.v1 import BaseModel

from hal import registry
from station.config_model import ConnectorConfig, EvseConfig, StationConfig
from station.config_validation import Loc, Problem, in_bounds, key_path, toml_value, validate_model

#: The HAL base class each driver kind must implement, as "module:Class" (imported on use).
DRIVER_BASES = {
    "board": ("hal.board", "Board"),
    "meter": ("hal.meter", "Meter"),
    "token_reader": ("hal.token_reader", "TokenReader"),
}
KIND_WORDS = {"board": "board", "meter": "meter", "token_reader": "token reader"}

#: Connector types that carry DC only / AC only (OCPP ConnectorEnumType names).
DC_CONNECTORS = {"cCCS1", "cCCS2", "cG105", "cChaoJi", "cGBT"}
AC_CONNECTORS = {
    "cType1", "cType2", "sType2", "sType3", "s309-1P-16A", "s309-3P-16A", "s309-1P-32A", "s309-3P-32A",
    "sBS1361", "sCEE-7-7", "Other1PhMax16A", "Other3Ph",
}
#: (phases the connector can carry, its current rating in A; None: no fixed rating) for AC types.
#: Type 2 per IEC 62196-2: 63 A on three phases, 70 A on one.
AC_RATINGS: dict[str, tuple[tuple[int, ...], dict[int, float] | None]] = {
    "cType1": ((1,), None),
    "cType2": ((1, 3), {1: 70, 3: 63}),
    "sType2": ((1, 3), {1: 70, 3: 63}),
    "s309-1P-16A": ((1,), {1: 16}),
    "s309-3P-16A": ((1, 3), {1: 16, 3: 16}),
    "s309-1P-32A": ((1,), {1: 32}),
    "s309-3P-32A": ((1, 3), {1: 32, 3: 32}),
    "sBS1361": ((1,), {1: 13}),
    "sCEE-7-7": ((1,), {1: 16}),
    "Other1PhMax16A": ((1,), {1: 16}),
}
#: AF_UNIX paths are limited to 108 bytes including the terminating NUL.
MAX_SOCKET_PATH_BYTES = 107
#: OCPP 2.0.1 IdTokenType.idToken is at most 36 characters.
MAX_TOKEN_CHARS = 36
MIN_SITE_CURRENT_A = 6


# --- driver settings -------------------------------------------------------------------------

def resolve_driver(kind: str, table: dict[str, Any], loc: Loc) -> tuple[type | None, BaseModel | None, list[Problem]]:
    """Load the driver named in `table` (a [evse.board]-style table at `loc`) and validate its
    settings against the driver's `Settings` model."""
    name = table.get("driver")
    if not isinstance(name, str):
        return None, None, []  # missing or mistyped: the model validation reports it
    words = KIND_WORDS[kind]
    here = loc + ("driver",)
    try:
        cls = registry.load(kind, name)
    except registry.DriverNotFound as exc:
        available = ", ".join(exc.available) or "none"
        return None, None, [Problem(here, f'no {words} driver named "{name}"; available: {available}', name, True)]
    except Exception as exc:  # an installed driver whose module fails to import (missing dependency, bug)
        message = f'{words} driver "{name}" could not be loaded: {type(exc).__name__}: {exc}'
        return None, None, [Problem(here, message, name, True)]
    base = _driver_base(kind)
    if base is not None and not (isinstance(cls, type) and issubclass(cls, base)):
        message = f'"{name}" is registered as a {words} driver but is not a {base.__name__}'
        return None, None, [Problem(here, message, name, True)]
    settings_model = getattr(cls, "Settings", None)
    if not (isinstance(settings_model, type) and issubclass(settings_model, BaseModel)):
        message = f'{words} driver "{name}" has no pydantic.v1 Settings model; its settings cannot be checked'
        return None, None, [Problem(here, message, name, True)]
    raw = {k: v for k, v in table.items() if k != "driver"}
    settings, problems = validate_model(settings_model, raw, loc, extra_keys=("driver",))
    return cls, settings, problems


def _driver_base(kind: str) -> type | None:
    import importlib

    spec = DRIVER_BASES.get(kind)
    return getattr(importlib.import_module(spec[0]), spec[1]) if spec else None


def driver_tables(data: dict[str, Any]) -> Iterator[tuple[str, Loc, dict[str, Any], bool]]:
    """(kind, loc, table, written in the file) for every driver table, including the default
    token reader when [token_reader] is absent."""
    if "token_reader" not in data:
        default = StationConfig.__fields__["token_reader"].default
        yield "token_reader", ("token_reader",), {"driver": default.driver}, False
    elif isinstance(data["token_reader"], dict):
        yield "token_reader", ("token_reader",), data["token_reader"], True
    if isinstance(data.get("grid_meter"), dict):
        yield "meter", ("grid_meter",), data["grid_meter"], True
    for i, evse in evse_tables(data):
        for kind in ("board", "meter"):
            if isinstance(evse.get(kind), dict):
                yield kind, ("evse", i, kind), evse[kind], True


def check_drivers(data: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    for kind, loc, table, written in driver_tables(data):
        found = resolve_driver(kind, table, loc)[2]
        if not written:
            note = " (the default when there is no [token_reader] table)"
            found = [Problem(p.loc, p.message + note, p.value, p.has_value) for p in found]
        problems += found
    return problems


# --- cross-field checks ----------------------------------------------------------------------

def evse_tables(data: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    evses = data.get("evse")
    if not isinstance(evses, list):
        return []
    return [(i, e) for i, e in enumerate(evses) if isinstance(e, dict)]


def connector_tables(evse: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    connectors = evse.get("connector")
    if not isinstance(connectors, list):
        return []
    return [(i, c) for i, c in enumerate(connectors) if isinstance(c, dict)]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _num(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def check_rules(data: dict[str, Any], base_dir: Path) -> list[Problem]:
    problems = _check_numbering(
        [(("evse", i, "id"), _int(e.get("id"))) for i, e in evse_tables(data)], EvseConfig, "EVSE", "evse")
    for i, evse in evse_tables(data):
        problems += _check_numbering(
            [(("evse", i, "connector", j, "id"), _int(c.get("id"))) for j, c in connector_tables(evse)],
            ConnectorConfig, "connector", f"evse[{i + 1}].connector")
        problems += _check_evse(i, evse)
    problems += _check_authorization(data)
    problems += _check_limits(data)
    problems += _check_paths(data, base_dir)
    problems += _check_iso15118(data)
    return problems


def _check_iso15118(data: dict[str, Any]) -> list[Problem]:
    """[evse.iso15118] needs an EVSE that emits 5 %; the package's PKI path is process-wide."""
    problems = []
    pki_paths: dict[str, Loc] = {}
    for i, evse in evse_tables(data):
        table = evse.get("iso15118")
        if not isinstance(table, dict):
            continue
        if evse.get("hlc", False) is not True:
            problems.append(Problem(("evse", i, "hlc"), "must be true when [evse.iso15118] is present (the EVSE "
                                    "must emit 5 % PWM for SLAC and ISO 15118)", evse.get("hlc", False), "hlc" in evse))
        tls = table.get("tls")
        pki = tls.get("pki_path") if isinstance(tls, dict) else None
        if isinstance(pki, str):
            first = next(iter(pki_paths.values()), None)
            if first is not None and pki not in pki_paths:
                problems.append(Problem(("evse", i, "iso15118", "tls", "pki_path"),
                                        f"must be the same for every EVSE (the SECC's PKI is process-wide); "
                                        f"{key_path(first)} has {next(iter(pki_paths))!r}", pki, True))
            pki_paths.setdefault(pki, ("evse", i, "iso15118", "tls", "pki_path"))
    return problems


def _check_numbering(ids: list[tuple[Loc, int | None]], model: type[BaseModel], what: str, where: str) -> list[Problem]:
    """Unique ids, and (OCPP 2.0.1 numbering rules) 1, 2, 3 ... without gaps."""
    problems = []
    seen: dict[int, Loc] = {}
    for loc, ident in ids:
        if ident is None:
            continue
        if ident in seen:
            first = seen[ident]
            problems.append(Problem(loc, f"duplicate {what} id; {_position(first)} already uses {ident}", ident, True))
        else:
            seen[ident] = loc
    if problems or len(seen) != len(ids) or any(not in_bounds(model, model.__fields__["id"], i) for i in seen):
        return problems  # wrong types and out-of-range ids are the model validation's to report
    expected = set(range(1, len(ids) + 1))
    if set(seen) != expected:
        gap = min(expected - set(seen))
        first_loc, first_id = next((loc, ident) for loc, ident in ids if ident not in expected)
        problems.append(Problem(
            first_loc, f"{what} ids must be numbered 1, 2, 3 ... without gaps (OCPP 2.0.1); no {where} has id {gap}",
            first_id, True))
    return problems


def _position(loc: Loc) -> str:
    return key_path(loc[:-1])


def _check_evse(i: int, evse: dict[str, Any]) -> list[Problem]:
    problems = []
    kind = evse.get("kind", "ac")
    hlc = evse.get("hlc", False)
    if kind == "dc" and hlc is False:
        problems.append(Problem(
            ("evse", i, "hlc"), 'must be true when kind = "dc" (a DC EVSE is controlled over ISO 15118 / DIN 70121)',
            hlc, "hlc" in evse))
    phases = _int(evse.get("phases", 3))
    current = _num(evse.get("max_current_a", 32.0))
    for j, connector in connector_tables(evse):
        ctype = connector.get("type", "sType2")
        if not isinstance(ctype, str):
            continue
        loc = ("evse", i, "connector", j, "type")
        written = "type" in connector
        if kind == "dc" and ctype in AC_CONNECTORS:
            message = 'is an AC connector; a kind = "dc" EVSE needs a DC one (e.g. cCCS2)'
            problems.append(Problem(loc, message, ctype, written))
        elif kind == "ac" and ctype in DC_CONNECTORS:
            message = 'is a DC connector; a kind = "ac" EVSE needs an AC one (e.g. sType2)'
            problems.append(Problem(loc, message, ctype, written))
        elif kind == "ac" and ctype in AC_RATINGS:
            problems += _check_ac_rating(i, evse, loc, ctype, written, phases, current)
        if connector.get("lock") is True and not ctype.startswith("s"):
            problems.append(Problem(
                ("evse", i, "connector", j, "lock"),
                f"only a socket (type s...) has a lock; {ctype} is not a socket: set lock = false", True, True))
    return problems


def _check_ac_rating(i: int, evse: dict[str, Any], loc: Loc, ctype: str, written: bool,
                     phases: int | None, current: float | None) -> list[Problem]:
    allowed_phases, ratings = AC_RATINGS[ctype]
    if phases in (1, 3) and phases not in allowed_phases:
        message = f"must be 1: connector type {ctype} is single-phase"
        return [Problem(("evse", i, "phases"), message, phases, "phases" in evse)]
    field = EvseConfig.__fields__["max_current_a"]
    if current is None or not in_bounds(EvseConfig, field, current):
        return []  # out of the model's range: reported there
    if ratings and phases in ratings and current > ratings[phases]:
        return [Problem(
            ("evse", i, "max_current_a"),
            f"is above what connector type {ctype} is rated for on {phases} phase{'s' if phases == 3 else ''}: "
            f"at most {ratings[phases]:g} A", current, "max_current_a" in evse)]
    return []


def _check_authorization(data: dict[str, Any]) -> list[Problem]:
    auth = data.get("authorization")
    if not isinstance(auth, dict):
        return []
    problems = []
    mode = auth.get("mode", "free")
    tokens = auth.get("tokens", [])
    if not isinstance(tokens, list):
        return []
    if mode == "local" and not tokens:
        problems.append(Problem(
            ("authorization", "tokens"), 'at least one token is required when mode = "local" (else no one can charge)',
            tokens, "tokens" in auth))
    if mode == "free" and tokens:
        problems.append(Problem(
            ("authorization", "tokens"),
            'tokens are listed but mode = "free" lets every plug-in charge without one: '
            'set mode = "local" or remove the tokens', tokens, True))
    seen: set[str] = set()
    for k, token in enumerate(tokens):
        if not isinstance(token, str):
            continue
        loc = ("authorization", "tokens", k)
        if not token.strip():
            problems.append(Problem(loc, "must not be empty", token, True))
        elif len(token) > MAX_TOKEN_CHARS:
            problems.append(Problem(loc, f"must be at most {MAX_TOKEN_CHARS} characters (OCPP idToken)", token, True))
        elif token in seen:
            problems.append(Problem(loc, "is listed twice", token, True))
        seen.add(token)
    return problems


def _check_limits(data: dict[str, Any]) -> list[Problem]:
    limits = data.get("limits")
    site = _num(limits.get("site_max_current_a")) if isinstance(limits, dict) else None
    # Zero and below are the model's to report (with the same words).
    if site is not None and 0 < site < MIN_SITE_CURRENT_A:
        message = f"must be between {MIN_SITE_CURRENT_A} and 1000 A (below {MIN_SITE_CURRENT_A} A no EV can charge)"
        return [Problem(("limits", "site_max_current_a"), message, site, True)]
    return []


def resolve_path(value: str | Path, base_dir: Path) -> Path:
    """A path from the config: `~` expanded, relative paths taken from the config file's directory."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


def _check_paths(data: dict[str, Any], base_dir: Path) -> list[Problem]:
    problems = []
    for table, key in (("station", "state_dir"), ("control", "socket")):
        section = data.get(table)
        value = section.get(key) if isinstance(section, dict) else None
        if isinstance(value, str) and not value.strip():
            problems.append(Problem((table, key), "must not be empty (leave the key out for the default)", value, True))
    return problems + _check_socket(data, base_dir)


def _check_socket(data: dict[str, Any], base_dir: Path) -> list[Problem]:
    control = data.get("control")
    socket = control.get("socket") if isinstance(control, dict) else None
    if not isinstance(socket, str) or not socket.strip():
        return []
    resolved = resolve_path(socket, base_dir)
    size = len(os.fsencode(str(resolved)))
    if size > MAX_SOCKET_PATH_BYTES:
        message = (f"resolves to {toml_value(str(resolved))}, {size} bytes long; a Unix socket path may be "
                   f"at most {MAX_SOCKET_PATH_BYTES} bytes: choose a shorter path")
        return [Problem(("control", "socket"), message, socket, True)]
    return []
