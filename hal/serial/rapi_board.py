"""Board driver "openevse-rapi": an OpenEVSE controller over its RAPI serial protocol.

The OpenEVSE firmware runs its own pilot and relay logic, so the Board API maps onto it only
approximately (docs/serial-mcu-protocol.md, part 2, lists the limits):
- set_pilot(PWM d) -> `$SC <amps> V` (volatile current capacity, amps from the duty, rounded down);
  the EV sees that PWM only while power is allowed (the firmware couples PWM and relay).
- set_pilot(X1) -> `$FS` (sleep: steady +12 V, relay open); set_pilot(F) -> `$FD` (disable: -12 V).
- allow_power_on(True) with a PWM pilot -> `$FE` (enable: PWM on; the firmware closes the relay
  when the EV asks, C); allow_power_on(False) -> `$FS`, sent ahead of anything queued.
- No lock, no RCD test/reset, no PP over RAPI: those raise NotImplementedError / report None.
- Inputs from `$AT` notifications and a `$GS` poll every keepalive_interval_s; temperatures
  (`$GP`), current/voltage (`$GG`) and energy (`$GU`) every telemetry_interval_s.
- Heartbeat supervision: `$SY <interval> <fallback>` at start, a `$SY` pulse with every poll; a
  missed heartbeat (the firmware cut current to the fallback) shows as HEARTBEAT_TIMEOUT until
  acknowledged with `$SY 165`.

Commands go one at a time (the firmware's receive buffer is small), each with a sequence id
so a late reply is never taken for the answer to a newer command.
"""
from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass
from typing import ClassVar

from pydantic.v1 import BaseModel, Field

from hal.board import BoardCapabilities, CPState, ErrorFlag, PilotCommand, PilotMode, Telemetry
from hal.clock import TimerHandle
from hal.driver import DriverContext
from hal.meter import MeterReading
from hal.serial import rapi
from hal.serial.link import SerialBoard, SerialSettings

log = logging.getLogger(__name__)

PILOT_CP = {rapi.EVSE_STATE_A: CPState.A, rapi.EVSE_STATE_B: CPState.B,
            rapi.EVSE_STATE_C: CPState.C, rapi.EVSE_STATE_D: CPState.D}
FAULT_ERRORS = {
    rapi.EVSE_STATE_DIODE_CHK_FAILED: ErrorFlag.DIODE_FAULT,
    rapi.EVSE_STATE_GFCI_FAULT: ErrorFlag.RCD_TRIPPED,
    rapi.EVSE_STATE_NO_GROUND: ErrorFlag.MCU_FAULT,  # no protective earth: no closer flag exists
    rapi.EVSE_STATE_STUCK_RELAY: ErrorFlag.CONTACTOR_WELDED,
    rapi.EVSE_STATE_GFI_TEST_FAILED: ErrorFlag.RCD_SELFTEST_FAILED,
    rapi.EVSE_STATE_OVER_TEMPERATURE: ErrorFlag.OVER_TEMPERATURE,
    rapi.EVSE_STATE_OVER_CURRENT: ErrorFlag.OVER_CURRENT,
}
TEMP_NOT_INSTALLED = -2560  # firmware's value for a sensor that is not fitted
TEMP_SENSORS = ("ds3231", "mcp9808", "tmp007")
POLLED = ("GP", "GG", "GU")  # telemetry commands dropped for good after a $NK


def duty_to_amps(duty_pct: float) -> int:
    """IEC 61851-1 duty -> whole amps for $SC. The controller floors duties to 0.01 %, so the current it
    meant lies within one duty step above duty * 0.6 (32 A -> 53.33 % -> 31.998 A): allow that step,
    then round down, never offering more than the controller's limit."""
    low_range = duty_pct <= 85.0
    amps = duty_pct * 0.6 if low_range else (duty_pct - 64.0) * 2.5
    step = 0.01 * (0.6 if low_range else 2.5)
    return math.floor(amps + step * 0.999)


@dataclass
class _Command:
    tokens: tuple[str, ...]
    seq: int | None = None


