"""`station run` and `station demo`."""
from __future__ import annotations

import argparse
import asyncio
import faulthandler
import sys
from pathlib import Path

from station.logs import setup_logging


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    run = sub.add_parser("run", help="run the station (as the systemd service does)")
    run.add_argument("--config", "-c", required=True, type=Path, help="station TOML file")
    run.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                     help="override station.log_level")
    run.set_defaults(func=_run)

    demo = sub.add_parser("demo", help="a scripted charging session on the simulator, shown as it happens")
    demo.add_argument("--config", "-c", type=Path, default=None,
                      help="simulated station profile (default: profiles/sim-ac-2evse.toml)")
    demo.add_argument("--charge-seconds", type=float, default=4.0, help="how long each EV charges")
    demo.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")
    demo.add_argument("--no-dc", action="store_true",
                      help="skip the ISO 15118 DC phase (profiles/sim-dc.toml; needs root for network namespaces)")
    demo.set_defaults(func=_demo)


def _load(path: Path):  # noqa: ANN202
    from station.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


def _run(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return 2
    setup_logging(args.log_level or config.station.log_level)
    # A watchdog kill is SIGABRT: this puts the stack of a hung loop into the journal.
    faulthandler.enable()
    from station.runtime import serve

    return asyncio.run(serve(config))


def _demo(args: argparse.Namespace) -> int:
    from station.demo import default_profile, run_demo

    config = _load(args.config or default_profile())
    dc_config = None if args.no_dc else _load(default_profile("sim-dc.toml"))
    if config is None or (dc_config is None and not args.no_dc):
        return 2
    setup_logging(args.log_level)
    return asyncio.run(run_demo(config, charge_seconds=args.charge_seconds, dc_config=dc_config))
