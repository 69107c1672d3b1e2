"""A simulator of Infypower-style power modules, on its own python-can bus (the `virtual`
interface in tests, `udp_multicast` across processes, or a real bus against a real controller).

Each simulated module answers reads, acknowledges setpoints by echoing them, follows its
setpoint on the next poll (constant-current load: output = setpoint while on), and switches
itself off after `watchdog_s` without controller frames, as real modules do. Tests can make a
module silent, raise alarms, or answer every command with an error code.
"""
from __future__ import annotations

import asyncio
import struct
import time
from dataclasses import dataclass, field

import can

from hal.can import infy_codec as codec


@dataclass
class SimModule:
    address: int
    capabilities: codec.ModuleCapabilities = codec.ModuleCapabilities(1000.0, 150.0, 100.0, 30000.0)
    group: int = 1
    on: bool = False
    set_voltage_v: float = 0.0
    set_current_a: float = 0.0
    temperature_c: int = 30
    alarms: frozenset[str] = frozenset()
    silent: bool = False  # answers nothing (unplugged, dead)
    error_code: int = codec.ERROR_NORMAL  # answer with this error code in the id
    last_command: float = field(default_factory=time.monotonic)
    #: (monotonic, volts, amps) of every setpoint received, for ramp assertions.
    setpoints: list[tuple[float, float, float]] = field(default_factory=list)
    #: (monotonic, on, set current at that moment) for every on/off change.
    switches: list[tuple[float, bool, float]] = field(default_factory=list)

    def switch(self, on: bool, now: float) -> None:
        if on != self.on:
            self.switches.append((now, on, self.set_current_a))
        self.on = on

    @property
    def output(self) -> codec.ModuleVI:
        if not self.on:
            return codec.ModuleVI(0.0, 0.0)
        current = min(self.set_current_a, self.capabilities.max_current_a)
        if self.set_voltage_v > 0:
            current = min(current, self.capabilities.rated_power_w / self.set_voltage_v)
        return codec.ModuleVI(self.set_voltage_v, current)


class InfyModuleSimulator:
    def __init__(self, interface: str, channel: str, modules: list[SimModule],
                 controller: int = codec.CONTROLLER_DEFAULT, watchdog_s: float = 10.0) -> None:
        self.interface, self.channel, self.controller, self.watchdog_s = interface, channel, controller, watchdog_s
        self.modules = {m.address: m for m in modules}
        self.frames_rx = 0
        self._bus: can.BusABC | None = None
        self._notifier: can.Notifier | None = None
        self._watchdog: asyncio.Task[None] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._bus = can.Bus(interface=self.interface, channel=self.channel)
        self._notifier = can.Notifier(self._bus, [self._on_frame], timeout=0.1, loop=loop)
        self._watchdog = loop.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            now = time.monotonic()
            for m in self.modules.values():
                if m.on and now - m.last_command > self.watchdog_s:
                    m.switch(False, now)  # the module's own safety: no controller, no output

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._notifier is not None:
            await loop.run_in_executor(None, self._notifier.stop, 0.5)
        if self._bus is not None:
            self._bus.shutdown()
        self._bus = self._notifier = None

    def send_raw(self, arbitration_id: int, data: bytes, extended: bool = True) -> None:
        """Put any frame on the bus (garbage tests)."""
        assert self._bus is not None
        self._bus.send(can.Message(arbitration_id=arbitration_id, data=data, is_extended_id=extended))

    def _on_frame(self, msg: can.Message) -> None:
        now = time.monotonic()
        if not msg.is_extended_id:
            return
        fid = codec.FrameId.decode(msg.arbitration_id)
        if fid.source != self.controller:
            return
        self.frames_rx += 1
        if fid.device == codec.DEVICE_GROUP:
            targets = [m for m in self.modules.values() if fid.destination in (m.group, codec.BROADCAST)]
        elif fid.device == codec.DEVICE_SINGLE:
            targets = [m for m in self.modules.values() if fid.destination in (m.address, codec.BROADCAST)]
        else:
            return
        for m in targets:
            if m.silent:
                continue
            m.last_command = now
            reply = self._apply(m, fid.command, bytes(msg.data), now)
            if reply is not None and fid.device == codec.DEVICE_SINGLE:
                rid = codec.FrameId(m.error_code, codec.DEVICE_SINGLE, fid.command, self.controller, m.address)
                assert self._bus is not None
                self._bus.send(can.Message(arbitration_id=rid.encode(), data=reply, is_extended_id=True))

    def _apply(self, m: SimModule, command: int, data: bytes, now: float) -> bytes | None:
        if len(data) != codec.PAYLOAD_LEN:
            return None
        if command == codec.CMD_READ_MODULE_VI:
            return codec.encode_vi(m.output)
        if command == codec.CMD_READ_MODULE_STATUS:
            alarms = m.alarms | (frozenset() if m.on else frozenset({"dc_side_off"}))
            return codec.encode_status(codec.ModuleStatus(m.temperature_c, alarms))
        if command == codec.CMD_READ_CAPABILITIES:
            return codec.encode_capabilities(m.capabilities)
        if command == codec.CMD_SET_ON_OFF:
            m.switch(data[0] == 0x00, now)
            return data
        if command == codec.CMD_SET_MODULE_VI:
            mv, ma = struct.unpack(">II", data)
            m.set_voltage_v, m.set_current_a = mv / 1000, ma / 1000
            m.setpoints.append((now, m.set_voltage_v, m.set_current_a))
            return data
        return None
