"""Config loading: every class of mistake gives its own plain message, all at once; profiles load;
`station check-config` reports and exits as documented."""
from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Optional

import pytest
from pydantic.v1 import BaseModel, Extra, Field

from hal import registry
from hal.board import Board
from hal.meter import Meter
from hal.token_reader import TokenReader
from station import config_model
from station.cli import main as cli_main
from station.config import ConfigError, ConfigIssue, driver_settings, effective_config, load_config

REPO = Path(__file__).resolve().parent.parent
PROFILES = sorted((REPO / "profiles").glob("*.toml"))


# --- drivers registered for the test (the real ones live in hal/sim, hal/serial) ---------------

class Strict(BaseModel):
    class Config:
        extra = Extra.forbid


class FakeBoard(Board):
    class Settings(Strict):
        cable_rating_a: Optional[float] = 32.0
        contactor_delay_s: float = Field(default=0.05, ge=0, le=5)


class FakeSerialBoard(Board):
    class Settings(Strict):
        port: str
        baudrate: int = 115200
        link_timeout_s: float = Field(default=5.0, gt=0, le=60)


class FakeMeter(Meter):
    class Settings(Strict):
        fail: bool = False
        sign: bool = False


class FakeTokenReader(TokenReader):
    class Settings(Strict):
        pass


class NotABoard:
    class Settings(Strict):
        pass


def here(name: str) -> str:
    return f"{__name__}:{name}"


@pytest.fixture
def drivers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.BUILTIN, "board", {
        "sim": here("FakeBoard"), "mcu-cobs": here("FakeSerialBoard"),
        "openevse-rapi": "hal.serial.rapi_board:RapiBoard",
        "broken": "station_no_such_module:Board", "wrong-kind": here("NotABoard"),
    })
    # The real Modbus meter: its settings (register map, transport) are what the template promises.
    monkeypatch.setitem(registry.BUILTIN, "meter", {"sim": here("FakeMeter"), "modbus": "hal.modbus.meter:ModbusMeter"})
    monkeypatch.setitem(registry.BUILTIN, "token_reader", {"sim": here("FakeTokenReader"), "none": here("FakeTokenReader")})
    monkeypatch.setattr(registry, "_plugins", lambda kind: {})  # installed plugins must not change the lists


# --- a valid config and single mistakes in it ------------------------------------------------

GOOD = """\
[station]
id = "TEST-1"
vendor = "Example"
model = "Test"

[authorization]
mode = "free"

[token_reader]
driver = "sim"

[[evse]]
id = 1
max_current_a = 32.0
phases = 3

[evse.board]
driver = "sim"
contactor_delay_s = 0.1

[evse.meter]
driver = "sim"

[[evse.connector]]
id = 1
type = "sType2"
lock = true
#END
"""

SECOND_EVSE = """
[[evse]]
id = {id}
[evse.board]
driver = "sim"
[[evse.connector]]
id = 1
"""

