"""Where state and the control socket go: config, else systemd's directories, else per-user."""
from __future__ import annotations

from pathlib import Path

import pytest

from station import paths


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("STATE_DIRECTORY", "RUNTIME_DIRECTORY", "XDG_DATA_HOME", "STATION_CONTROL_SOCKET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_state_dir_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert paths.state_dir(None) == tmp_path / "home" / ".local" / "share" / "station"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert paths.state_dir(None) == tmp_path / "xdg" / "station"
    # systemd StateDirectory= (several are colon-separated; ours is the first)
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/station:/var/lib/other")
    assert paths.state_dir(None) == Path("/var/lib/station")
    assert paths.state_dir(Path("/srv/state")) == Path("/srv/state")  # the config wins


def test_control_socket_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert paths.control_socket(None, state) == state / "control.sock"
    monkeypatch.setenv("RUNTIME_DIRECTORY", "/run/station")
    assert paths.control_socket(None, state) == Path("/run/station/control.sock")
    assert paths.control_socket(Path("/tmp/x.sock"), state) == Path("/tmp/x.sock")
    monkeypatch.setenv("STATION_CONTROL_SOCKET", "/tmp/env.sock")
    assert paths.default_control_socket() == Path("/tmp/env.sock")


def test_station_uses_state_directory_from_systemd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from station.station import Station
    from tests.rig import config

    cfg = config(tmp_path)
    cfg = cfg.copy(update={"station": cfg.station.copy(update={"state_dir": None})})
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "systemd-state"))
    assert Station(cfg).state_dir == tmp_path / "systemd-state"
