"""What an Evse drives on its board (pilot, power permission, lock), as a mixin.

Outputs are a pure function of state and inputs; `_apply_outputs` sends only what changed, power
off first and power on last, so a re-connected board is fixed by re-applying, not by replay.
"""
from __future__ import annotations

from dataclasses import dataclass

from hal.board import LockState, PilotCommand
from station import faults as F
from hal.iec61851 import HLC_DUTY_PCT, duty_for_current

PWM_STATES = {"B2", "C2", "D2"}


@dataclass(frozen=True)
class Outputs:
    pilot: PilotCommand
    power: bool
    lock: bool | None  # None: leave the lock as it is


#: What an EVSE holds after an internal error: nothing but power off and F, so a broken command
#: or handler cannot feed back into more commands.
FAIL_SAFE = Outputs(PilotCommand.f(), False, None)



class OutputsMixin:
    def _desired_outputs(self) -> Outputs:
        if F.INTERNAL in self.faults:
            return FAIL_SAFE
        state = self.state
        pilot = PilotCommand.x1()
        if state == "F" or (state == "Faulted" and self._holding_f_pilot()):
            pilot = PilotCommand.f()
        elif state in PWM_STATES:
            pilot = PilotCommand.f() if self._wakeup_pulse else PilotCommand.pwm(self._next_duty())
        power = False
        if state in ("C2", "D2") and (state == "C2" or self.config.ventilation):
            power = ((self.authorized or self._hlc_stop_grace) and not self._wakeup_pulse and self._locked_ok()
                     and (not self.hlc or self.hlc_power_request))
        elif state in ("C1", "D1"):
            power = self._grace
        lock = self._needs_lock and self.ev_present and not self._unlock_due and state != "A"
        self._lock_wanted = lock
        return Outputs(pilot, power, lock)

    def _locked_ok(self) -> bool:
        if not (self._needs_lock and self.board.capabilities.supports_lock):
            return True
        return self.board.inputs.lock is LockState.LOCKED

    def _next_duty(self) -> float:
        """The duty to emit; raises take effect at most once per pwm_min_change_interval_s
        (EVs follow slowly), reductions at once (the limit is a limit)."""
        if self.hlc:
            return HLC_DUTY_PCT
        target = duty_for_current(self.limiter.value)
        assert target is not None  # _pwm_wanted checked it
        now = self.clock.monotonic()
        if self._duty is not None and target > self._duty:
            wait = self._duty_changed_at + self.timing.pwm_min_change_interval_s - now
            if wait > 0:
                self._start_timer("duty_raise", wait, lambda: None)
                return self._duty
        if target != self._duty:
            self._duty, self._duty_changed_at = target, now
        return target

    async def _apply_outputs(self, force: bool = False) -> None:
        want = self._desired_outputs()
        have = None if force else self._applied
        board = self.board
        # Order matters: withdraw power before anything else, grant it only after pilot and lock.
        if not want.power and (have is None or have.power):
            await board.allow_power_on(False)
            self._power_changed(False)
        if have is None or want.pilot != have.pilot:
            await board.set_pilot(want.pilot)
            if want.pilot.mode.value != "PWM":
                self._duty = None
        if want.lock is not None and (have is None or want.lock != have.lock) and self._needs_lock \
                and board.capabilities.supports_lock:
            await board.set_lock(want.lock)
            self._lock_changed(want.lock)
        if want.power and (have is None or not have.power):
            await board.allow_power_on(True)
            self._power_changed(True)
        self._applied = want
        if self._rcd_reset_pending:
            self._rcd_reset_pending = False
            await board.rcd_reset()

