"""Contactor and lock supervision of an Evse, as a mixin: after each power or lock command the
board's feedback must follow within the configured time, or a fault is latched."""
from __future__ import annotations

from hal.board import CPState, LockState, PilotMode
from hal.meter import MeterReading
from hal.iec61851 import current_for_duty
from station import faults as F
from station.session import PowerPathClosed, PowerPathOpened


class SupervisionMixin:
    def _on_contactor(self, closed: bool) -> None:
        if closed != self._path_closed:
            self._path_closed = closed
            self._emit((PowerPathClosed if closed else PowerPathOpened)(self.id, self.clock.wall()))
        self._reading_after_close = False
        if closed:
            self._cancel("contactor_close")
            if not self._closing_expected() and "contactor_open" not in self._timers:
                self.faults.raise_(F.WELDED, "closed without permission")
        else:
            self._cancel("contactor_open")
        self._update_energy_transfer()

    def _check_overcurrent(self, reading: MeterReading) -> None:
        """The EV may draw what the duty offers; more than that plus a measurement margin for longer than
        the grace time (the EV has 5 s to follow a lower duty) is a fault."""
        applied = self._applied
        offered = None
        if applied is not None and applied.power and applied.pilot.mode is PilotMode.PWM and not self.hlc:
            offered = current_for_duty(applied.pilot.duty_pct)
        drawn = max(reading.current_a, default=0.0)
        if offered is None or drawn <= offered + self.timing.overcurrent_margin_a:
            self._cancel("overcurrent")
        elif "overcurrent" not in self._timers:
            detail = f"{drawn:.1f} A drawn, {offered:.1f} A offered"
            self._start_timer("overcurrent", self.timing.overcurrent_grace_s, lambda: self._overcurrent(detail))

    def _overcurrent(self, detail: str) -> None:
        self.faults.raise_(F.EV_OVER_CURRENT, f"{detail} for {self.timing.overcurrent_grace_s:g} s")

    def _closing_expected(self) -> bool:
        applied = self._applied
        if applied is None:
            return False
        # Boards whose firmware owns the relay (OpenEVSE) close it when the EV requests under PWM.
        follows_pilot = self.board.capabilities.relay_follows_pilot and applied.pilot.mode.value == "PWM"
        return applied.power or follows_pilot

    def _manual_condition_gone(self, kind: F.FaultKind) -> bool:
        if kind is F.WELDED:
            return not self.board.inputs.contactor_closed
        return True

    def _power_changed(self, on: bool) -> None:
        """Supervise the contactor after a power command."""
        if on:
            self._cancel("contactor_open")
            if not self.board.inputs.contactor_closed:
                self._start_timer("contactor_close", self.timing.contactor_feedback_timeout_s, self._check_closed)
        else:
            self._cancel("contactor_close")
            if self.board.inputs.contactor_closed:
                self._start_timer("contactor_open", self.timing.contactor_feedback_timeout_s, self._check_open)

    def _check_closed(self) -> None:
        if not self.board.inputs.link_up:
            return  # stale inputs: judged again from the fresh ones the board sends on reconnect
        if self._applied and self._applied.power and not self.board.inputs.contactor_closed \
                and self.board.inputs.cp in (CPState.C, CPState.D):
            self.faults.raise_(F.CONTACTOR, f"no feedback within {self.timing.contactor_feedback_timeout_s} s")

    def _check_open(self) -> None:
        if not self.board.inputs.link_up:
            return  # stale inputs: judged again from the fresh ones the board sends on reconnect
        if self.board.inputs.contactor_closed and not (self._applied and self._applied.power):
            self.faults.raise_(F.WELDED, f"still closed {self.timing.contactor_feedback_timeout_s} s after open")

    def _lock_changed(self, locked: bool) -> None:
        if locked and self.board.inputs.lock is not LockState.LOCKED:
            self._start_timer("lock", self.timing.lock_timeout_s, self._check_locked)
        elif not locked:
            self._cancel("lock")

    def _check_locked(self) -> None:
        if not self.board.inputs.link_up:
            return  # stale inputs: judged again from the fresh ones the board sends on reconnect
        if self._lock_wanted and self.board.inputs.lock is not LockState.LOCKED and self.ev_present:
            self.faults.raise_(F.LOCK, f"not locked within {self.timing.lock_timeout_s} s")

