"""The "modbus" meter driver against a pymodbus server on loopback (TCP) and over a pty pair (RTU):
register maps as data, stale and silent meters raise MeterError, OCMF passes through untouched."""
from __future__ import annotations

import asyncio
import contextlib
import math
import os
from pathlib import Path
from typing import AsyncIterator

import pytest
from pydantic.v1 import ValidationError

from hal import registry
from hal.clock import ManualClock
from hal.driver import DriverContext
from hal.meter import MeterError
from hal.modbus import register_map as rm
from hal.modbus.meter import ModbusMeter, ModbusMeterSettings
from hal.modbus.sim_meter import SimModbusMeter

AC_VALUES = {"voltage_l1": 230.1, "voltage_l2": 230.2, "voltage_l3": 229.9, "current_l1": 16.0, "current_l2": 16.1,
             "current_l3": 15.9, "power_l1": 3680.0, "power_l2": 3700.0, "power_l3": 3620.0, "power": 11000.0,
             "frequency": 50.0, "energy_import": 12_345_600.0, "energy_export": 0.0}
OCMF_MAP = """
name = "Signing test meter"
kind = "ac"
table = "input"
[registers]
voltage_l1 = { address = 0 }
current_l1 = { address = 6 }
power = { address = 52 }
energy_import = { address = 72, scale = 1000.0 }
[ocmf]
table = "holding"
length_address = 4096
data_address = 4097
request_address = 4095
public_key_length_address = 5120
public_key_address = 5121
request_timeout_s = 2.0
"""
PAYLOAD = ('{"FV":"1.0","GI":"SIM Zähler","GS":"0815","PG":"T%d","RD":[{"TM":"2026-01-01T10:00:00,000+0000 S",'
           '"TX":"%s","RV":12.345,"RI":"1-b:1.8.0","RU":"kWh","ST":"G"}]}')
SIGNATURE = '{"SA":"ECDSA-secp256r1-SHA256","SD":"304402201A2B3C"}'


def ocmf(code: int) -> bytes:
    return f"OCMF|{PAYLOAD % (code, 'BEX'[code - 1])}|{SIGNATURE}".encode()


def meter(port: int, context: DriverContext | None = None, **settings: object) -> ModbusMeter:
    base = {"register_map": "sdm630", "transport": "tcp", "host": "127.0.0.1", "port": port, "timeout_s": 0.3,
            "retries": 0}
    return ModbusMeter(ModbusMeterSettings(**{**base, **settings}), context or DriverContext(evse_id=1))


@pytest.fixture
async def sdm630() -> AsyncIterator[tuple[SimModbusMeter, int]]:
    sim = SimModbusMeter(rm.load("sdm630"), AC_VALUES)
    port = await sim.serve_tcp()
    yield sim, port
    await sim.stop()


# --- register maps -----------------------------------------------------------------------------

def test_shipped_maps_hold_the_documented_registers() -> None:
    sdm = rm.load("sdm630")
    fields = {n: (r.address, sdm.table_of(r), r.type, r.scale) for n, r in sdm.registers.items()}
    assert fields["voltage_l1"] == (0, "input", "float32", 1.0)
    assert fields["power"] == (52, "input", "float32", 1.0)
    assert fields["energy_import"] == (72, "input", "float32", 1000.0)  # kWh -> Wh
    assert [fields[f"current_l{n}"][0] for n in (1, 2, 3)] == [6, 8, 10]
    assert rm.plan(sdm) == [rm.Block("input", 0, 18), rm.Block("input", 52, 24)]
    pzem = rm.load("pzem017")
    assert pzem.kind == "dc" and pzem.word_order == "little" and rm.plan(pzem) == [rm.Block("input", 0, 6)]
    # 10203.4 W = 102034 counts = 0x00018E92, low word first on the wire.
    assert rm.decode_value(pzem.registers["power"], [0x8E92, 0x0001], "little") == pytest.approx(10203.4)