# (case, text to replace in GOOD, replacement, key, value as written or None, words in the message)
BAD = [
    ("missing key", 'vendor = "Example"\n', "", "station.vendor", None, "required key is missing"),
    ("missing table", '[station]\nid = "TEST-1"\nvendor = "Example"\nmodel = "Test"\n', "", "station", None,
     "required key is missing (add a [station] table)"),
    ("missing driver name", 'driver = "sim"\ncontactor', "contactor", "evse[1].board.driver", None,
     "required key is missing (the board driver's name; available: broken, mcu-cobs, openevse-rapi, sim, wrong-kind)"),
    ("unknown key", 'model = "Test"\n', 'model = "Test"\ncolour = "red"\n', "station.colour", None,
     "unknown key; allowed: id, vendor, model, serial_number, state_dir, log_level"),
    ("unknown top-level table", "#END", "[evse2]\nx = 1", "evse2", None,
     "unknown key; allowed: station, control, limits, authorization, iec61851, token_reader, grid_meter, evse, ocpp; "
     "did you mean evse?"),
    ("grid meter setting misspelt", "#END", '[grid_meter]\ndriver = "sim"\nsgin = true', "grid_meter.sgin", None,
     "unknown key; allowed: fail, sign, driver; did you mean sign?"),
    ("unknown driver setting", "contactor_delay_s = 0.1", "cable_rating = 32.0", "evse[1].board.cable_rating", None,
     "unknown key; allowed: cable_rating_a, contactor_delay_s, driver; did you mean cable_rating_a?"),
    ("number in quotes", "max_current_a = 32.0", 'max_current_a = "32"', "evse[1].max_current_a", '"32"',
     "must be a number (write 32 without quotes)"),
    ("fraction for a whole number", "[[evse]]\nid = 1", "[[evse]]\nid = 1.5", "evse[1].id", "1.5", "must be a whole number"),
    ("number for true/false", "lock = true", "lock = 1", "evse[1].connector[1].lock", "1", "must be true or false"),
    ("number for text", 'model = "Test"', "model = 5", "station.model", "5", "must be text"),
    ("text for a table", '[evse.board]\ndriver = "sim"\ncontactor_delay_s = 0.1\n', 'board = "sim"\n', "evse[1].board",
     '"sim"', 'must be a table, e.g. board = { driver = "sim" }'),
    ("table for a list", "[[evse]]\nid = 1", "[evse]\nid = 1", "evse", None,
     "must be a list of tables: write [[evse]] (double brackets) for each"),
    ("text for a list", 'mode = "free"', 'mode = "free"\ntokens = "04A1"', "authorization.tokens", '"04A1"', "must be a list"),
    ("out of range", "max_current_a = 32.0", "max_current_a = 120", "evse[1].max_current_a", "120",
     "must be between 6 and 80 A"),
    ("above a timing bound", "#END", "[iec61851]\ncontactor_open_max_s = 0.5", "iec61851.contactor_open_max_s", "0.5",
     "must be more than 0 and at most 0.1 s"),
    ("site limit too low", "#END", "[limits]\nsite_max_current_a = 3", "limits.site_max_current_a", "3",
     "must be between 6 and 1000 A"),
    ("site limit zero", "#END", "[limits]\nsite_max_current_a = 0", "limits.site_max_current_a", "0",
     "must be between 6 and 1000 A"),
    ("bad literal", 'mode = "free"', 'mode = "open"', "authorization.mode", '"open"', 'must be one of: "free", "local"'),
    ("bad number literal", "phases = 3", "phases = 2", "evse[1].phases", "2", "must be one of: 1, 3"),
    ("true is not 1", "phases = 3", "phases = true", "evse[1].phases", "true", "must be one of: 1, 3"),
    ("misspelt connector type", 'type = "sType2"', 'type = "stype2"', "evse[1].connector[1].type", '"stype2"',
     'did you mean "sType2"?'),
    ("pattern", 'id = "TEST-1"', 'id = "my station"', "station.id", '"my station"',
     "may contain only letters, digits and . _ : - (no spaces)"),
    ("empty text", 'vendor = "Example"', 'vendor = ""', "station.vendor", '""', "must not be empty"),
    ("no connector", '[[evse.connector]]\nid = 1\ntype = "sType2"\nlock = true\n', "", "evse[1].connector", None,
     "required key is missing"),
    ("unknown driver", 'driver = "sim"\ncontactor', 'driver = "yeti"\ncontactor', "evse[1].board.driver", '"yeti"',
     'no board driver named "yeti"; available: broken, mcu-cobs, openevse-rapi, sim, wrong-kind'),
    ("driver that fails to import", 'driver = "sim"\ncontactor_delay_s = 0.1', 'driver = "broken"', "evse[1].board.driver",
     '"broken"', 'board driver "broken" could not be loaded: ModuleNotFoundError'),
    ("driver of the wrong kind", 'driver = "sim"\ncontactor_delay_s = 0.1', 'driver = "wrong-kind"', "evse[1].board.driver",
     '"wrong-kind"', 'is registered as a board driver but is not a Board'),
    ("bad driver setting", "contactor_delay_s = 0.1", "contactor_delay_s = 9", "evse[1].board.contactor_delay_s", "9",
     "must be between 0 and 5 s"),
    ("driver setting missing", 'driver = "sim"\ncontactor_delay_s = 0.1', 'driver = "mcu-cobs"', "evse[1].board.port", None,
     "required key is missing"),
    ("driver setting mistyped", "contactor_delay_s = 0.1", 'contactor_delay_s = "fast"', "evse[1].board.contactor_delay_s",
     '"fast"', "must be a number"),
    ("duplicate EVSE id", "#END", SECOND_EVSE.format(id=1), "evse[2].id", "1", "duplicate EVSE id; evse[1] already uses 1"),
    ("EVSE ids with a gap", "#END", SECOND_EVSE.format(id=3), "evse[2].id", "3",
     "EVSE ids must be numbered 1, 2, 3 ... without gaps (OCPP 2.0.1); no evse has id 2"),
    ("duplicate connector id", "#END", "[[evse.connector]]\nid = 1\ntype = \"sType2\"", "evse[1].connector[2].id", "1",
     "duplicate connector id; evse[1].connector[1] already uses 1"),
    ("local auth without tokens", 'mode = "free"', 'mode = "local"', "authorization.tokens", None,
     'at least one token is required when mode = "local"'),
    ("tokens ignored in free mode", 'mode = "free"', 'mode = "free"\ntokens = ["04A1"]', "authorization.tokens", '["04A1"]',
     'mode = "free" lets every plug-in charge'),
    ("token too long", 'mode = "free"', f'mode = "local"\ntokens = ["{"A" * 37}"]', "authorization.tokens[1]",
     f'"{"A" * 37}"', "must be at most 36 characters"),
    ("dc without hlc", ("phases = 3", 'type = "sType2"\nlock = true'), ('kind = "dc"', 'type = "cCCS2"'), "evse[1].hlc",
     None, 'must be true when kind = "dc"'),
    ("dc with an AC connector", "phases = 3", 'kind = "dc"\nhlc = true', "evse[1].connector[1].type", '"sType2"',
     'is an AC connector; a kind = "dc" EVSE needs a DC one'),
    ("ac with a DC connector", 'type = "sType2"\nlock = true', 'type = "cCCS2"', "evse[1].connector[1].type", '"cCCS2"',
     'is a DC connector; a kind = "ac" EVSE needs an AC one'),
    ("three phases on a single-phase connector", 'type = "sType2"\nlock = true', 'type = "cType1"',
     "evse[1].phases", "3", "must be 1: connector type cType1 is single-phase"),
    ("Type 2 above its rating", "max_current_a = 32.0", "max_current_a = 70.0", "evse[1].max_current_a", "70.0",
     "is above what connector type sType2 is rated for on 3 phases: at most 63 A"),
    ("lock on a fixed cable", 'type = "sType2"', 'type = "cType2"', "evse[1].connector[1].lock", "true",
     "only a socket (type s...) has a lock"),
    ("socket path too long", "#END", f'[control]\nsocket = "/run/{"s" * 120}.sock"', "control.socket", None,
     "a Unix socket path may be at most 107 bytes"),
    ("empty path", 'model = "Test"', 'model = "Test"\nstate_dir = ""', "station.state_dir", '""', "must not be empty"),
]


