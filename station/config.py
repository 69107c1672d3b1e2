"""Loading the station config file, and `station check-config`.

`load_config(path)` reads the TOML file, validates it against station.config_model, loads every
driver named in it and validates that driver's settings, runs the cross-field checks
(station.config_rules), and either returns the StationConfig or raises ConfigError listing every
problem at once. Relative paths in the file (station.state_dir, control.socket) are resolved
against the config file's directory.

Drivers at run time: `driver_settings(kind, driver_config)` returns the driver class and its
validated settings object, ready for `cls(settings, context)`; for a config that came from
load_config it cannot fail.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic.v1 import BaseModel

from station import paths
from station.config_model import DriverConfig, StationConfig
from station.config_rules import check_drivers, check_rules, resolve_driver, resolve_path
from station.config_validation import Problem, bare_key, key_path, toml_value, validate_model

__all__ = ["ConfigError", "ConfigIssue", "load_config", "driver_settings", "effective_config", "register"]


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a config file. `key` is a path into the file ("evse[2].connector[1].id", ""
    for problems with the file as a whole); `value` is the value as written in TOML, or None."""

    file: str
    key: str
    value: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.key:
            where += f": {self.key}"
            if self.value is not None:
                where += f" = {self.value}"
        return f"{where}: {self.message}"


class ConfigError(ValueError):
    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


# --- loading ---------------------------------------------------------------------------------

def load_config(path: str | Path) -> StationConfig:
    """The validated station config in `path`; raises ConfigError naming every problem."""
    file = str(path)
    data = read_toml(path)
    base_dir = Path(path).absolute().parent
    config, problems = validate_model(StationConfig, data)
    problems += check_drivers(data)
    problems += check_rules(data, base_dir)
    if problems:
        raise ConfigError([_issue(file, p) for p in _in_file_order(problems, data)])
    assert isinstance(config, StationConfig)
    return _resolve_paths(config, base_dir)


