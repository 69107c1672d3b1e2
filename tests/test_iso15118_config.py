"""`[evse.iso15118]`: every key documented, good tables load, bad ones are named clearly."""
from __future__ import annotations

from pathlib import Path

import pytest

from station.config import ConfigError, load_config
from station.iso15118 import config as iso_config

REPO = Path(__file__).resolve().parent.parent

BASE = '''
[station]
id = "T-1"
vendor = "T"
model = "T"

[[evse]]
id = 1
kind = "dc"
hlc = true

[evse.board]
driver = "sim"

[[evse.connector]]
id = 1
type = "cCCS2"

[evse.iso15118]
protocols = ["DIN_SPEC_70121", "ISO_15118_2", "ISO_15118_20_DC"]
{extra}

[evse.iso15118.plc_modem]
driver = "sim"
interface = "eth1"
{plc}
'''

DC_PARTS = '''
[evse.iso15118.power_supply]
driver = "sim"

[evse.iso15118.isolation_monitor]
driver = "sim"
'''


def write(tmp_path: Path, extra: str = "", plc: str = "", parts: str = DC_PARTS) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(BASE.format(extra=extra, plc=plc) + parts)
    return path


def messages(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(issue) for issue in info.value.issues]


def test_docs_describe_every_key() -> None:
    docs = (REPO / "docs" / "configuration.md").read_text()
    for model in (iso_config.Iso15118Config, iso_config.TlsConfig, iso_config.DcLimitsConfig, iso_config.SlacConfig):
        for field in model.__fields__.values():
            assert f"`{field.alias}`" in docs, f"docs/configuration.md does not describe {model.__name__}.{field.alias}"


def test_a_dc_table_loads_with_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, 'slac = { init_timeout_s = 20.0 }\ndc = { max_current_a = 200.0 }'))
    iso = cfg.evses[0].iso15118
    assert iso is not None and iso.plc_modem.driver == "sim" and iso.slac.init_timeout_s == 20.0
    assert iso.dc.max_current_a == 200.0 and iso.auth_modes == ["EIM"] and iso.slac.max_attempts == 3


def test_dc_protocols_need_power_supply_and_imd(tmp_path: Path) -> None:
    [problem] = messages(write(tmp_path, parts=""))
    assert "evse[1].iso15118" in problem
    assert "[evse.iso15118.power_supply] and [evse.iso15118.isolation_monitor]" in problem


def test_plug_and_charge_is_refused_for_now(tmp_path: Path) -> None:
    [problem] = messages(write(tmp_path, 'auth_modes = ["EIM", "PnC"]'))
    assert "evse[1].iso15118.auth_modes" in problem and "Plug & Charge" in problem


def test_bad_driver_settings_are_named(tmp_path: Path) -> None:
    [problem] = messages(write(tmp_path, plc='modem_mac = "x"'))
    assert "evse[1].iso15118.plc_modem" in problem and "modem_mac" in problem and "extra fields not permitted" in problem
    path = write(tmp_path)
    path.write_text(path.read_text().replace('driver = "sim"\ninterface', 'driver = "qca"\ninterface'))
    [problem] = messages(path)
    assert 'no plc modem driver named "qca"; available: homeplug, sim' in problem


def test_unknown_keys_and_bad_values(tmp_path: Path) -> None:
    path = write(tmp_path, 'slac = { init_timeout_s = 90.0, tt = 1 }')
    path.write_text(path.read_text().replace('"ISO_15118_20_DC"]', '"ISO_15118_2"]'))
    problems = messages(path)
    text = "\n".join(problems)
    assert "evse[1].iso15118.protocols" in text and "twice" in text
    assert "evse[1].iso15118.slac.init_timeout_s = 90.0" in text
    assert "evse[1].iso15118.slac.tt" in text


def test_loading_the_package_leaves_our_logging_alone() -> None:
    """iso15118 runs logging.config.fileConfig at import (a DEBUG stdout handler on root)."""
    import logging

    from station.iso15118 import package

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    package.load("error", ("iso15118.evcc",))
    assert root.handlers == handlers and root.level == level
    assert logging.getLogger("iso15118").level == logging.ERROR
