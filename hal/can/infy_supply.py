"""PowerSupply driver "infy-can": Infypower-style DC power modules on CAN, several modules in
parallel summed as one supply.

Every `poll_interval_s` (4 Hz default; modules switch off after ~10 s without controller frames)
each configured module gets its setpoint (0x1C), on/off (0x1A) and reads of output (0x03) and
status (0x04); capabilities (0x0A) are read until known and then every 10 s. The commanded current
moves toward the requested one at `ramp_rate_a_per_s`, up and down; `set_on(False)` ramps to 0 A
and waits (bounded) until the modules report no current before switching them off, so the
contactors open without load. The requested current is shared equally among online modules.

A module silent for `offline_timeout_s` is offline. A module going offline or raising a fatal
alarm while the output is on trips the supply: every module is switched off at once (no ramp:
we cannot trust the output any more), the reason stays in `status().faults`, fault listeners
are called, and `set_on(True)` is refused until every module is online and healthy again.
"""
from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, List, Optional

import can
from pydantic.v1 import BaseModel, Field, validator

from hal.can import infy_codec as codec
from hal.can.bus import CanBus, CanBusSettings
from hal.can.poller import CyclicPoller
from hal.driver import DriverContext
from hal.power_supply import PowerSupply, PowerSupplyCapabilities, PowerSupplyStatus
from hal.serial.counters import Counters

log = logging.getLogger(__name__)

RX_COUNTERS = ("frames_rx", "frames_tx", "ignored", "unknown_module", "unknown_command", "bad_length",
               "bad_value", "error_replies", "module_offline", "trips", "ramp_down_timeouts", "bus_open_failures")
CAPABILITIES_REFRESH_TICKS = 40  # at 4 Hz: every 10 s


class PowerSupplyError(RuntimeError):
    """The supply cannot do what was asked (tripped, modules offline, no capabilities yet)."""


class InfySettings(CanBusSettings):
    modules: List[int] = Field([0], min_items=1, max_items=16, description="module addresses (0..62, DIP switches)")
    group: Optional[int] = Field(None, ge=0, le=62, description="module group: also switched off as a group on a trip")
    controller_address: int = Field(codec.CONTROLLER_DEFAULT, ge=0, le=255)
    poll_interval_s: float = Field(0.25, gt=0, le=1.0)
    offline_timeout_s: float = Field(2.0, gt=0, le=9.0)
    ramp_rate_a_per_s: float = Field(50.0, gt=0, le=10000)
    ramp_down_timeout_s: float = Field(5.0, gt=0, le=30)
    off_current_a: float = Field(1.0, ge=0, le=20, description="output counts as ramped down at or below this")

    @validator("modules")
    def _addresses(cls, v: list[int]) -> list[int]:  # noqa: N805
        bad = [a for a in v if not 0 <= a <= codec.MAX_ADDRESS]
        if bad:
            raise ValueError(f"module addresses must be 0..{codec.MAX_ADDRESS} (0x3F is broadcast): {bad}")
        if len(set(v)) != len(v):
            raise ValueError(f"duplicate module address in {v}")
        return v

    @validator("offline_timeout_s")
    def _offline_after_polls(cls, v: float, values: dict[str, Any]) -> float:  # noqa: N805
        poll = values.get("poll_interval_s")
        if poll is not None and v < 2 * poll:
            raise ValueError(f"must be at least two poll intervals (2 x {poll} s)")
        return v


@dataclass
class ModuleState:
    address: int
    last_seen: float | None = None
    online: bool = False
    output: codec.ModuleVI | None = None
    status: codec.ModuleStatus | None = None
    capabilities: codec.ModuleCapabilities | None = None