def write(tmp_path: Path, text: str, name: str = "station.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def issues_of(path: Path) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == "\n".join(str(i) for i in caught.value.issues)
    return caught.value.issues


def test_the_base_config_is_valid(drivers: None, tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.station.id == "TEST-1"
    assert config.evses[0].connectors[0].lock is True


@pytest.mark.parametrize("case, old, new, key, value, words", BAD, ids=[c[0] for c in BAD])
def test_each_mistake_gets_its_own_message(
    drivers: None, tmp_path: Path, case: str, old: str, new: str, key: str, value: str | None, words: str,
) -> None:
    text = GOOD
    for before, after in zip(*((old, new) if isinstance(old, tuple) else ((old,), (new,)))):
        assert before in text, case
        text = text.replace(before, after, 1)
    path = write(tmp_path, text)
    issues = issues_of(path)
    assert [(i.key, i.value) for i in issues] == [(key, value if value is not None else issues[0].value)], issues
    assert words in issues[0].message
    assert issues[0].file == str(path)
    if value is None and "missing" in words:
        assert issues[0].value is None


def test_issue_reads_file_key_value_and_rule(drivers: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "profiles").mkdir()
    write(tmp_path / "profiles", GOOD.replace("max_current_a = 32.0", "max_current_a = 120"), "x.toml")
    with pytest.raises(ConfigError) as caught:
        load_config("profiles/x.toml")
    assert str(caught.value) == "profiles/x.toml: evse[1].max_current_a = 120: must be between 6 and 80 A"


def test_all_errors_are_reported_at_once_in_file_order(drivers: None, tmp_path: Path) -> None:
    text = (GOOD.replace('vendor = "Example"', 'vendor = ""')
            .replace('mode = "free"', 'mode = "local"')
            .replace('driver = "sim"\ncontactor_delay_s = 0.1', 'driver = "yeti"')
            .replace("max_current_a = 32.0", "max_current_a = 81")
            .replace("#END", SECOND_EVSE.format(id=1) + 'type = "cType2"\nlock = true\n'))
    issues = issues_of(write(tmp_path, text))
    assert [i.key for i in issues] == [
        "station.vendor", "authorization.tokens", "evse[1].max_current_a", "evse[1].board.driver",
        "evse[2].id", "evse[2].connector[1].lock",
    ]


def test_toml_syntax_error_names_line_and_column(drivers: None, tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("max_current_a = 32.0", "max_current_a = 32 A"))
    [issue] = issues_of(path)
    assert issue.key == ""
    assert issue.message.startswith("line 14, column 20: TOML syntax error: ")
    assert issue.message.endswith("in: max_current_a = 32 A")


def test_duplicate_table_is_a_syntax_error(drivers: None, tmp_path: Path) -> None:
    [issue] = issues_of(write(tmp_path, GOOD + '\n[station]\nid = "X"\n'))
    assert re.match(r"line \d+, column \d+: TOML syntax error", issue.message)


@pytest.mark.parametrize("setup, words", [
    (lambda d: d / "absent.toml", "file not found"),
    (lambda d: d, "is a directory, not a config file"),
    (lambda d: (d / "latin1.toml").write_bytes(b'[station]\nid = "Stra\xdfe"\n') and d / "latin1.toml",
     "line 2, column 11: not UTF-8 text (byte 0xdf); save the file as UTF-8"),
], ids=["missing", "directory", "not utf-8"])
def test_unreadable_file_is_one_clear_issue(tmp_path: Path, setup, words: str) -> None:  # noqa: ANN001
    path = setup(tmp_path)
    [issue] = issues_of(path)
    assert issue == ConfigIssue(str(path), "", None, words)
    assert str(issue) == f"{path}: {words}"


def test_byte_order_mark_is_accepted(drivers: None, tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert load_config(path).station.id == "TEST-1"


def test_default_token_reader_is_checked_too(drivers: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.BUILTIN, "token_reader", {"sim": here("FakeTokenReader")})
    [issue] = issues_of(write(tmp_path, GOOD.replace('[token_reader]\ndriver = "sim"\n', "")))
    assert issue.key == "token_reader.driver"
    assert issue.message == ('no token reader driver named "none"; available: sim '
                             "(the default when there is no [token_reader] table)")


def test_relative_paths_resolve_against_the_config_directory(
    drivers: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    text = GOOD.replace('model = "Test"', 'model = "Test"\nstate_dir = "state"') + '\n[control]\nsocket = "run/ctl.sock"\n'
    config = load_config(write(conf_dir, text))
    assert config.station.state_dir == conf_dir / "state"
    assert config.control.socket == conf_dir / "run" / "ctl.sock"
    assert not (conf_dir / "state").exists()  # loading creates nothing


def test_absolute_paths_are_kept(drivers: None, tmp_path: Path) -> None:
    text = GOOD.replace('model = "Test"', 'model = "Test"\nstate_dir = "/var/lib/station"')
    assert load_config(write(tmp_path, text)).station.state_dir == Path("/var/lib/station")


def test_driver_settings_give_class_and_validated_settings(drivers: None, tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    cls, settings = driver_settings("board", config.evses[0].board)
    assert cls is FakeBoard
    assert isinstance(settings, FakeBoard.Settings)
    assert (settings.contactor_delay_s, settings.cable_rating_a) == (0.1, 32.0)  # written, default
    bad = config_model.DriverConfig(driver="sim", contactor_delay_s=99)
    with pytest.raises(ConfigError, match=r"board.contactor_delay_s = 99: must be between 0 and 5 s"):
        driver_settings("board", bad)


@pytest.mark.parametrize("profile", PROFILES, ids=[p.name for p in PROFILES])
def test_profiles_are_valid(drivers: None, profile: Path) -> None:
    """Against test drivers with the settings the real ones promise (see the next test for those)."""
    config = load_config(profile)
    assert config.evses and all(e.connectors for e in config.evses)


def test_profiles_cover_what_they_promise(drivers: None) -> None:
    two = load_config(REPO / "profiles" / "sim-ac-2evse.toml")
    assert [(e.phases, e.max_current_a, e.connectors[0].type, e.connectors[0].lock) for e in two.evses] == [
        (3, 32.0, "sType2", True), (1, 32.0, "cType2", False)]
    assert two.authorization.mode == "free" and two.control.socket is None
    dc = load_config(REPO / "profiles" / "sim-dc.toml")
    assert [(e.kind, e.hlc, e.connectors[0].type) for e in dc.evses] == [("dc", True, "cCCS2")]
    serial = load_config(REPO / "profiles" / "template-ac-serial.toml")
    assert serial.evses[0].board.driver_settings() == {"port": "/dev/ttyS1", "baudrate": 115200, "link_timeout_s": 5.0}
    assert serial.token_reader.driver == "none"


@pytest.mark.parametrize("profile", PROFILES, ids=[p.name for p in PROFILES])
def test_profiles_load_with_the_real_drivers(profile: Path) -> None:
    """Needs hal/sim (and, for the template, the mcu-cobs driver once it is registered)."""
    if profile.name.startswith("template-") and "mcu-cobs" not in registry.available("board"):
        [issue] = issues_of(profile)
        assert (issue.key, issue.value) == ("evse[1].board.driver", '"mcu-cobs"')
        return
    load_config(profile)


@pytest.mark.parametrize("profile", PROFILES, ids=[p.name for p in PROFILES])
def test_every_profile_key_is_commented(profile: Path) -> None:
    lines = profile.read_text().splitlines()
    for n, line in enumerate(lines):
        if re.match(r"\s*[A-Za-z0-9_\-]+\s*=", line):
            assert n > 0 and lines[n - 1].lstrip().startswith("#"), f"{profile.name}:{n + 1}: {line} has no comment"


def test_docs_describe_every_key() -> None:
    docs = (REPO / "docs" / "configuration.md").read_text()
    for model in (config_model.StationInfo, config_model.ControlConfig, config_model.LimitsConfig,
                  config_model.AuthorizationConfig, config_model.Iec61851Config, config_model.EvseConfig,
                  config_model.ConnectorConfig, config_model.DriverConfig, config_model.StationConfig):
        for field in model.__fields__.values():
            assert f"`{field.alias}`" in docs, f"docs/configuration.md does not describe {model.__name__}.{field.alias}"


# --- station check-config --------------------------------------------------------------------

def test_check_config_ok(drivers: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, GOOD)
    assert cli_main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert out == f"{path}: OK (station TEST-1, 1 EVSE: #1 AC 3-phase 32 A sType2 (board sim))\n"


def test_check_config_reports_every_bad_file(drivers: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, GOOD, "good.toml")
    bad = write(tmp_path, GOOD.replace("max_current_a = 32.0", "max_current_a = 120").replace('mode = "free"', 'mode = "x"'),
                "bad.toml")
    assert cli_main(["check-config", str(good), str(bad), str(tmp_path / "none.toml")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{good}: OK")
    assert out[1:] == [
        f'{bad}: authorization.mode = "x": must be one of: "free", "local"',
        f"{bad}: evse[1].max_current_a = 120: must be between 6 and 80 A",
        f"{bad}: 2 errors",
        f"{tmp_path / 'none.toml'}: file not found",
        f"{tmp_path / 'none.toml'}: 1 error",
    ]


@pytest.mark.parametrize("argv", [["check-config"], ["check-config", "--bogus", "x.toml"],
                                  ["check-config", "--print", "--json", "x.toml"]])
def test_check_config_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli_main(argv)
    assert caught.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_check_config_print_round_trips(drivers: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = load_config(REPO / "profiles" / "sim-ac-2evse.toml")
    assert cli_main(["check-config", "--print", str(REPO / "profiles" / "sim-ac-2evse.toml")]) == 0
    captured = capsys.readouterr()
    assert "OK (station SIM-AC-2" in captured.err
    printed = tomllib.loads(captured.out)
    assert printed["iec61851"]["pwm_stop_force_off_s"] == 6.0  # a default, filled in
    assert printed["evse"][0]["board"]["contactor_delay_s"] == 0.05  # a driver default, filled in
    assert effective_config(load_config(write(tmp_path, captured.out))) == effective_config(source)


def test_check_config_json(drivers: None, capsys: pytest.CaptureFixture[str]) -> None:
    profile = REPO / "profiles" / "sim-dc.toml"
    assert cli_main(["check-config", "--json", str(profile)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == effective_config(load_config(profile))
    assert data["evse"][0]["kind"] == "dc" and data["station"]["state_dir"] is None



def test_out_of_range_ids_are_reported_once(drivers: None, tmp_path: Path) -> None:
    issues = issues_of(write(tmp_path, GOOD + SECOND_EVSE.format(id=101)))
    assert [(i.key, i.value, i.message) for i in issues] == [("evse[2].id", "101", "must be between 1 and 100")]


def test_root_validator_errors_of_a_driver_are_reported(drivers: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic.v1 import root_validator

    class PickyBoard(FakeBoard):
        class Settings(FakeBoard.Settings):
            @root_validator(skip_on_failure=True)
            def _fast_enough(cls, values: dict) -> dict:  # noqa: N805
                if values["contactor_delay_s"] > 1:
                    raise ValueError("contactor_delay_s above 1 s needs cable_rating_a")
                return values

    monkeypatch.setattr(sys.modules[__name__], "PickyBoard", PickyBoard, raising=False)
    monkeypatch.setitem(registry.BUILTIN["board"], "picky", here("PickyBoard"))
    text = GOOD.replace('driver = "sim"\ncontactor_delay_s = 0.1', 'driver = "picky"\ncontactor_delay_s = 2')
    [issue] = issues_of(write(tmp_path, text))
    assert (issue.key, issue.message) == ("evse[1].board", "contactor_delay_s above 1 s needs cable_rating_a")


def test_iso15118_needs_hlc_and_one_pki_path(tmp_path: Path) -> None:
    cfg = tmp_path / "station.toml"
    cfg.write_text('''[station]
id = "X"
vendor = "v"
model = "m"

[[evse]]
id = 1
board = { driver = "sim" }
connector = [{ id = 1 }]
[evse.iso15118]
plc_modem = { driver = "sim", interface = "veth-a" }
tls = { pki_path = "/etc/station/pki-a" }

[[evse]]
id = 2
hlc = true
board = { driver = "sim" }
connector = [{ id = 1 }]
[evse.iso15118]
plc_modem = { driver = "sim", interface = "veth-b" }
tls = { pki_path = "/etc/station/pki-b" }
''')
    with pytest.raises(ConfigError) as caught:
        load_config(cfg)
    text = str(caught.value)
    assert "evse[1].hlc: must be true when [evse.iso15118] is present" in text
    assert "evse[2].iso15118.tls.pki_path" in text and "must be the same for every EVSE" in text
