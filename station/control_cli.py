"""`station status` and `station sim ...`: talk to a running station over its control socket.

Exit codes: 0 ok, 1 the station answered with an error, 2 usage or connection problem.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable

from station.control import ControlError, to_json
from station.control_client import StationUnreachable, call, watch

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2

#: Shown first, in this order, when present; any other key follows alphabetically.
STATUS_KEYS = (
    "state", "connector_status", "charging_state", "pilot", "cp", "contactor_closed", "current_limit_a",
    "power_w", "energy_wh", "link_up", "faults",
)


class UsageProblem(Exception):
    """Bad option or unreadable config: exit code 2."""


def register(subparsers: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("station to talk to")
    where.add_argument("--socket", type=Path, metavar="PATH", help="control socket of the station")
    where.add_argument("--config", type=Path, metavar="FILE", help="station config (its socket is used)")

    status = subparsers.add_parser("status", parents=[common], help="show the state of a running station")
    status.add_argument("--json", action="store_true", help="print the raw JSON")
    status.add_argument("--watch", action="store_true", help="then print events as they happen (Ctrl-C ends)")
    status.set_defaults(func=lambda a: _run(a, _status))

    sim = subparsers.add_parser("sim", help="drive the simulator of a running station (driver = \"sim\")")
    sim_sub = sim.add_subparsers(dest="sim_command", metavar="ACTION", required=True)

    plug = sim_sub.add_parser("plug", parents=[common], help="plug a simulated EV in")
    plug.add_argument("evse", type=int)
    plug.add_argument("--profile", help="EV profile (see `station sim profiles`), default ac-3ph-16a")
    plug.add_argument("--soc", type=float, dest="soc_start", metavar="PCT", help="state of charge at plug-in")
    plug.add_argument("--target", type=float, dest="soc_target", metavar="PCT", help="stop charging at this SoC")
    plug.add_argument("--battery-wh", type=float, dest="battery_wh", metavar="WH")
    plug.add_argument("--max-current", type=float, dest="max_current_a", metavar="A", help="EV's max current")
    plug.add_argument("--reaction", type=float, dest="reaction_s", metavar="S", help="EV reaction time")
    plug.add_argument("--ventilation", action="store_const", const=True, dest="wants_ventilation",
                      help="EV requests ventilation (state D)")
    plug.set_defaults(func=lambda a: _run(a, _sim_plug))

    unplug = sim_sub.add_parser("unplug", parents=[common], help="unplug the EV")
    unplug.add_argument("evse", type=int)
    unplug.set_defaults(func=lambda a: _run(a, _simple("sim.unplug", "evse")))

    token = sim_sub.add_parser("token", parents=[common], help="present an identification token")
    token.add_argument("id_token", metavar="ID")
    token.add_argument("--evse", type=int, help="the EVSE whose reader sees it (default: station-wide)")
    token.add_argument("--type", dest="token_type", metavar="T", help="OCPP IdToken type, default ISO14443")
    token.set_defaults(func=lambda a: _run(a, _sim_token))

    fault = sim_sub.add_parser("fault", parents=[common], help="inject (or --clear) a fault")
    fault.add_argument("evse", type=int)
    fault.add_argument("fault", metavar="NAME", help="see `station sim profiles` for the list")
    fault.add_argument("--clear", action="store_true", help="remove the fault instead")
    fault.set_defaults(func=lambda a: _run(a, _sim_fault))

    ev = sim_sub.add_parser("ev", parents=[common], help="make the EV act: pause, resume, ventilation-on/off")
    ev.add_argument("evse", type=int)
    ev.add_argument("action", metavar="ACTION")
    ev.set_defaults(func=lambda a: _run(a, _simple("sim.ev", "evse", "action")))

    bay = sim_sub.add_parser("bay", parents=[common], help="a car parks in (occupied) or leaves (free) the bay")
    bay.add_argument("evse", type=int)
    bay.add_argument("occupied", choices=("occupied", "free"))
    bay.set_defaults(func=lambda a: _run(a, _sim_bay))

    state = sim_sub.add_parser("state", parents=[common], help="physical state of the simulated ports")
    state.add_argument("evse", type=int, nargs="?")
    state.add_argument("--json", action="store_true", help="print the raw JSON")
    state.set_defaults(func=lambda a: _run(a, _sim_state))

    profiles = sim_sub.add_parser("profiles", parents=[common], help="EV profiles, faults and EV actions")
    profiles.add_argument("--json", action="store_true", help="print the raw JSON")
    profiles.set_defaults(func=lambda a: _run(a, _sim_profiles))


    evse = subparsers.add_parser("evse", help="operate an EVSE of a running station")
    evse_sub = evse.add_subparsers(dest="evse_command", metavar="ACTION", required=True)
    for name, help_text in (("enable", "make the EVSE available again"),
                            ("disable", "make the EVSE unavailable (pilot F, power off)"),
                            ("reset", "operator reset: reset a tripped RCD, clear faults whose cause is gone"),
                            ("stop", "end the authorization of the running session (the EV is asked to stop)")):
        parser = evse_sub.add_parser(name, parents=[common], help=help_text)
        parser.add_argument("evse", type=int)
        parser.set_defaults(func=lambda a, n=name: _run(a, _evse_action(n)))
    limit = evse_sub.add_parser("limit", parents=[common], help="set (or `none` to remove) an operator current limit")
    limit.add_argument("evse", type=int)
    limit.add_argument("amps", metavar="AMPS|none", type=_amps)
    limit.set_defaults(func=lambda a: _run(a, _evse_action("limit")))


def _amps(text: str) -> float | None:
    if text.lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"amps must be a number or none, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"amps must be >= 0, got {text!r}")
    return value


def _evse_action(name: str) -> Callable[[Path, argparse.Namespace], Awaitable[int]]:
    async def action(path: Path, args: argparse.Namespace) -> int:
        if name in ("enable", "disable"):
            await call(path, "evse.enable", evse=args.evse, enabled=name == "enable")
        elif name == "limit":
            await call(path, "evse.limit", evse=args.evse, amps=args.amps, source="operator")
        else:
            await call(path, f"evse.{name}", evse=args.evse)
        print(f"EVSE {args.evse}: {name} sent")
        return EXIT_OK

    return action


# --- plumbing ---------------------------------------------------------------------------------

def socket_path(args: argparse.Namespace) -> Path:
    if args.socket is not None:
        return args.socket
    if args.config is not None:
        from station import config, paths

        try:
            cfg = config.load_config(args.config)
        except Exception as exc:  # whatever the loader raises, it is a problem with the given file
            raise UsageProblem(f"cannot use config {args.config}: {exc}") from None
        return paths.control_socket(cfg.control.socket, paths.state_dir(cfg.station.state_dir))
    from station import paths

    return paths.default_control_socket()


def _run(args: argparse.Namespace, action: Callable[[Path, argparse.Namespace], Awaitable[int]]) -> int:
    try:
        path = socket_path(args)
        return asyncio.run(action(path, args))
    except UsageProblem as exc:
        return _fail(str(exc), EXIT_USAGE)
    except StationUnreachable as exc:
        return _fail(str(exc), EXIT_USAGE)
    except ControlError as exc:
        return _fail(str(exc), EXIT_ERROR)


def _fail(message: str, code: int) -> int:
    print(f"station: {' '.join(message.split())}", file=sys.stderr)
    return code


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=to_json))


def _simple(cmd: str, *arg_names: str) -> Callable[[Path, argparse.Namespace], Awaitable[int]]:
    async def action(path: Path, args: argparse.Namespace) -> int:
        result = await call(path, cmd, **{name: getattr(args, name) for name in arg_names})
        print(_port_line(result))
        return EXIT_OK

    return action


async def _sim_bay(path: Path, args: argparse.Namespace) -> int:
    print(_port_line(await call(path, "sim.bay", evse=args.evse, occupied=args.occupied == "occupied")))
    return EXIT_OK


# --- status -----------------------------------------------------------------------------------

async def _status(path: Path, args: argparse.Namespace) -> int:
    if not args.watch:
        _print_status(await call(path, "status"), args.json)
        return EXIT_OK
    async with watch(path) as events:  # subscribed before the snapshot: no event falls in between
        _print_status(await call(path, "status"), args.json)
        sys.stdout.flush()
        async for event in events:
            print(json.dumps(event, default=to_json) if args.json else format_event(event), flush=True)
    return _fail("the station closed the connection", EXIT_USAGE)


def _print_status(result: Any, raw: bool) -> None:
    if raw:
        _print_json(result)
    else:
        print(format_status(result))


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, dict):
        return ", ".join(f"{k}={_value(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        if all(not isinstance(v, (dict, list)) for v in value):
            return ", ".join(_value(v) for v in value) or "-"
        return json.dumps(value, default=to_json)
    return str(value)


def _faults(faults: Any) -> str:
    if not faults:
        return "none"
    if not isinstance(faults, list):
        return _value(faults)
    parts = []
    for fault in faults:
        if isinstance(fault, dict):
            code, text = fault.get("code", "?"), fault.get("description")
            parts.append(f"{code} ({text})" if text else str(code))
        else:
            parts.append(str(fault))
    return "; ".join(parts)


def format_status(status: Any) -> str:
    if not isinstance(status, dict):
        return _value(status)
    lines = []
    station = status.get("station")
    if isinstance(station, dict):
        lines.append("station " + " ".join(f"{k}={_value(v)}" for k, v in station.items()))
    for evse in status.get("evses") or []:
        if not isinstance(evse, dict):
            lines.append(f"EVSE {_value(evse)}")
            continue
        lines.append(f"EVSE {_value(evse.get('id', '?'))}")
        keys = [k for k in STATUS_KEYS if k in evse]
        keys += sorted(k for k in evse if k not in STATUS_KEYS and k != "id")
        width = max((len(k) for k in keys), default=0)
        for key in keys:
            shown = _faults(evse[key]) if key == "faults" else _value(evse[key])
            lines.append(f"  {key:<{width}}  {shown}")
    for key in sorted(k for k in status if k not in ("station", "evses")):
        lines.append(f"{key}: {_value(status[key])}")
    return "\n".join(lines)


def format_event(event: dict[str, Any]) -> str:
    """One line: local time (the event's own timestamp when it has one), then key=value pairs."""
    when = datetime.datetime.now()
    stamp = event.get("timestamp")
    if isinstance(stamp, str):
        try:
            when = datetime.datetime.fromisoformat(stamp).astimezone()
        except ValueError:
            stamp = None
    first = [k for k in ("event", "type", "evse_id", "evse") if k in event]
    rest = [k for k in event if k not in first and not (k == "timestamp" and stamp)]
    pairs = " ".join(f"{k}={_json_value(event[k])}" for k in first + rest)
    return f"{when.strftime('%H:%M:%S.%f')[:-3]} {pairs}"


def _json_value(value: Any) -> str:
    """Event values: scalars bare, structures as compact JSON (one event stays one line)."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=to_json, separators=(",", ":"))
    return _value(value)


# --- sim --------------------------------------------------------------------------------------

def _port_line(port: Any) -> str:
    """One port's physical state in two or three lines."""
    if not isinstance(port, dict):
        return _value(port)
    pp = port.get("pp_a")
    line = (
        f"EVSE {port.get('evse')}: CP {port.get('cp')}, pilot {port.get('pilot')}, "
        f"power {'allowed' if port.get('power_allowed') else 'not allowed'}, contactor {port.get('contactor')}, "
        f"lock {port.get('lock')}, RCD {port.get('rcd')}, link {port.get('link')}, "
        f"PP {_value(pp) + ' A' if pp is not None else '-'}, {_value(port.get('power_w'))} W"
    )
    if port.get("bay_occupied") is not None:
        line += f", bay {'occupied' if port['bay_occupied'] else 'free'}"
    ev = port.get("ev")
    if isinstance(ev, dict):
        line += (
            f"\n  EV {ev.get('profile')}: S2 {ev.get('s2')}, drawing {_value(ev.get('draw_a'))} A"
            f"{' (paused)' if ev.get('paused') else ''}, {_value(ev.get('energy_wh'))} Wh, "
            f"SoC {_value(ev.get('soc'))} % -> {_value(ev.get('soc_target'))} %"
        )
    else:
        line += "\n  no EV plugged in"
    errors, faults = port.get("errors") or [], port.get("faults") or []
    if errors or faults:
        line += f"\n  board errors: {', '.join(errors) or 'none'}; injected faults: {', '.join(faults) or 'none'}"
    return line


async def _sim_plug(path: Path, args: argparse.Namespace) -> int:
    option_names = ("soc_start", "soc_target", "battery_wh", "max_current_a", "reaction_s", "wants_ventilation")
    options = {name: getattr(args, name) for name in option_names if getattr(args, name) is not None}
    request: dict[str, Any] = {"evse": args.evse}
    if args.profile:
        request["profile"] = args.profile
    if options:
        request["options"] = options
    print(_port_line(await call(path, "sim.plug", **request)))
    return EXIT_OK


async def _sim_token(path: Path, args: argparse.Namespace) -> int:
    request: dict[str, Any] = {"id_token": args.id_token}
    if args.evse is not None:
        request["evse"] = args.evse
    if args.token_type:
        request["token_type"] = args.token_type
    result = await call(path, "sim.token", **request)
    where = f"EVSE {result.get('evse')}" if result.get("evse") is not None else "the station reader"
    print(f"presented {result.get('token_type')} token {result.get('id_token')} at {where}")
    return EXIT_OK


async def _sim_fault(path: Path, args: argparse.Namespace) -> int:
    result = await call(path, "sim.fault", evse=args.evse, fault=args.fault, active=not args.clear)
    print(_port_line(result))
    return EXIT_OK


async def _sim_state(path: Path, args: argparse.Namespace) -> int:
    request = {"evse": args.evse} if args.evse is not None else {}
    result = await call(path, "sim.state", **request)
    if args.json:
        _print_json(result)
    else:
        ports = result if isinstance(result, list) else [result]
        print("\n".join(_port_line(p) for p in ports) if ports else "no simulated EVSEs")
    return EXIT_OK


async def _sim_profiles(path: Path, args: argparse.Namespace) -> int:
    result = await call(path, "sim.profiles")
    if args.json:
        _print_json(result)
        return EXIT_OK
    print(f"{'profile':<18} {'kind':<4} {'phases':>6} {'max A':>6} {'battery kWh':>11} {'SoC %':>9}  notes")
    for p in result.get("profiles", []):
        notes = [n for n, on in (("default", p["name"] == result.get("default")), ("HLC", p.get("hlc")),
                                 ("ventilation", p.get("wants_ventilation"))) if on]
        print(f"{p['name']:<18} {p['kind']:<4} {p['phases']:>6} {p['max_current_a']:>6g} "
              f"{p['battery_wh'] / 1000:>11g} {p['soc_start']:>4g}-{p['soc_target']:<4g}  {', '.join(notes)}")
    print("\nfaults:")
    for name, text in (result.get("faults") or {}).items():
        print(f"  {name:<21} {text}")
    print(f"\nEV actions: {', '.join(result.get('ev_actions') or [])}")
    return EXIT_OK
