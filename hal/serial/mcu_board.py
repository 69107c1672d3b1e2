"""Board driver "mcu-cobs": a charger safety MCU over UART, COBS + CRC-32 frames, our message set.

Mapping (docs/serial-mcu-protocol.md has the bytes):
- set_pilot -> SetPwm (0 = F, 10000 = X1, PWM duty in 0.01 %, rounded down)
- allow_power_on -> AllowPowerOn; set_lock -> SetLock; rcd_* -> RcdCommand; reset_mcu -> ResetRequest
- host keep-alive every keepalive_interval_s; the MCU goes safe on its own without it
- CP/PP/contactor/errors/lock/telemetry frames -> Board events (only on real change);
  McuKeepAlive -> capabilities; Meter -> `last_meter`; ResetReason -> link bounce.

Link: lost after link_timeout_s without a valid frame, on a port hang-up, or when the MCU
reports a reset. It comes back once the MCU has sent a keep-alive and contactor feedback since,
with the contactor open and no power permission held: then LinkChanged(True) and every input.
Power permission never survives a link loss: after LinkChanged(True) the consumer must grant it
again; the last pilot and lock commands are re-sent.
"""
from __future__ import annotations

import logging
from typing import ClassVar

from pydantic.v1 import BaseModel

from hal.board import BoardCapabilities, PilotCommand, PilotMode
from hal.driver import DriverContext
from hal.meter import MeterReading
from hal.serial import mcu_codec as codec
from hal.serial.cobs import FrameDecoder
from hal.serial.crc import strip_crc
from hal.serial.link import SerialBoard, SerialSettings

log = logging.getLogger(__name__)

#: What the MCU must have told us since the link went down before it may come back up.
_NEEDED_FOR_LINK = frozenset({"keepalive", "contactor"})


def pilot_to_wire(command: PilotCommand) -> int:
    if command.mode is PilotMode.F:
        return codec.PWM_F
    if command.mode is PilotMode.X1:
        return codec.PWM_X1
    return codec.duty_to_wire(command.duty_pct)


class McuBoard(SerialBoard):
    class Settings(SerialSettings):
        pass

    PROTOCOL_COUNTERS: ClassVar[tuple[str, ...]] = (
        "bad_cobs", "bad_crc", "oversize", "runt", "unknown_type", "bad_length", "bad_value",
    )

    def __init__(self, settings: BaseModel, context: DriverContext) -> None:
        super().__init__(settings, context)
        self._decoder = FrameDecoder(codec.MAX_ENCODED, strip_crc, self._counters.inc)
        self._caps = BoardCapabilities()
        self._heard: set[str] = set()  # message kinds received since the link went down
        self._pilot: PilotCommand | None = None
        self._allowed = False
        self._locked: bool | None = None
        self._keepalive_seq = 0
        #: Power permission as the MCU last reported holding it.
        self.mcu_power_allowed = False
        self.mcu_uptime_ms: int | None = None
        self.last_reset_reason: codec.ResetReason | None = None
        #: Latest reading of the board's own meter, if it has one.
        self.last_meter: MeterReading | None = None

    # --- commands --------------------------------------------------------------------------

    @property
    def capabilities(self) -> BoardCapabilities:
        return self._caps

    async def set_pilot(self, command: PilotCommand) -> None:
        self._pilot = command
        self._send(codec.SetPwm(pilot_to_wire(command)))

    async def allow_power_on(self, allowed: bool) -> None:
        if allowed and not self.link_up:
            log.warning("mcu-cobs %s: power allowed while the link is down", self.settings.port)
        self._allowed = allowed
        self._send(codec.AllowPowerOn(allowed))

    async def set_lock(self, locked: bool) -> None:
        self._locked = locked
        self._send(codec.SetLock(locked))

    async def rcd_self_test(self) -> None:
        self._send(codec.RcdCommand(codec.RcdAction.SELF_TEST))

    async def rcd_reset(self) -> None:
        self._send(codec.RcdCommand(codec.RcdAction.RESET))

    async def reset_mcu(self) -> None:
        """Ask the MCU to reboot (it answers with ResetReason HOST_REQUEST; the link bounces)."""
        self._send(codec.ResetRequest())

    def _send(self, msg: codec.Message) -> None:
        self._write(codec.frame(msg))

    # --- protocol hooks --------------------------------------------------------------------

    def _on_port_open(self) -> None:
        self._send_keepalive()
        self._send(codec.AllowPowerOn(False))

    def _send_keepalive(self) -> None:
        self._keepalive_seq = (self._keepalive_seq + 1) & 0xFFFFFFFF
        self._send(codec.HostKeepAlive(self._keepalive_seq))

    def _on_link_up(self) -> None:
        self._allowed = False
        self._send(codec.AllowPowerOn(False))
        if self._pilot is not None:
            self._send(codec.SetPwm(pilot_to_wire(self._pilot)))
        if self._locked is not None:
            self._send(codec.SetLock(self._locked))

    def _on_link_down(self, reason: str) -> None:
        self._heard.clear()
        self._allowed = False
        if self._running:
            self._send(codec.AllowPowerOn(False))  # best effort: the MCU may still hear us

    def _send_safe(self) -> None:
        self._send(codec.AllowPowerOn(False))
        self._send(codec.SetPwm(codec.PWM_F))

    # --- receive path ----------------------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        for payload in self._decoder.feed(data):
            try:
                msg = codec.decode_from_mcu(payload)
            except codec.DecodeError as exc:
                self._counters.inc(exc.reason)
                continue
            self._frame_ok()
            self._handle(msg)

    def _handle(self, msg: codec.Message) -> None:
        match msg:
            case codec.CpStateMsg(state=state):
                self._set_remote(cp=state)
            case codec.PpStateMsg(rating_a=rating):
                self._set_remote(pp_rating_a=float(rating) if rating else None)
            case codec.ContactorMsg(closed=closed):
                self._set_remote(contactor_closed=closed)
                self._heard.add("contactor")
            case codec.ErrorFlagsMsg():
                self._set_remote(errors=msg.errors)
            case codec.TelemetryMsg():
                self._set_remote(telemetry=msg.telemetry())
            case codec.LockStateMsg(state=state):
                self._set_remote(lock=state)
            case codec.BayStateMsg(occupied=occupied):
                self._set_remote(bay_occupied=occupied)
            case codec.McuKeepAlive():
                self._caps = msg.capabilities()
                self.mcu_power_allowed = msg.power_allowed
                self.mcu_uptime_ms = msg.uptime_ms
                self._heard.add("keepalive")
            case codec.ResetReasonMsg(reason=reason):
                self._counters.inc("board_resets")
                self.last_reset_reason = reason
                self._heard.clear()  # everything it said before the reset is stale
                self.mcu_power_allowed = False
                self._link_down(f"MCU reset ({reason.name.lower()})")
            case codec.MeterMsg():
                self.last_meter = MeterReading(
                    timestamp=self.context.clock.wall(),
                    energy_import_wh=float(msg.energy_wh),
                    power_w=float(msg.power_w),
                    voltage_v=tuple(v / 10 for v in msg.voltage_dv),
                    current_a=tuple(c / 100 for c in msg.current_ca),
                )
        if not self.link_up and self._safe_to_come_up():
            self._link_up()

    def _safe_to_come_up(self) -> bool:
        return (
            _NEEDED_FOR_LINK <= self._heard
            and not self._remote.contactor_closed
            and not self.mcu_power_allowed
        )