def read_toml(path: str | Path) -> dict[str, Any]:
    """The parsed TOML document, or ConfigError with one issue saying why there is none."""
    file = str(path)

    def fail(message: str) -> ConfigError:
        return ConfigError([ConfigIssue(file, "", None, message)])

    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise fail("file not found") from None
    except IsADirectoryError:
        raise fail("is a directory, not a config file") from None
    except PermissionError:
        raise fail("permission denied: cannot read the file") from None
    except OSError as exc:
        raise fail(f"cannot read the file: {exc.strerror or exc}") from None
    if raw.startswith(b"\xef\xbb\xbf"):  # byte-order mark some Windows editors write
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _position(raw, exc.start)
        raise fail(f"line {line}, column {column}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                   "save the file as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise fail(_syntax_words(str(exc), text)) from None


def _position(raw: bytes, offset: int) -> tuple[int, int]:
    line_start = raw.rfind(b"\n", 0, offset) + 1
    return raw.count(b"\n", 0, offset) + 1, offset - line_start + 1


def _syntax_words(message: str, text: str) -> str:
    """tomllib says 'Invalid value (at line 3, column 17)'; add the line as written."""
    what = message
    match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    where = ""
    if match:
        line_no, column = int(match.group(1)), int(match.group(2))
        what = message[: match.start()]
        where = f"line {line_no}, column {column}: "
        lines = text.splitlines()
        if 0 < line_no <= len(lines) and lines[line_no - 1].strip():
            what += f" in: {lines[line_no - 1].strip()}"
    elif message.endswith("(at end of document)"):
        what = message[: -len("(at end of document)")].rstrip()
        where = "at the end of the file: "
    what = what[:1].lower() + what[1:]
    return f"{where}TOML syntax error: {what}"


def _issue(file: str, problem: Problem) -> ConfigIssue:
    value = toml_value(problem.value) if problem.has_value else None
    return ConfigIssue(file, key_path(problem.loc), value, problem.message)


def _in_file_order(problems: list[Problem], data: dict[str, Any]) -> list[Problem]:
    """Sort by where the key is in the file (tomllib keeps the file's order); keys that are not
    in the file (missing, defaults) come at the end of their table."""

    def position(p: Problem) -> tuple[int, ...]:
        out, node = [], data
        for part in p.loc:
            if isinstance(part, int):
                out.append(part)
                node = node[part] if isinstance(node, list) and part < len(node) else None
            elif isinstance(node, dict) and part in node:
                out.append(list(node).index(part))
                node = node[part]
            else:
                out.append(10**6)
                node = None
        return tuple(out)

    return sorted(problems, key=position)


def _resolve_paths(config: StationConfig, base_dir: Path) -> StationConfig:
    station, control = config.station, config.control
    if station.state_dir is not None:
        station = station.copy(update={"state_dir": resolve_path(station.state_dir, base_dir)})
    if control.socket is not None:
        control = control.copy(update={"socket": resolve_path(control.socket, base_dir)})
    return config.copy(update={"station": station, "control": control})


def driver_settings(kind: str, driver_config: DriverConfig) -> tuple[type, BaseModel]:
    """The driver class registered as `kind` ("board", "meter", "token_reader") under
    `driver_config.driver`, and its validated Settings instance. Raises ConfigError."""
    table = {"driver": driver_config.driver, **driver_config.driver_settings()}
    cls, settings, problems = resolve_driver(kind, table, (kind,))
    if problems or cls is None or settings is None:
        raise ConfigError([_issue("<config>", p) for p in problems])
    return cls, settings


# --- the effective config (defaults filled in) ------------------------------------------------

def effective_config(config: StationConfig) -> dict[str, Any]:
    """The config as plain data with every default filled in, driver settings included."""
    data = _plain(config.dict(by_alias=True))
    data["token_reader"] = _driver_data("token_reader", config.token_reader)
    if config.grid_meter is not None:
        data["grid_meter"] = _driver_data("meter", config.grid_meter)
    for evse_data, evse in zip(data["evse"], config.evses):
        evse_data["board"] = _driver_data("board", evse.board)
        if evse.meter is not None:
            evse_data["meter"] = _driver_data("meter", evse.meter)
    return data


def _driver_data(kind: str, driver_config: DriverConfig) -> dict[str, Any]:
    _, settings = driver_settings(kind, driver_config)
    return {"driver": driver_config.driver, **_plain(settings.dict(by_alias=True))}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def to_toml(data: dict[str, Any]) -> str:
    """TOML text for plain data; keys that are not set (None) become comments."""
    lines: list[str] = []
    _table(lines, "", data, array=False)
    return "\n".join(lines).strip() + "\n"


def _is_table_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _table(lines: list[str], header: str, table: dict[str, Any], array: bool) -> None:
    if header:
        lines += ["", f"[[{header}]]" if array else f"[{header}]"]
    nested = []
    for key, value in table.items():
        if isinstance(value, dict) or _is_table_list(value):
            nested.append((key, value))
        elif value is None:
            lines.append(f"# {bare_key(key)}: not set")
        else:
            lines.append(f"{bare_key(key)} = {toml_value(value, None)}")
    for key, value in nested:
        name = f"{header}.{bare_key(key)}" if header else bare_key(key)
        if isinstance(value, dict):
            _table(lines, name, value, array=False)
        else:
            for item in value:
                _table(lines, name, item, array=True)


def summary(config: StationConfig) -> str:
    """'station SIM-AC-2, 2 EVSEs: #1 AC 3-phase 32 A sType2 (board sim), ...'"""
    parts = []
    for evse in config.evses:
        types = "+".join(c.type for c in evse.connectors)
        rating = f"AC {evse.phases}-phase {evse.max_current_a:g} A" if evse.kind == "ac" else "DC"
        parts.append(f"#{evse.id} {rating} {types} (board {evse.board.driver})")
    count = len(config.evses)
    grid = f"; grid meter {config.grid_meter.driver}" if config.grid_meter is not None else ""
    return f"station {config.station.id}, {count} EVSE{'s' if count != 1 else ''}: " + ", ".join(parts) + grid


# --- station check-config ----------------------------------------------------------------------

def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check-config", help="validate station config files",
        description="Validate station config files: syntax, every key, driver settings and cross-field "
                    "rules. Exit status 0 if all are valid, 1 if any has errors, 2 for usage errors.")
    parser.add_argument("files", nargs="+", metavar="FILE", help="station config file (TOML)")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--print", dest="show", action="store_const", const="toml",
                       help="print the effective config (defaults filled in) as TOML")
    shown.add_argument("--json", dest="show", action="store_const", const="json",
                       help="print the effective config (defaults filled in) as JSON")
    parser.set_defaults(func=check_config_command, show=None)


def check_config_command(args: argparse.Namespace) -> int:
    # With --print/--json stdout carries the config only; verdicts go to stderr.
    report = sys.stderr if args.show else sys.stdout
    failed = 0
    for file in args.files:
        try:
            config = load_config(file)
        except ConfigError as exc:
            failed += 1
            for issue in exc.issues:
                print(issue, file=report)
            count = len(exc.issues)
            print(f"{file}: {count} error{'s' if count != 1 else ''}", file=report)
            continue
        print(f"{file}: OK ({summary(config)})", file=report)
        if args.show == "json":
            print(json.dumps(effective_config(config), indent=2))
        elif args.show == "toml":
            print(_effective_toml(file, config))
    return 1 if failed else 0


def _effective_toml(file: str, config: StationConfig) -> str:
    state = paths.state_dir(config.station.state_dir)
    socket = paths.control_socket(config.control.socket, state)
    return (f"# {file} with defaults filled in\n"
            f"# at run time in this environment: state directory {state}, control socket {socket}\n\n"
            + to_toml(effective_config(config)))