class InfyPowerSupply(PowerSupply):
    Settings = InfySettings

    def __init__(self, settings: BaseModel, context: DriverContext) -> None:
        super().__init__(settings, context)
        self.settings: InfySettings = settings  # type: ignore[assignment]
        self.modules = {a: ModuleState(a) for a in self.settings.modules}
        self.fault_listeners: list[Callable[[str], None]] = []
        self._counters = Counters(RX_COUNTERS)
        self._bus = CanBus.of(context, self.settings)
        self._unsubscribe: Callable[[], None] | None = None
        self._poller = CyclicPoller(context.clock, self.settings.poll_interval_s, self._tick)
        self._running = False
        self._bus_acquired = False
        self._started_at = 0.0
        self._last_tick = 0.0
        self._next_bus_retry = 0.0
        self._setpoint: tuple[float, float] | None = None  # (V, A) after clamping
        self._want_on = False  # the consumer's request
        self._enabled = False  # what the modules are told
        self._command_a = 0.0  # ramped total current
        self._tripped: str | None = None
        self._ramped_down = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._running:
            return
        self._running = True
        self._started_at = self._last_tick = self.context.clock.monotonic()
        self._unsubscribe = self._bus.subscribe(lambda msg: True, self._on_frame)
        await self._open_bus()
        self._poller.start()

    async def stop(self) -> None:
        if not self._running:
            return
        if self._enabled:
            await self.set_on(False)
        self._send_all_off()
        self._running = False
        self._poller.stop()
        for task in list(self._tasks):
            task.cancel()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._bus_acquired:
            self._bus_acquired = False
            await self._bus.release()

    async def _open_bus(self) -> None:
        try:
            await self._bus.acquire()
        except (can.CanError, OSError, ValueError, ImportError) as exc:
            self._counters.inc("bus_open_failures")
            if self._counters["bus_open_failures"] in (1, 60):
                log.error("CAN %s/%s cannot be opened: %s (retrying every second)",
                          self.settings.interface, self.settings.channel, exc)
            self._next_bus_retry = self.context.clock.monotonic() + 1.0
            return
        self._bus_acquired = self._running
        if not self._running:
            await self._bus.release()

    # --- the PowerSupply contract --------------------------------------------------------

    @property
    def capabilities(self) -> PowerSupplyCapabilities:
        """Summed over online modules that reported theirs; all zero while none has."""
        caps = [m.capabilities for m in self.modules.values() if m.online and m.capabilities is not None]
        if not caps:
            return PowerSupplyCapabilities(0.0, 0.0, 0.0, 0.0, 0.0)
        return PowerSupplyCapabilities(
            max_voltage_v=min(c.max_voltage_v for c in caps),
            min_voltage_v=max(c.min_voltage_v for c in caps),
            max_current_a=sum(c.max_current_a for c in caps),
            min_current_a=0.0,
            max_power_w=sum(c.rated_power_w for c in caps),
        )

    async def set_output(self, voltage_v: float, current_a: float) -> None:
        """Voltage outside the modules' range is refused (ValueError, nothing changes); current is
        limited to what the online modules can give at that voltage."""
        if not (math.isfinite(voltage_v) and math.isfinite(current_a)) or voltage_v < 0 or current_a < 0:
            raise ValueError(f"invalid setpoint {voltage_v} V, {current_a} A")
        caps = self.capabilities
        if caps.max_current_a <= 0:
            raise PowerSupplyError("no power module online with known capabilities")
        if not caps.min_voltage_v <= voltage_v <= caps.max_voltage_v:
            raise ValueError(f"{voltage_v} V is outside the modules' range {caps.min_voltage_v:g}..{caps.max_voltage_v:g} V")
        limit = caps.max_current_a
        if voltage_v > 0:
            limit = min(limit, caps.max_power_w / voltage_v)
        self._setpoint = (voltage_v, min(current_a, limit))

    @property
    def setpoint(self) -> tuple[float, float] | None:
        """(V, A) as accepted by set_output, after limiting."""
        return self._setpoint

    async def set_on(self, on: bool) -> None:
        if on:
            problems = self._module_faults()
            if problems:
                tripped = [f"tripped: {self._tripped}"] if self._tripped else []
                raise PowerSupplyError("; ".join(tripped + problems))
            if self._setpoint is None:
                raise PowerSupplyError("call set_output before switching on")
            self._tripped = None
            self._want_on = self._enabled = True
            self._ramped_down.set()  # releases a set_on(False) still waiting for its ramp
            self._tick()
            return
        self._want_on = False
        if not self._enabled:
            return
        self._ramped_down.clear()
        self._tick()
        ramped = await self._wait_ramped_down(self.settings.ramp_down_timeout_s)
        if self._want_on:
            return  # switched on again meanwhile: that request wins
        if not ramped:
            self._counters.inc("ramp_down_timeouts")
            log.warning("power modules still carry current %.1f s after ramp-down: switching off anyway",
                        self.settings.ramp_down_timeout_s)
        self._enabled = False
        self._command_a = 0.0
        self._send_all_off()

    async def status(self) -> PowerSupplyStatus:
        online = [m for m in self.modules.values() if m.online and m.output is not None]
        voltage = max((m.output.voltage_v for m in online if m.output), default=0.0)
        current = sum(m.output.current_a for m in online if m.output)
        faults = self._module_faults()
        if self._tripped is not None:
            faults.insert(0, f"tripped: {self._tripped}")
        return PowerSupplyStatus(on=self._enabled, voltage_v=voltage, current_a=current, faults=tuple(faults))

    # --- extras for status / tests -------------------------------------------------------

    @property
    def counters(self) -> dict[str, int]:
        return {**self._counters.snapshot(), **{f"bus_{k}": v for k, v in self._bus.counters.snapshot().items()}}

    @property
    def command_current_a(self) -> float:
        """The ramped total current currently commanded."""
        return self._command_a

    def telemetry(self) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for m in self.modules.values():
            out[m.address] = {
                "online": m.online,
                "voltage_v": m.output.voltage_v if m.output else None,
                "current_a": m.output.current_a if m.output else None,
                "temperature_c": m.status.temperature_c if m.status else None,
                "alarms": sorted(m.status.alarms) if m.status else [],
            }
        return out

    # --- cyclic work ---------------------------------------------------------------------

    def _tick(self) -> None:
        if not self._running:
            return
        clock = self.context.clock
        now = clock.monotonic()
        dt, self._last_tick = max(0.0, now - self._last_tick), now
        if not self._bus_acquired:
            if now >= self._next_bus_retry:
                self._next_bus_retry = now + 1.0
                self._spawn(self._open_bus())
        self._check_offline(now)
        self._ramp(dt)
        self._send_cycle()
        if self._enabled and not self._want_on and self._command_a == 0.0 and self._measured_a() <= self.settings.off_current_a:
            self._ramped_down.set()

    def _check_offline(self, now: float) -> None:
        for m in self.modules.values():
            seen = m.last_seen if m.last_seen is not None else self._started_at
            if m.online and now - seen > self.settings.offline_timeout_s:
                m.online = False
                self._counters.inc("module_offline")
                log.warning("power module 0x%02X offline: no answer for %.1f s", m.address, now - seen)
                if self._enabled:
                    self._trip(f"module 0x{m.address:02X} offline")
        # A module that never answered is offline from the start (set_on refuses to switch on).

    def _ramp(self, dt: float) -> None:
        target = self._setpoint[1] if (self._setpoint and self._want_on and self._enabled) else 0.0
        step = self.settings.ramp_rate_a_per_s * dt
        if self._command_a < target:
            self._command_a = min(target, self._command_a + step)
        else:
            self._command_a = max(target, self._command_a - step)

    def _send_cycle(self) -> None:
        online = [m for m in self.modules.values() if m.online] or list(self.modules.values())
        per_module_a = self._command_a / len(online) if self._enabled else 0.0
        voltage = self._setpoint[0] if self._setpoint else 0.0
        refresh_caps = self._poller.ticks % CAPABILITIES_REFRESH_TICKS == 1
        for m in self.modules.values():
            share = per_module_a if m in online else 0.0
            self._send(codec.CMD_SET_MODULE_VI, m.address, codec.set_module_vi(voltage, share))
            self._send(codec.CMD_SET_ON_OFF, m.address, codec.set_on_off(self._enabled))
            self._send(codec.CMD_READ_MODULE_VI, m.address, codec.read_request())
            self._send(codec.CMD_READ_MODULE_STATUS, m.address, codec.read_request())
            if m.capabilities is None or refresh_caps:
                self._send(codec.CMD_READ_CAPABILITIES, m.address, codec.read_request())

    def _send(self, command: int, address: int, data: bytes, device: int = codec.DEVICE_SINGLE) -> None:
        if self._bus.send(codec.request_id(command, address, self.settings.controller_address, device), data):
            self._counters.inc("frames_tx")

    def _send_all_off(self) -> None:
        for m in self.modules.values():
            self._send(codec.CMD_SET_MODULE_VI, m.address, codec.set_module_vi(self._setpoint[0] if self._setpoint else 0, 0))
            self._send(codec.CMD_SET_ON_OFF, m.address, codec.set_on_off(False))
        if self.settings.group is not None:
            self._send(codec.CMD_SET_ON_OFF, self.settings.group, codec.set_on_off(False), codec.DEVICE_GROUP)

    # --- faults --------------------------------------------------------------------------

    def _module_faults(self) -> list[str]:
        out = []
        for m in self.modules.values():
            if not m.online:
                out.append(f"module 0x{m.address:02X} offline")
            elif m.status is not None and m.status.fatal:
                out.append(f"module 0x{m.address:02X}: {', '.join(sorted(m.status.fatal))}")
        return out

    def _trip(self, reason: str) -> None:
        """Off now, without a ramp: a module we cannot see or that reports a fault."""
        if not self._enabled:
            return
        self._counters.inc("trips")
        log.error("DC power supply tripped: %s: all modules off", reason)
        self._tripped = reason
        self._want_on = self._enabled = False
        self._command_a = 0.0
        self._send_all_off()
        self._ramped_down.set()
        for listener in list(self.fault_listeners):
            try:
                listener(reason)
            except Exception:  # noqa: BLE001
                log.exception("power supply fault listener failed")

    def _measured_a(self) -> float:
        return sum(m.output.current_a for m in self.modules.values() if m.online and m.output)

    async def _wait_ramped_down(self, timeout: float) -> bool:
        waiter = asyncio.ensure_future(self._ramped_down.wait())
        timer = self.context.clock.call_later(timeout, waiter.cancel)
        try:
            await waiter
            return True
        except asyncio.CancelledError:
            if waiter.cancelled() and not self._ramped_down.is_set():
                return False
            raise
        finally:
            timer.cancel()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- receive path --------------------------------------------------------------------

    def _on_frame(self, msg: can.Message) -> None:
        """Every frame on the bus; never raises. Frames not for us are counted and dropped."""
        try:
            self._handle(msg)
        except codec.CodecError as exc:
            self._counters.inc(exc.counter)
            log.debug("power module frame %08X dropped: %s", msg.arbitration_id, exc)

    def _handle(self, msg: can.Message) -> None:
        if not msg.is_extended_id or msg.is_remote_frame:
            self._counters.inc("ignored")
            return
        fid = codec.FrameId.decode(msg.arbitration_id)
        if fid.device != codec.DEVICE_SINGLE or fid.destination != self.settings.controller_address:
            self._counters.inc("ignored")  # another controller's traffic, or another device on the bus
            return
        module = self.modules.get(fid.source)
        if module is None:
            self._counters.inc("unknown_module")
            return
        self._counters.inc("frames_rx")
        if fid.error != codec.ERROR_NORMAL:
            self._counters.inc("error_replies")
            log.warning("power module 0x%02X answered command 0x%02X with error %s", fid.source, fid.command,
                        codec.ERROR_NAMES.get(fid.error, hex(fid.error)))
            self._seen(module)
            return
        if fid.command == codec.CMD_READ_MODULE_VI:
            module.output = codec.decode_vi(msg.data)
        elif fid.command == codec.CMD_READ_MODULE_STATUS:
            module.status = codec.decode_status(msg.data)
            if module.status.fatal and self._enabled:
                self._seen(module)
                self._trip(f"module 0x{module.address:02X}: {', '.join(sorted(module.status.fatal))}")
                return
        elif fid.command == codec.CMD_READ_CAPABILITIES:
            module.capabilities = codec.decode_capabilities(msg.data)
        elif fid.command in (codec.CMD_SET_MODULE_VI, codec.CMD_SET_ON_OFF):
            codec.payload(msg.data)  # an acknowledgement: only its size is checked
        else:
            self._counters.inc("unknown_command")
            return
        self._seen(module)

    def _seen(self, module: ModuleState) -> None:
        module.last_seen = self.context.clock.monotonic()
        if not module.online:
            module.online = True
            log.info("power module 0x%02X online", module.address)
