"""Where persistent state and the control socket live.

State directory: the config's `station.state_dir`, else $STATE_DIRECTORY (systemd StateDirectory=),
else a per-user data directory for development runs. The control socket: the config's
`control.socket`, else $RUNTIME_DIRECTORY/control.sock (systemd RuntimeDirectory=), else
<state dir>/control.sock.
"""
from __future__ import annotations

import os
from pathlib import Path

APP = "station"
SYSTEM_SOCKET = Path("/run") / APP / "control.sock"


def state_dir(configured: Path | None = None) -> Path:
    if configured is not None:
        return configured
    env = os.environ.get("STATE_DIRECTORY")
    if env:
        # systemd passes a colon-separated list when several StateDirectory= are set: ours is first.
        return Path(env.split(":")[0])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / APP


def control_socket(configured: Path | None, state: Path) -> Path:
    if configured is not None:
        return configured
    runtime = os.environ.get("RUNTIME_DIRECTORY")
    if runtime:
        return Path(runtime.split(":")[0]) / "control.sock"
    return state / "control.sock"


def default_control_socket() -> Path:
    """For `station status` / `station sim` without --socket or --config: the service's socket if
    there is one, else the development default."""
    env = os.environ.get("STATION_CONTROL_SOCKET")
    if env:
        return Path(env)
    if SYSTEM_SOCKET.exists():
        return SYSTEM_SOCKET
    return control_socket(None, state_dir(None))