@pytest.mark.parametrize("text, words", [
    ('name = "x"\nkind = "ac"\n[registers]\npower = { address = 1 }', "missing required field(s): energy_import"),
    ('name = "x"\nkind = "dc"\n[registers]\npower = { address = 1 }\nenergy_import = { address = 3 }\n'
     'voltage_l1 = { address = 5 }', "a DC meter has `voltage`"),
    ('name = "x"\nkind = "ac"\n[registers]\npower = { address = 1, type = "float16" }\nenergy_import = { address = 3 }',
     "registers.power.type"),
    ('name = "x"\nkind = "ac"\nbogus = 1\n[registers]', "bogus: extra fields not permitted"),
    ("name = ", "register map"),
])
def test_bad_register_maps_are_refused_with_the_file_and_reason(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(rm.RegisterMapError) as caught:
        rm.load(str(path))
    assert str(path) in str(caught.value) and words in str(caught.value)


@pytest.mark.parametrize("settings, words", [
    ({"transport": "tcp"}, 'transport = "tcp" needs host'),
    ({"transport": "rtu"}, 'transport = "rtu" needs serial_port'),
    ({"transport": "rtu", "serial_port": "/dev/ttyUSB0", "host": "10.0.0.2"}, 'host is for transport = "tcp"'),
    ({"transport": "tcp", "host": "h", "serial_port": "/dev/ttyUSB0"}, 'serial_port is for transport = "rtu"'),
    ({"transport": "tcp", "host": "h", "register_map": "sdm999"}, "not found"),
    ({"transport": "tcp", "host": "h", "register_map": "maps/x.toml"}, "absolute path"),
    ({"transport": "tcp", "host": "h", "unit_id": 300}, "less than or equal to 247"),
    ({"transport": "tcp", "host": "h", "colour": "red"}, "extra fields"),
])
def test_settings_are_validated_with_clear_messages(settings: dict, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ModbusMeterSettings(**{"register_map": "sdm630", **settings})
    assert words in str(caught.value)
    if "not found" in words:
        assert "built-in maps: pzem017, sdm630" in str(caught.value)


def test_registered_as_modbus() -> None:
    assert registry.load("meter", "modbus") is ModbusMeter


# --- TCP ---------------------------------------------------------------------------------------

async def test_sdm630_over_tcp(sdm630: tuple[SimModbusMeter, int]) -> None:
    sim, port = sdm630
    m = meter(port)
    await m.start()
    try:
        r = await m.read()
        assert r.voltage_v == pytest.approx((230.1, 230.2, 229.9), abs=0.02)
        assert r.current_a == pytest.approx((16.0, 16.1, 15.9))
        assert r.power_w == 11000.0 and r.frequency_hz == 50.0
        assert r.energy_import_wh == pytest.approx(12_345_600.0, rel=1e-6) and r.energy_export_wh == 0.0
        assert r.extra == pytest.approx({"power_l1": 3680.0, "power_l2": 3700.0, "power_l3": 3620.0})
        assert m._link.requests == 2  # two blocks, as planned
        assert await m.signed_reading("Transaction.Begin") is None  # the SDM630 does not sign
    finally:
        await m.stop()


async def test_meter_that_stops_answering_raises(sdm630: tuple[SimModbusMeter, int]) -> None:
    sim, port = sdm630
    m = meter(port)
    await m.start()
    await m.read()
    sim.silent = True
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(MeterError, match="no answer"):
        await m.read()
    assert loop.time() - t0 < 0.3 + 1.0 + 0.5  # timeout_s x (retries + 1) + margin
    sim.silent = False
    assert (await m.read()).power_w == 11000.0  # answers again: readings again
    await sim.stop()
    with pytest.raises(MeterError, match="cannot connect|no answer"):
        await m.read()
    assert m.counters["read_failures"] == 2
    await m.stop()


async def test_wrong_unit_is_an_exception_response(sdm630: tuple[SimModbusMeter, int]) -> None:
    _, port = sdm630
    m = meter(port, unit_id=7)
    with pytest.raises(MeterError, match=r"unit 7: read input registers 0..17: exception"):
        await m.read()


async def test_a_register_that_is_not_a_number_raises(sdm630: tuple[SimModbusMeter, int]) -> None:
    sim, port = sdm630
    sim.values["power"] = math.nan
    with pytest.raises(MeterError, match=r"power \(register 52\): not a number"):
        await meter(port).read()


async def test_identical_readings_while_power_flows_are_stale(sdm630: tuple[SimModbusMeter, int]) -> None:
    sim, port = sdm630
    clock = ManualClock()
    m = meter(port, DriverContext(evse_id=1, clock=clock), stale_after_s=30.0)
    first = await m.read()
    sim.frozen = True
    await m.read()
    await clock.advance(29.0)
    assert await m.read() is not None  # identical, but not for long enough yet
    await clock.advance(2.0)
    with pytest.raises(MeterError, match=r"stale: the same reading for 31 s while it reports 11000 W"):
        await m.read()
    assert m.counters["stale"] == 1
    sim.frozen = False
    later = await m.read()  # moving again: fine
    assert later.energy_import_wh >= first.energy_import_wh


async def test_identical_readings_without_power_are_not_stale(sdm630: tuple[SimModbusMeter, int]) -> None:
    sim, port = sdm630
    sim.values["power"] = 0.0
    sim.frozen = True
    clock = ManualClock()
    m = meter(port, DriverContext(evse_id=1, clock=clock), stale_after_s=30.0)
    for _ in range(3):
        assert (await m.read()).power_w == 0.0
        await clock.advance(60.0)
    assert m.counters["stale"] == 0


# --- OCMF --------------------------------------------------------------------------------------

@pytest.fixture
async def signing(tmp_path: Path) -> AsyncIterator[tuple[SimModbusMeter, ModbusMeter]]:
    path = tmp_path / "signing.toml"
    path.write_text(OCMF_MAP)
    sim = SimModbusMeter(rm.load(str(path)), {"voltage_l1": 230.0, "current_l1": 10.0, "power": 2300.0,
                                              "energy_import": 12345.0})
    sim.sign = ocmf
    sim.public_key = b"3059301306072A8648CE3D020106082A8648CE3D03010703420004ABCDEF"
    port = await sim.serve_tcp()
    m = meter(port, register_map=str(path))
    await m.start()
    yield sim, m
    await m.stop()
    await sim.stop()


async def test_ocmf_passes_through_untouched(signing: tuple[SimModbusMeter, ModbusMeter]) -> None:
    sim, m = signing
    assert len(ocmf(1)) % 2 == 1  # the last register carries one byte and a pad byte
    begin = await m.signed_reading("Transaction.Begin")
    assert begin is not None
    assert begin.signed_meter_data.encode() == ocmf(1)  # byte for byte, odd lengths and UTF-8 included
    assert (begin.encoding_method, begin.signing_method) == ("OCMF", "ECDSA-secp256r1-SHA256")
    assert begin.public_key == sim.public_key.decode()
    end = await m.signed_reading("Transaction.End")
    assert end is not None and end.signed_meter_data.encode() == ocmf(2) and '"TX":"E"' in end.signed_meter_data
    assert sim.requests == [1, 2]  # the request codes of the map's defaults
    assert (await m.read()).power_w == 2300.0


async def test_ocmf_garbage_or_no_new_dataset_raises(signing: tuple[SimModbusMeter, ModbusMeter]) -> None:
    sim, m = signing
    sim.sign = lambda code: b"not a signed dataset"
    with pytest.raises(MeterError, match="not OCMF"):
        await m.signed_reading("Transaction.Begin")
    sim.sign = lambda code: b"OCMF|{\"a\":\xff}|{}"
    with pytest.raises(MeterError, match="not UTF-8"):
        await m.signed_reading("Transaction.Begin")
    sim.sign = ocmf
    await m.signed_reading("Transaction.Begin")
    with pytest.raises(MeterError, match="no new signed dataset"):
        await m.signed_reading("Transaction.Begin")  # the meter serves the same dataset again
    assert m.counters["signed_failures"] == 3 and m.counters["signed_reads"] == 1


# --- RTU over a pty pair -------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def pty_bridge() -> AsyncIterator[tuple[str, str]]:
    """Two ptys whose master sides are wired together: a null-modem cable between two tty paths."""
    loop = asyncio.get_running_loop()
    (m1, s1), (m2, s2) = os.openpty(), os.openpty()
    for fd in (m1, m2):
        os.set_blocking(fd, False)

    def pump(src: int, dst: int) -> None:
        try:
            os.write(dst, os.read(src, 4096))
        except OSError:
            pass

    loop.add_reader(m1, pump, m1, m2)
    loop.add_reader(m2, pump, m2, m1)
    try:
        yield os.ttyname(s1), os.ttyname(s2)
    finally:
        loop.remove_reader(m1)
        loop.remove_reader(m2)
        for fd in (m1, s1, m2, s2):
            os.close(fd)


async def test_dc_meter_over_rtu() -> None:
    values = {"voltage": 400.12, "current": 25.5, "power": 10203.4, "energy_import": 98765.0}
    sim = SimModbusMeter(rm.load("pzem017"), values, unit_id=3)
    async with pty_bridge() as (server_tty, client_tty):
        await sim.serve_rtu(server_tty, baudrate=9600)
        m = ModbusMeter(ModbusMeterSettings(register_map="pzem017", transport="rtu", serial_port=client_tty,
                                            unit_id=3, timeout_s=0.5, retries=1), DriverContext(evse_id=1))
        await m.start()
        try:
            r = await m.read()
            assert r.voltage_v == pytest.approx((400.12,), abs=0.011) and r.current_a == pytest.approx((25.5,))
            assert r.power_w == pytest.approx(10203.4) and r.energy_import_wh == pytest.approx(98765.0, abs=2)  # live: grows
            assert r.energy_export_wh is None and r.frequency_hz is None
        finally:
            await m.stop()
            await sim.stop()


# --- through the station config ----------------------------------------------------------------

def test_template_profile_uses_the_modbus_meter() -> None:
    from station.config import driver_settings, load_config

    config = load_config(Path(__file__).resolve().parent.parent / "profiles" / "template-ac-serial-modbus.toml")
    cls, settings = driver_settings("meter", config.evses[0].meter)
    assert cls is ModbusMeter
    assert (settings.register_map, settings.transport, settings.serial_port, settings.unit_id) == (
        "sdm630", "rtu", "/dev/ttyUSB0", 1)


async def test_config_to_reading_over_tcp(sdm630: tuple[SimModbusMeter, int], tmp_path: Path) -> None:
    from station.config import ConfigError, driver_settings, load_config

    _, port = sdm630
    base = (Path(__file__).resolve().parent.parent / "profiles" / "template-ac-serial-modbus.toml").read_text()
    rtu = 'transport = "rtu"\n'
    tcp = f'transport = "tcp"\nhost = "127.0.0.1"\nport = {port}\n'
    text = base.replace(rtu, tcp).replace('serial_port = "/dev/ttyUSB0"\n', "")
    (tmp_path / "tcp.toml").write_text(text)
    cls, settings = driver_settings("meter", load_config(tmp_path / "tcp.toml").evses[0].meter)
    assert (await cls(settings, DriverContext(evse_id=1)).read()).power_w == 11000.0

    (tmp_path / "bad.toml").write_text(base.replace(rtu, 'transport = "tcp"\n'))
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "bad.toml")
    [issue] = caught.value.issues
    assert (issue.key, issue.message) == ("evse[1].meter", 'transport = "tcp" needs host (the meter\'s or gateway\'s address)')
