"""The "infy-can" DC power-supply driver against a module simulator on python-can's virtual bus:
ramps, setpoints, limits, module loss, fatal alarms, garbage frames. Real frames, real bus."""
from __future__ import annotations

import asyncio
import math
import struct
import time
import uuid
from typing import Callable

import pytest
from pydantic.v1 import ValidationError

from hal import registry
from hal.can import infy_codec as codec
from hal.can.infy_sim import InfyModuleSimulator, SimModule
from hal.can.infy_supply import InfyPowerSupply, InfySettings, PowerSupplyError
from hal.driver import DriverContext

CAPS = codec.ModuleCapabilities(max_voltage_v=1000.0, min_voltage_v=150.0, max_current_a=50.0, rated_power_w=15000.0)
RAMP = 100.0  # A/s
POLL = 0.1


async def until(cond: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def rig():
    channel = f"test-{uuid.uuid4().hex}"
    sim = InfyModuleSimulator("virtual", channel, [SimModule(1, CAPS), SimModule(2, CAPS)])
    await sim.start()
    settings = InfySettings(interface="virtual", channel=channel, modules=[1, 2], group=1, poll_interval_s=POLL,
                            offline_timeout_s=1.0, ramp_rate_a_per_s=RAMP, ramp_down_timeout_s=3.0)
    supply = InfyPowerSupply(settings, DriverContext(evse_id=1))
    faults: list[str] = []
    supply.fault_listeners.append(faults.append)
    await supply.start()
    await until(lambda: supply.capabilities.max_current_a == 100.0, what="both modules' capabilities")
    yield sim, supply, faults
    await supply.stop()
    await sim.stop()


# --- codec -----------------------------------------------------------------------------------

def test_ids_and_payloads_match_the_published_examples() -> None:
    # Request cmd 0x03 from controller 0xF0 to module 0, and the module's answer (EVerest sim script).
    assert codec.request_id(codec.CMD_READ_MODULE_VI, 0) == 0x028300F0
    reply = codec.FrameId.decode(0x0283F000)
    assert (reply.device, reply.command, reply.destination, reply.source) == (0x0A, 0x03, 0xF0, 0x00)
    assert codec.decode_vi(bytes.fromhex("43FA000040600000")) == codec.ModuleVI(500.0, 3.5)
    status = codec.decode_status(bytes.fromhex("000000021B004000"))
    assert status.temperature_c == 27 and status.alarms == {"walk_in_enabled"} and not status.fatal
    assert codec.decode_capabilities(bytes.fromhex("01F400C803E803E8")) == codec.ModuleCapabilities(500, 200, 100, 10000)
    assert codec.set_module_vi(400.0, 12.5) == bytes.fromhex("00061A80000030D4")  # mV, mA big-endian
    assert codec.set_on_off(True) == bytes(8) and codec.set_on_off(False) == b"\x01" + bytes(7)


@pytest.mark.parametrize("data, counter", [
    (b"\x00" * 7, "bad_length"),
    (struct.pack(">ff", math.nan, 1.0), "bad_value"),
    (struct.pack(">ff", 400.0, 5000.0), "bad_value"),
])
def test_codec_rejects_bad_frames_with_the_counter_name(data: bytes, counter: str) -> None:
    with pytest.raises(codec.CodecError) as caught:
        codec.decode_vi(data)
    assert caught.value.counter == counter


def test_registered_and_settings_validated() -> None:
    assert registry.load("power_supply", "infy-can") is InfyPowerSupply
    for bad, words in [({"modules": [1, 1]}, "duplicate"), ({"modules": [63]}, "0..62"),
                       ({"poll_interval_s": 0.5, "offline_timeout_s": 0.6}, "two poll intervals"),
                       ({"poll_interval_s": 2.0}, "less than or equal to 1"), ({"colour": "red"}, "extra fields")]:
        with pytest.raises(ValidationError, match=words):
            InfySettings(**bad)


# --- driver on the virtual bus ---------------------------------------------------------------

async def test_polls_every_module_cyclically(rig) -> None:
    sim, supply, _ = rig
    before = [len(sim.modules[a].setpoints) for a in (1, 2)]
    await asyncio.sleep(1.0)
    after = [len(sim.modules[a].setpoints) for a in (1, 2)]
    assert all(b - a >= 5 for a, b in zip(before, after)), (before, after)  # 10 Hz here; >= 1 Hz required
    assert all(m["online"] and m["temperature_c"] == 30 for m in supply.telemetry().values())
    caps = supply.capabilities
    assert (caps.min_voltage_v, caps.max_voltage_v, caps.max_power_w) == (150.0, 1000.0, 30000.0)


async def test_ramp_up_honours_setpoint_shared_by_modules_then_ramp_down_before_off(rig) -> None:
    sim, supply, faults = rig
    await supply.set_output(400.0, 60.0)
    t_on = time.monotonic()
    await supply.set_on(True)
    await until(lambda: all(sim.modules[a].output.current_a == 30.0 for a in (1, 2)), what="30 A per module")
    assert time.monotonic() - t_on >= 0.8 * 60.0 / RAMP  # it ramped, it did not jump
    status = await supply.status()
    await until(lambda: supply.telemetry()[2]["current_a"] == 30.0, what="telemetry")
    status = await supply.status()
    assert status.on and status.voltage_v == 400.0 and status.current_a == 60.0 and status.faults == ()
    ramp = [a for t, v, a in sim.modules[1].setpoints if t >= t_on]
    assert ramp == sorted(ramp) and len({a for a in ramp if 0 < a < 30}) >= 3
    assert max(b - a for a, b in zip(ramp, ramp[1:])) <= RAMP * POLL * 3 / 2  # per-module step, with jitter

    t_off = time.monotonic()
    await supply.set_on(False)
    assert supply.command_current_a == 0.0 and (await supply.status()).current_a <= 1.0  # off_current_a
    await until(lambda: not sim.modules[1].on and not sim.modules[2].on, what="modules off")
    for a in (1, 2):
        m = sim.modules[a]
        when, on, amps_at_switch = m.switches[-1]
        assert (on, amps_at_switch) == (False, 0.0)  # switched off only after the current reached 0
        down = [amps for t, v, amps in m.setpoints if t_off <= t <= when]
        assert down == sorted(down, reverse=True) and len({x for x in down if 0 < x < 30}) >= 3
    assert not (await supply.status()).on and faults == []


async def test_limits_are_enforced(rig) -> None:
    _, supply, _ = rig
    await supply.set_output(400.0, 500.0)
    assert supply.setpoint == (400.0, 75.0)  # 2 x 15 kW at 400 V, below 2 x 50 A
    await supply.set_output(200.0, 500.0)
    assert supply.setpoint == (200.0, 100.0)  # 2 x 50 A
    for v, a in [(1200.0, 10.0), (100.0, 10.0), (400.0, -1.0), (math.nan, 1.0)]:
        with pytest.raises(ValueError):
            await supply.set_output(v, a)
    assert supply.setpoint == (200.0, 100.0)  # a refused request changes nothing


async def test_switch_on_needs_a_setpoint(rig) -> None:
    _, supply, _ = rig
    with pytest.raises(PowerSupplyError, match="set_output"):
        await supply.set_on(True)


async def test_module_going_silent_trips_the_supply_and_blocks_until_back(rig) -> None:
    sim, supply, faults = rig
    await supply.set_output(500.0, 40.0)
    await supply.set_on(True)
    await until(lambda: sim.modules[1].output.current_a == 20.0, what="20 A per module")
    sim.modules[2].silent = True
    t_silent = time.monotonic()
    await until(lambda: faults != [], timeout=5.0, what="the trip")
    assert 0.9 <= time.monotonic() - t_silent <= 1.0 + 4 * POLL + 1.0  # offline_timeout_s, plus poll and slack
    assert faults == ["module 0x02 offline"]
    await until(lambda: not sim.modules[1].on, what="module 1 off")  # the healthy one is switched off too
    status = await supply.status()
    assert not status.on and status.faults == ("tripped: module 0x02 offline", "module 0x02 offline")
    assert supply.counters["trips"] == 1 and supply.counters["module_offline"] == 1
    with pytest.raises(PowerSupplyError, match="module 0x02 offline"):
        await supply.set_on(True)

    sim.modules[2].silent = False
    await until(lambda: supply.telemetry()[2]["online"], what="module 2 back")
    await supply.set_on(True)
    await until(lambda: sim.modules[2].output.current_a == 20.0, what="20 A again")
    assert (await supply.status()).faults == ()


async def test_fatal_module_alarm_trips(rig) -> None:
    sim, supply, faults = rig
    await supply.set_output(450.0, 20.0)
    await supply.set_on(True)
    await until(lambda: sim.modules[1].on, what="on")
    sim.modules[1].alarms = frozenset({"over_temperature"})
    await until(lambda: faults != [], what="the trip")
    assert faults == ["module 0x01: over_temperature"]
    await until(lambda: not sim.modules[2].on and not sim.modules[1].on, what="both off")


async def test_garbage_frames_are_counted_and_change_nothing(rig) -> None:
    sim, supply, faults = rig
    await supply.set_output(400.0, 20.0)
    await supply.set_on(True)
    await until(lambda: supply.telemetry()[1]["current_a"] == 10.0, what="10 A per module")
    before = supply.counters
    reply = lambda cmd, src, err=0: codec.FrameId(err, codec.DEVICE_SINGLE, cmd, 0xF0, src).encode()  # noqa: E731
    sim.send_raw(0x123, b"\x01\x02", extended=False)  # standard frame: not ours
    sim.send_raw(codec.FrameId(0, 0x05, 0x03, 0xF0, 1).encode(), bytes(8))  # other device kind
    sim.send_raw(reply(codec.CMD_READ_MODULE_VI, 9), codec.encode_vi(codec.ModuleVI(900, 99)))  # unknown module
    sim.send_raw(reply(0x3E, 1), bytes(8))  # unknown command
    sim.send_raw(reply(codec.CMD_READ_MODULE_VI, 1), b"\x43\xfa")  # short
    sim.send_raw(reply(codec.CMD_READ_MODULE_VI, 1), struct.pack(">ff", math.inf, 10.0))  # not a number
    sim.send_raw(reply(codec.CMD_READ_CAPABILITIES, 1), bytes(8))  # zero capabilities
    sim.send_raw(reply(codec.CMD_READ_MODULE_VI, 2, err=3), bytes(8))  # "data invalid"
    expected = {"ignored": 2, "unknown_module": 1, "unknown_command": 1, "bad_length": 1, "bad_value": 2,
                "error_replies": 1}
    await until(lambda: all(supply.counters[k] - before[k] >= n for k, n in expected.items()), what="counters")
    after = supply.counters
    assert {k: after[k] - before[k] for k in expected} == expected
    await asyncio.sleep(3 * POLL)
    status = await supply.status()
    assert status.on and status.current_a == 20.0 and status.faults == () and faults == []
    assert supply.capabilities.max_current_a == 100.0


async def test_stop_while_on_ramps_down_and_switches_off(rig) -> None:
    sim, supply, _ = rig
    await supply.set_output(400.0, 30.0)
    await supply.set_on(True)
    await until(lambda: sim.modules[1].output.current_a == 15.0, what="15 A per module")
    await supply.stop()
    await until(lambda: not any(m.on for m in sim.modules.values()), what="modules off")
    for m in sim.modules.values():
        assert m.switches[-1][2] == 0.0


async def test_switching_on_again_during_ramp_down_wins(rig) -> None:
    sim, supply, faults = rig
    await supply.set_output(400.0, 60.0)
    await supply.set_on(True)
    await until(lambda: sim.modules[1].output.current_a == 30.0, what="30 A per module")
    off = asyncio.ensure_future(supply.set_on(False))
    await until(lambda: supply.command_current_a < 50.0, what="ramping down")
    await supply.set_on(True)
    await asyncio.wait_for(off, 2.0)  # released at once, without a ramp-down timeout
    assert supply.counters["ramp_down_timeouts"] == 0 and (await supply.status()).on
    await until(lambda: sim.modules[2].output.current_a == 30.0, what="back at 30 A per module")
    assert all(m.on for m in sim.modules.values()) and faults == []


async def test_module_that_never_answers_blocks_switch_on() -> None:
    channel = f"test-{uuid.uuid4().hex}"
    sim = InfyModuleSimulator("virtual", channel, [SimModule(1, CAPS)])
    await sim.start()
    supply = InfyPowerSupply(InfySettings(interface="virtual", channel=channel, modules=[1, 5], poll_interval_s=POLL,
                                          offline_timeout_s=0.5), DriverContext(evse_id=1))
    await supply.start()
    try:
        await until(lambda: supply.capabilities.max_current_a == 50.0, what="module 1")
        await supply.set_output(400.0, 10.0)
        with pytest.raises(PowerSupplyError, match="module 0x05 offline"):
            await supply.set_on(True)
        assert not sim.modules[1].on and "module 0x05 offline" in (await supply.status()).faults
    finally:
        await supply.stop()
        await sim.stop()


def test_the_power_module_profile_fragment_validates() -> None:
    """profiles/power-modules/infy-can.toml is what a field engineer copies: it must be valid settings."""
    import tomllib
    from pathlib import Path

    from hal import registry

    path = Path(__file__).resolve().parent.parent / "profiles" / "power-modules" / "infy-can.toml"
    table = dict(tomllib.loads(path.read_text())["evse"]["iso15118"]["power_supply"])
    cls = registry.load("power_supply", table.pop("driver"))
    settings = cls.Settings.parse_obj(table)
    assert settings.channel == "can0" and settings.modules == [0, 1]