class RapiBoard(SerialBoard):
    class Settings(SerialSettings):
        phases: int = Field(1, ge=1, le=3, description="phases the OpenEVSE switches (it cannot tell)")
        heartbeat_interval_s: int = Field(5, ge=0, le=65535, description="$SY supervision; 0 = off")
        heartbeat_fallback_a: int = Field(6, ge=0, le=80, description="current the EVSE falls back to")
        command_timeout_s: float = Field(1.0, gt=0)
        telemetry_interval_s: float = Field(5.0, gt=0)
        sequence_ids: bool = Field(True, description="RAPI >= 4 sequence ids (:SS) on commands")

    PROTOCOL_COUNTERS: ClassVar[tuple[str, ...]] = (
        "bad_char", "no_checksum", "bad_checksum", "bad_frame", "truncated", "oversize",
        "unknown_type", "bad_length", "bad_value", "nak", "reply_timeouts", "stale_replies",
        "unexpected_replies",
    )

    def __init__(self, settings: BaseModel, context: DriverContext) -> None:
        super().__init__(settings, context)
        self.settings: RapiBoard.Settings  # type: ignore[assignment]
        self._decoder = rapi.FrameDecoder(self._counters.inc)
        self._commands: deque[_Command] = deque()
        self._outstanding: _Command | None = None
        self._reply_timer: TimerHandle | None = None
        self._seq = 0
        self._caps = BoardCapabilities(phases=self.settings.phases, supports_lock=False,
                                       supports_rcd_test=False, has_pp=False, relay_follows_pilot=True)
        self._pilot: PilotCommand | None = None
        self._allowed = False
        self._sent_amps: int | None = None
        self._sent_mode: str | None = None
        self._state_heard = False  # a state report arrived since the link went down
        self._evse_state: int | None = None
        self._fault_errors = ErrorFlag.NONE
        self._hs_missed = False
        self._unsupported: set[str] = set()
        self._last_telemetry = -math.inf
        self._amps_v: tuple[float, float] = (0.0, 0.0)  # (A, V) from $GG
        self.firmware_version: str | None = None
        self.current_capacity_a: int | None = None
        #: Latest energy/current reading from `$GG`/`$GU` (informational; not a billing meter).
        self.last_meter: MeterReading | None = None

    # --- commands --------------------------------------------------------------------------

    @property
    def capabilities(self) -> BoardCapabilities:
        return self._caps

    async def set_pilot(self, command: PilotCommand) -> None:
        if command.mode is PilotMode.PWM:
            amps = duty_to_amps(command.duty_pct)
            if amps < self._caps.min_current_a:
                raise ValueError(
                    f"openevse-rapi cannot offer {command} ({amps} A): the firmware's minimum is "
                    f"{self._caps.min_current_a:g} A and it has no 5 % (digital communication) mode")
        self._pilot = command
        self._apply()

    async def allow_power_on(self, allowed: bool) -> None:
        self._allowed = allowed
        self._apply(urgent=not allowed)

    async def set_lock(self, locked: bool) -> None:
        raise NotImplementedError("openevse-rapi: the OpenEVSE has no connector lock over RAPI")

    async def rcd_self_test(self) -> None:
        raise NotImplementedError("openevse-rapi: the firmware runs its GFCI self-test itself before each charge")

    async def rcd_reset(self) -> None:
        raise NotImplementedError("openevse-rapi: the firmware clears GFCI faults itself (retry timer)")

    def _desired_mode(self) -> str:
        if self._pilot is not None and self._pilot.mode is PilotMode.F:
            return "FD"
        # The firmware emits PWM only while enabled and closes its relay only when the EV requests
        # (state C), so offering PWM in B means enabling it. A withdrawal while the EV is in C/D
        # (fault, forced stop) sleeps it at once; in B the firmware's relay is open anyway.
        if self._pilot is not None and self._pilot.mode is PilotMode.PWM and (
                self._allowed or self.inputs.cp not in (CPState.C, CPState.D)):
            return "FE"
        return "FS"

    def _apply(self, urgent: bool = False, force: bool = False) -> None:
        """Queue what it takes to bring the EVSE to the commanded pilot / permission."""
        mode = self._desired_mode()
        if mode == "FS" and urgent:  # withdraw permission before anything else
            if self.inputs.cp in (CPState.C, CPState.D) and self._sent_mode == "FE":
                # The EV still draws: $FS alone lets the firmware wait up to 3 s for it to stop, $FD opens
                # the relay now. $FS right after brings the pilot back to +12 V so the EV is visible.
                self._enqueue(("FS",), urgent=True)
                self._enqueue(("FD",), urgent=True)
            else:
                self._enqueue(("FS",), urgent=True)
            self._sent_mode = mode
        if self._pilot is not None and self._pilot.mode is PilotMode.PWM:
            amps = duty_to_amps(self._pilot.duty_pct)
            if amps != self._sent_amps or force:
                self._enqueue(("SC", str(amps), "V"))
                self._sent_amps = amps
        if mode != self._sent_mode or force:
            self._enqueue((mode,))
            self._sent_mode = mode

    # --- command queue ---------------------------------------------------------------------

    def _enqueue(self, tokens: tuple[str, ...], urgent: bool = False, unique: bool = False) -> None:
        if unique and (any(c.tokens == tokens for c in self._commands)
                       or (self._outstanding is not None and self._outstanding.tokens == tokens)):
            return
        if urgent:
            self._commands.appendleft(_Command(tokens))
        else:
            self._commands.append(_Command(tokens))
        self._pump()

    def _pump(self) -> None:
        if self._outstanding is not None or not self._commands:
            return
        if self._transport is None or not self._transport.is_open:
            self._counters.inc("tx_dropped", len(self._commands))
            self._commands.clear()
            return
        cmd = self._commands.popleft()
        if self.settings.sequence_ids:
            self._seq = self._seq % 255 + 1  # 1..255; 0 means "none" to the firmware
            cmd.seq = self._seq
        if not self._write(rapi.build(cmd.tokens, cmd.seq)):
            return
        self._outstanding = cmd
        self._reply_timer = self.context.clock.call_later(self.settings.command_timeout_s, self._reply_timeout)

    def _reply_timeout(self) -> None:
        self._reply_timer = None
        if self._outstanding is not None:
            self._counters.inc("reply_timeouts")
            log.debug("openevse-rapi: no reply to %s", " ".join(self._outstanding.tokens))
            self._outstanding = None
        self._pump()

    def _finish_outstanding(self) -> None:
        self._outstanding = None
        if self._reply_timer is not None:
            self._reply_timer.cancel()
            self._reply_timer = None
        self._pump()

    # --- protocol hooks --------------------------------------------------------------------

    def _on_port_open(self) -> None:
        self._commands.clear()
        self._outstanding = None
        self._init_sequence()

    def _init_sequence(self) -> None:
        """Who are you, what can you do, supervise us, and be safe until told otherwise."""
        self._enqueue(("GV",))
        self._enqueue(("GC",))
        hs = self.settings
        if hs.heartbeat_interval_s:
            self._enqueue(("SY", str(hs.heartbeat_interval_s), str(hs.heartbeat_fallback_a)))
        self._sent_amps = self._sent_mode = None
        self._apply(force=True)
        self._enqueue(("GS",))

    def _send_keepalive(self) -> None:
        if self.settings.heartbeat_interval_s:
            self._enqueue(("SY",), unique=True)
        self._enqueue(("GS",), unique=True)
        now = self.context.clock.monotonic()
        if now - self._last_telemetry >= self.settings.telemetry_interval_s:
            self._last_telemetry = now
            for name in POLLED:
                if name not in self._unsupported:
                    self._enqueue((name,), unique=True)

    def _on_link_up(self) -> None:
        self._last_telemetry = -math.inf

    def _on_link_down(self, reason: str) -> None:
        self._state_heard = False
        self._allowed = False
        self._pilot = None  # nothing is offered again until the controller says so after the link returns
        if self._running:
            self._apply(urgent=True)  # best effort: the EVSE may still hear us

    def _send_safe(self) -> None:
        self._commands.clear()  # nothing queued may follow (and undo) this
        self._write(rapi.build(("FD",)))  # pilot F, relay open; no reply awaited

    async def stop(self) -> None:
        await super().stop()
        self._commands.clear()
        self._outstanding = None
        if self._reply_timer is not None:
            self._reply_timer.cancel()
            self._reply_timer = None

    # --- receive path ----------------------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        for frame in self._decoder.feed(data):
            if frame.name in ("OK", "NK"):
                self._on_reply(frame)
                continue
            try:
                msg = rapi.parse_async(frame)
            except rapi.DecodeError as exc:
                self._counters.inc(exc.reason)
                continue
            self._frame_ok()
            if isinstance(msg, rapi.StateReport):
                self._on_state(msg)
            elif isinstance(msg, rapi.BootNotice):
                self._on_boot(msg)

    def _on_reply(self, frame: rapi.Frame) -> None:
        cmd = self._outstanding
        if cmd is None:
            self._counters.inc("unexpected_replies")
            return
        if frame.seq is not None and frame.seq != cmd.seq:
            self._counters.inc("stale_replies")  # the answer to a command we gave up on
            return
        self._frame_ok()
        self._finish_outstanding()
        name = cmd.tokens[0]
        if frame.name == "NK":
            self._counters.inc("nak")
            if name in POLLED:
                self._unsupported.add(name)
            log.warning("openevse-rapi: %s refused ($NK %s)", " ".join(cmd.tokens), " ".join(frame.args))
            return
        try:
            self._on_ok(cmd, frame.args)
        except rapi.DecodeError as exc:
            self._counters.inc(exc.reason)

    def _on_ok(self, cmd: _Command, args: tuple[str, ...]) -> None:
        name = cmd.tokens[0]
        if name == "GS":
            state = rapi.parse_gs_reply(args)
            self._on_state(state)
            self._reconcile(state.evse_state)
        elif name == "GC" and len(args) >= 2:
            lo, hi = rapi.dec_field(args[0]), rapi.dec_field(args[1])
            self._caps = BoardCapabilities(min_current_a=float(lo), max_current_a=float(hi),
                                           phases=self.settings.phases, supports_lock=False,
                                           supports_rcd_test=False, has_pp=False, relay_follows_pilot=True)
        elif name == "GV" and args:
            self.firmware_version = " ".join(args)
        elif name == "SC" and args:
            self.current_capacity_a = rapi.dec_field(args[0])
        elif name == "SY" and len(args) == 3:
            self._on_heartbeat(rapi.dec_field(args[2]))
        elif name == "GP" and len(args) == 3:
            temps = {n: rapi.dec_field(v) / 10 for n, v in zip(TEMP_SENSORS, args)
                     if rapi.dec_field(v) != TEMP_NOT_INSTALLED}
            self._set_remote(telemetry=Telemetry(temperatures_c=temps))
        elif name == "GG" and len(args) == 2:
            milliamps, millivolts = rapi.dec_field(args[0]), rapi.dec_field(args[1])
            self._amps_v = (max(0, milliamps) / 1000, max(0, millivolts) / 1000)
        elif name == "GU" and len(args) == 2:
            session_ws, total_wh = rapi.dec_field(args[0]), rapi.dec_field(args[1])
            amps, volts = self._amps_v
            self.last_meter = MeterReading(
                timestamp=self.context.clock.wall(), energy_import_wh=float(total_wh),
                power_w=amps * volts, voltage_v=(volts,), current_a=(amps,),
                extra={"session_wh": session_ws / 3600},
            )

    def _on_heartbeat(self, triggered: int) -> None:
        missed = triggered == rapi.HS_MISSEDPULSE_NOACK
        if missed and not self._hs_missed:
            log.warning("openevse-rapi: the EVSE missed our heartbeat and fell back to %d A",
                        self.settings.heartbeat_fallback_a)
        if missed:
            self._enqueue(("SY", str(rapi.HS_ACK_COOKIE)), unique=True)
            self._sent_amps = None  # the firmware changed the capacity: set ours again
        elif self._hs_missed:
            self._apply()
        self._hs_missed = missed
        self._publish_errors()

    def _on_state(self, state: rapi.StateReport) -> None:
        self._evse_state = state.evse_state
        if state.current_a is not None:
            self.current_capacity_a = state.current_a
        if state.evse_state == rapi.EVSE_STATE_DISABLED:
            cp = CPState.F  # the firmware drives -12 V: the EV cannot be seen
        else:
            cp = PILOT_CP.get(state.pilot_state, CPState.INVALID)
        self._fault_errors = FAULT_ERRORS.get(state.evse_state, ErrorFlag.NONE)
        self._set_remote(cp=cp, contactor_closed=bool(state.vflags & rapi.ECVF_CHARGING_ON))
        self._publish_errors()
        self._state_heard = True
        if not self.link_up and self._safe_to_come_up():
            self._link_up()

    def _publish_errors(self) -> None:
        errors = self._fault_errors | (ErrorFlag.HEARTBEAT_TIMEOUT if self._hs_missed else ErrorFlag.NONE)
        self._set_remote(errors=errors)

    def _safe_to_come_up(self) -> bool:
        # Asleep or disabled, relay open: the firmware will not close it on its own.
        return (
            self._state_heard
            and not self._remote.contactor_closed
            and self._evse_state in (rapi.EVSE_STATE_SLEEPING, rapi.EVSE_STATE_DISABLED)
        )

    def _reconcile(self, evse_state: int) -> None:
        """Re-send the mode if the EVSE is not in it (a lost command, a front-panel button)."""
        if not self.link_up or any(c.tokens[0] in ("FE", "FS", "FD") for c in self._commands):
            return
        actual = {rapi.EVSE_STATE_SLEEPING: "FS", rapi.EVSE_STATE_DISABLED: "FD"}.get(
            evse_state, "FE" if rapi.EVSE_STATE_A <= evse_state <= rapi.EVSE_STATE_D else None)
        if actual is not None and actual != self._desired_mode():
            log.info("openevse-rapi: EVSE in %s, want %s: re-sending", actual, self._desired_mode())
            self._sent_mode = None
            self._apply()

    def _on_boot(self, boot: rapi.BootNotice) -> None:
        self._counters.inc("board_resets")
        self.firmware_version = boot.version
        self._state_heard = False
        self._link_down(f"OpenEVSE rebooted (state {boot.evse_state:02x})")
        if self._transport is not None and self._transport.is_open:
            self._init_sequence()
