"""The `station` command line. Each sub-command lives with the module that does its job."""
from __future__ import annotations

import argparse
import sys

from station import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="station", description="EV charging-station controller")
    parser.add_argument("--version", action="version", version=f"station {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # Imported here so `station --help` stays fast and a broken optional part shows its own error.
    from station import config, control_cli, runtime_cli

    runtime_cli.register(sub)
    config.register(sub)
    control_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
