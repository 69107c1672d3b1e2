"""One EVSE: the IEC 61851-1 state machine on top of a hal Board, and its session view.

Data path: board event -> inbox -> `_process` (inputs, faults, timers) -> `_settle` (the
`transitions` machine moves to the state the inputs call for) -> `_apply_outputs` (power off
first, then pilot, lock, power on last). Outputs are a function of state + inputs, so a lost
command or a re-connected board is fixed by re-applying them, not by replaying history.

States: A, B1/B2, C1/C2, D1/D2 (x1 = no PWM, x2 = PWM on), E (CP shorted or invalid reading),
F (disabled by the operator: pilot -12 V), Faulted (a latched fault: pilot F, power off).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from transitions import EventData, Machine

from hal.board import (
    BayChanged, Board, BoardEvent, ContactorChanged, CPChanged, CPState, ErrorsChanged, LinkChanged,
    LockChanged, LockState, PilotCommand, PPChanged,
)
from hal.clock import Clock, TimerHandle
from hal.meter import Meter, MeterReading
from station import faults as F
from station.config_model import EvseConfig, Iec61851Config
from station.evse_faults import FaultLatch
from station.evse_outputs import FAIL_SAFE, Outputs, OutputsMixin
from station.evse_supervision import SupervisionMixin
from station.evse_view import EvseViewMixin
from hal.iec61851 import duty_for_current
from station.limits import CurrentLimiter
from station.session import (
    Authorized, BayFreed, BayOccupied, ChargingState, ConnectorStatus, Deauthorized, EnergyTransferStarted, EnergyTransferStopped,
    EVConnected, EVDisconnected, EvseEvent, FaultCleared, FaultRaised, IecStateChanged, MeterUpdated, Session,
)

METER_FAILURES_FOR_FAULT = 3
STATES = ["A", "B1", "B2", "C1", "C2", "D1", "D2", "E", "F", "Faulted"]
ENERGY_THRESHOLD_W = 50.0  # below this the EV is not taking energy (SuspendedEV)

Listener = Callable[[EvseEvent], None]


class Evse(OutputsMixin, SupervisionMixin, EvseViewMixin):
    """IEC 61851 control of one EVSE. Drive it with `await run()`; command it with the public methods."""

    def __init__(
        self,
        config: EvseConfig,
        timing: Iec61851Config,
        board: Board,
        clock: Clock,
        *,
        meter: Meter | None = None,
        auto_authorize: bool = False,
        meter_interval_s: float = 1.0,
        ev_connection_timeout_s: float = 60.0,
    ) -> None:
        self.id = config.id
        self.config = config
        self.timing = timing
        self.board = board
        self.meter = meter
        self.clock = clock
        self.auto_authorize = auto_authorize
        self.meter_interval_s = meter_interval_s
        self.ev_connection_timeout_s = ev_connection_timeout_s
        self.log = logging.getLogger(f"evse{self.id}")
        self.listeners: list[Listener] = []
        self.limiter = CurrentLimiter(config.max_current_a, on_change=lambda: self.post(None))
        self.faults = FaultLatch(clock, self._fault_raised, self._fault_cleared)

        self.enabled = True
        self.reserved = False
        self.hlc = config.hlc  # 5 % PWM; False after a fallback to basic charging
        self.hlc_power_request = False  # set by the SECC (ISO 15118 PowerDelivery)
        self.session: Session | None = None
        self.authorized = False
        self.ev_present = False  # last real CP reading was B/C/D (pilot F hides the EV)
        self.bay_occupied = False  # what the bay sensor last said (boards without one: always False)
        self.last_reading: MeterReading | None = None
        self.energy_transfer = False
        self.cause = "start"

        self._inbox: asyncio.Queue[BoardEvent | Callable[[], None] | None] = asyncio.Queue()
        self._applied: Outputs | None = None
        self._lock_wanted = self._needs_lock = bool(config.connectors[0].lock)
        self._duty: float | None = None
        self._duty_changed_at = -1e9
        self._timers: dict[str, TimerHandle] = {}
        self._grace = False  # C1/D1 after PWM stop: power stays on until the EV opens S2 or 6 s pass
        self._wakeup_pulse = False
        self._wakeup_done = False
        self._unlock_due = False
        self._f_since = 0.0
        self._connector_status: ConnectorStatus | None = None
        self._charging_state: ChargingState | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._rcd_reset_pending = False
        self._hlc_stop_grace = False  # deauthorized HLC session: power stays until the SECC releases it
        self._unlock_waiters: list[asyncio.Future[bool]] = []
        self._path_closed = False
        self._held: list[EvseEvent] | None = None
        self._reading_after_close = False  # a meter reading taken since the contactor closed

        callbacks = {
            "F": {"on_enter": "_enter_unavailable", "on_exit": "_exit_unavailable"},
            "Faulted": {"on_enter": "_enter_unavailable", "on_exit": "_exit_unavailable"},
            "B2": {"on_enter": "_enter_b2", "on_exit": "_exit_b2"},
        }
        self.machine = Machine(
            model=self, states=[{"name": name, **callbacks.get(name, {})} for name in STATES], initial="A",
            auto_transitions=True, send_event=True, after_state_change="_after_state_change",
        )

    state: str  # set by transitions

    # ------------------------------------------------------------------ public commands
    def post(self, action: Callable[[], None] | None) -> None:
        """Run `action` (or just re-evaluate, for None) inside the EVSE task, in order."""
        self._inbox.put_nowait(action)

    def authorize(self, id_token: str | None, token_type: str | None = None) -> None:
        self.post(lambda: self._authorize(id_token, token_type))

    def deauthorize(self, reason: str = "Local") -> None:
        self.post(lambda: self._deauthorize(reason))

    def set_enabled(self, enabled: bool) -> None:
        def apply() -> None:
            self.enabled = enabled
            self.cause = "enabled by operator" if enabled else "disabled by operator"
        self.post(apply)

    def set_reserved(self, reserved: bool) -> None:
        def apply() -> None:
            self.reserved = reserved
        self.post(apply)

    def set_limit(self, source: str, amps: float | None) -> None:
        self.post(lambda: self.limiter.set(source, amps))

    def reset_faults(self) -> None:
        """Operator reset: resets a tripped RCD on the board and clears MANUAL faults whose condition
        is gone (a weld no longer seen). Faults whose condition persists stay."""
        def apply() -> None:
            self._rcd_reset_pending = F.RCD in self.faults or F.RCD_SELFTEST in self.faults
            self.faults.reset_manual(self._manual_condition_gone)
        self.post(apply)

    def unlock_connector(self) -> "asyncio.Future[bool]":
        """Release the socket lock (OCPP UnlockConnector, a stuck cable). Refused (False) while power is on;
        True once the board reports the lock open; False if it does not within lock_timeout_s. The lock
        stays open until the EV is unplugged (the next plug-in locks again)."""
        result: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def apply() -> None:
            if self._applied is not None and self._applied.power:
                result.set_result(False)
            elif not (self._needs_lock and self.board.capabilities.supports_lock) \
                    or self.board.inputs.lock is LockState.UNLOCKED:
                self._unlock_due = self.ev_present  # nothing to hold open without a cable
                result.set_result(True)
            else:
                self._unlock_due = True
                self._unlock_waiters.append(result)
                self._start_timer("unlock_wait", self.timing.lock_timeout_s, self._unlock_timed_out)
        self.post(apply)
        return result

    def _unlock_timed_out(self) -> None:
        self._resolve_unlock(False)

    def _resolve_unlock(self, ok: bool) -> None:
        waiters, self._unlock_waiters = self._unlock_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(ok)

    def set_hlc_power_request(self, on: bool) -> None:
        def apply() -> None:
            self.hlc_power_request = on
            if not on:
                self._end_hlc_stop_grace()
        self.post(apply)

    def _end_hlc_stop_grace(self) -> None:
        if self._hlc_stop_grace and self.hlc_power_request:
            self.log.warning("the SECC did not end the session %.0f s after the stop: power off",
                             self.timing.pwm_stop_force_off_s)
        self._hlc_stop_grace = False
        self._cancel("hlc_stop")

    def fall_back_to_basic(self, reason: str, step_ef_s: float = 0.0) -> None:
        """HLC failed: charge with the PWM current like a basic IEC 61851 EVSE. `step_ef_s` > 0: show
        F that long first (ISO 15118-3 [V2G3-M06-05]: 5 % -> E/F -> nominal duty, T_step_EF >= 4 s)."""
        def apply() -> None:
            self.log.warning("falling back to basic PWM charging: %s", reason)
            self.hlc = False
            self.cause = f"HLC fallback: {reason}"
            if step_ef_s > 0 and self.ev_present:
                self._wakeup_done = True  # this F step replaces the legacy wake-up pulse
                self._wakeup_pulse = True
                self._start_timer("wakeup", step_ef_s, self._end_wakeup)
        self.post(apply)

    # ------------------------------------------------------------------ the task
    async def run(self) -> None:
        """Process board events and commands until cancelled. Never lets an exception leave the EVSE
        energised: any error ends with power off, pilot F and an InternalError fault."""
        self._tasks = []
        self.board.set_sink(self._inbox.put_nowait)  # board events straight into the inbox, in order
        if self.meter is not None:
            self._tasks.append(asyncio.create_task(self._poll_meter(), name=f"evse{self.id}-meter"))
        try:
            await self._apply_outputs(force=True)
            while True:
                try:
                    await self._loop()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the fail-safe path is the point
                    await self._fail_safe(exc)
        finally:
            self.board.set_sink(None)
            for task in self._tasks:
                task.cancel()
            for timer in self._timers.values():
                timer.cancel()
            await self._power_off_best_effort()

    async def _loop(self) -> None:
        while True:
            item = await self._inbox.get()
            self._held = []  # events wait until the board has its commands: relays first, news second
            try:
                self._process(item)
                # Drain what is already queued before touching the board: one settle per burst.
                while not self._inbox.empty():
                    self._process(self._inbox.get_nowait())
                self._settle()
                await self._apply_outputs()
                self._publish_views()
            finally:
                held, self._held = self._held, None
                for event in held:
                    self._deliver(event)

    async def _poll_meter(self) -> None:
        """Read the meter periodically. Failing reads (no answer, garbage, a stale value: the driver
        raises) become a MeterFailure fault after METER_FAILURES_FOR_FAULT in a row: a session that
        cannot be metered cannot be billed, so it does not go on silently."""
        assert self.meter is not None
        failures = 0
        while True:
            try:
                reading = await self.meter.read()
                if failures >= METER_FAILURES_FOR_FAULT:
                    self.post(lambda: self.faults.set_condition(F.METER, False))
                failures = 0
                self.post(lambda r=reading: self._on_meter(r))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a meter problem must not stop the EVSE task
                failures += 1
                if failures in (1, METER_FAILURES_FOR_FAULT) or failures % 100 == 0:
                    self.log.warning("meter read failed (%d in a row): %s", failures, exc)
                if failures == METER_FAILURES_FOR_FAULT:
                    detail = str(exc)
                    self.post(lambda: self.faults.set_condition(F.METER, True, detail))
            await self.clock.sleep(self.meter_interval_s)

    async def _fail_safe(self, exc: BaseException) -> None:
        self.log.error("exception in EVSE task, turning power off: %r", exc, exc_info=exc)
        await self._power_off_best_effort()
        self._applied = FAIL_SAFE
        self.faults.raise_(F.INTERNAL, repr(exc))
        try:
            self._settle()
            self._publish_views()
        except Exception:  # noqa: BLE001 - already failing safe; never loop on it
            self.log.exception("could not settle after an internal error; power stays off")
        await self.clock.sleep(0.01)  # a fault that repeats on every event must not starve the loop

    async def _power_off_best_effort(self) -> None:
        for command in (lambda: self.board.allow_power_on(False), lambda: self.board.set_pilot(PilotCommand.f())):
            try:
                await asyncio.wait_for(command(), timeout=1.0)
            except Exception:  # noqa: BLE001 - best effort: the board's MCU is the hard safety
                self.log.exception("board did not take the power-off command")
        self._applied = None

    # ------------------------------------------------------------------ inputs
    def _process(self, item: BoardEvent | Callable[[], None] | None) -> None:
        if item is None:
            return
        if not isinstance(item, BoardEvent):
            item()
            return
        inputs = self.board.inputs
        match item:
            case CPChanged(state=cp):
                self.cause = f"CP {cp.value}"
                if cp in (CPState.B, CPState.C, CPState.D):
                    self._ev_seen(True)
                elif cp is CPState.A:
                    self._ev_seen(False)
                self.faults.set_condition(F.CP_SHORTED, cp is CPState.E)
                self.faults.set_condition(F.CP_INVALID, cp is CPState.INVALID)
            case ErrorsChanged(errors=flags):
                self.cause = f"board errors {flags.names() or 'cleared'}"
                for flag, kind in F.FLAG_FAULTS.items():
                    self.faults.set_condition(kind, flag in flags)
            case ContactorChanged(closed=closed):
                self._on_contactor(closed)
            case PPChanged(rating_a=rating):
                self._apply_cable_limit(rating)
            case LockChanged(state=lock):
                if lock is LockState.FAULT:
                    self.faults.raise_(F.LOCK, "board reports lock fault")
                elif lock is LockState.LOCKED:
                    self._cancel("lock")
                elif lock is LockState.UNLOCKED and self._unlock_waiters:
                    self._cancel("unlock_wait")
                    self._resolve_unlock(True)
            case BayChanged(occupied=occupied) if occupied != self.bay_occupied:  # a link-up repeats inputs
                self.bay_occupied = occupied
                self._emit((BayOccupied if occupied else BayFreed)(self.id, self.clock.wall()))
            case LinkChanged(up=up, reason=reason):
                self.cause = "board link up" if up else f"board link lost: {reason}"
                if up:
                    self._applied = None  # the board may have reset: send every output again
                self.faults.set_condition(F.LINK_LOST, not up, reason)
        if not inputs.link_up and self.board.inputs.link_up:
            self._applied = None

    def _ev_seen(self, present: bool) -> None:
        if present and not self.ev_present:
            self.ev_present = True
            self._on_connect()
        elif not present and self.ev_present:
            self.ev_present = False
            self._on_disconnect()

    def _on_connect(self) -> None:
        if self.session is None:
            self.session = Session(started=self.clock.wall())
        self._cancel("ev_connection")
        if self.last_reading is not None:
            self.session.energy_start_wh = self.last_reading.energy_import_wh
        self._apply_cable_limit(self.board.inputs.pp_rating_a)
        self._emit(EVConnected(self.id, self.clock.wall(), self.session.id))
        if self.auto_authorize and not self.authorized:
            self._authorize(None, "NoAuthorization")

    def _on_disconnect(self) -> None:
        self._end_hlc_stop_grace()
        session = self.session
        self._wakeup_done = False
        self._unlock_due = False  # an unlock lasts until the cable is out
        self.hlc = self.config.hlc
        self.hlc_power_request = False
        self.authorized = False
        self.session = None
        if session is not None:
            self._emit(EVDisconnected(self.id, self.clock.wall(), session.id, round(session.energy_wh, 1)))
        self.faults.clear_on_unplug()

    def _apply_cable_limit(self, rating: float | None) -> None:
        if not (self.config.connectors[0].type.startswith("s") and self.board.capabilities.has_pp):
            return  # tethered cable: its rating is the EVSE rating
        # A socket without a valid PP reading offers nothing (IEC 61851-1: unknown cable = no charge).
        self.limiter.set("cable", rating if rating is not None else 0.0)

    def _authorize(self, id_token: str | None, token_type: str | None) -> None:
        if self.session is None:
            # Token before plug-in: keep it for EVConnectionTimeOut.
            self.session = Session(started=self.clock.wall())
            self._start_timer("ev_connection", self.ev_connection_timeout_s,
                              lambda: self._deauthorize("EVConnectTimeout"))
        self.authorized = True
        self.session.id_token, self.session.token_type = id_token, token_type
        self.session.authorized_at = self.clock.wall()
        self.cause = f"authorized ({token_type or 'token'})"
        self._emit(Authorized(self.id, self.clock.wall(), self.session.id, id_token, token_type))

    def _deauthorize(self, reason: str) -> None:
        if not self.authorized:
            return
        self.authorized = False
        self.cause = f"deauthorized: {reason}"
        if self.hlc and self.hlc_power_request and self._applied is not None and self._applied.power:
            # A normal stop of an HLC session: the SECC tells the EV to stop and ramps the power modules
            # down, then releases the power path, so DC contactors do not open under load. Bounded like
            # IEC 61851's PWM-stop grace; a fault still cuts at once.
            self._hlc_stop_grace = True
            self._start_timer("hlc_stop", self.timing.pwm_stop_force_off_s, self._end_hlc_stop_grace)
        session = self.session
        if session is not None:
            self._emit(Deauthorized(self.id, self.clock.wall(), session.id, reason))
            if not self.ev_present:
                self.session = None

    def _on_meter(self, reading: MeterReading) -> None:
        self.last_reading = reading
        self._reading_after_close = self.board.inputs.contactor_closed
        if self.session is not None:
            if self.session.energy_start_wh is None:
                self.session.energy_start_wh = reading.energy_import_wh
            self.session.last_reading = reading
        self._emit(MeterUpdated(self.id, reading.timestamp, reading.energy_import_wh, reading.power_w,
                                reading.current_a))
        self._update_energy_transfer()
        self._check_overcurrent(reading)

    def _update_energy_transfer(self) -> None:
        drawing = (self.board.inputs.contactor_closed and self.last_reading is not None
                   and self.last_reading.power_w > ENERGY_THRESHOLD_W)
        if drawing and not self.energy_transfer:
            self.energy_transfer = True
            self._emit(EnergyTransferStarted(self.id, self.clock.wall()))
        elif not drawing and self.energy_transfer:
            self.energy_transfer = False
            reason = "power path opened" if not self.board.inputs.contactor_closed else "EV stopped drawing"
            self._emit(EnergyTransferStopped(self.id, self.clock.wall(), reason))

    # ------------------------------------------------------------------ state resolution
    def _pwm_wanted(self) -> bool:
        if not (self.enabled and self.ev_present):
            return False
        if self.hlc:
            return True  # 5 % from plug-in: SLAC and authorization happen over HLC
        return self.authorized and duty_for_current(self.limiter.value) is not None

    def _target_state(self) -> str:
        cp = self.board.inputs.cp
        if self.faults.latched_except(F.CP_SHORTED, F.CP_INVALID) or self._holding_f():
            return "Faulted"
        if cp in (CPState.E, CPState.INVALID):
            return "E"
        if not self.enabled:
            return "F"
        if cp is CPState.A:
            return "A"
        if cp is CPState.F:
            # Our own pilot was F a moment ago (or a transient): we cannot see the EV yet.
            return self.state if self.state not in ("F", "Faulted", "E") else ("B1" if self.ev_present else "A")
        return f"{cp.value}{2 if self._pwm_wanted() else 1}"

    def _holding_f_pilot(self) -> bool:
        """Faulted shows F for fault_f_min_s, then X1 (power stays off) so the CP shows an unplug,
        which is what clears many faults."""
        return self.clock.monotonic() - self._f_since < self.timing.fault_f_min_s

    def _holding_f(self) -> bool:
        """After a fault, state F lasts at least fault_f_min_s before anything is retried."""
        return self.state == "Faulted" and self.clock.monotonic() - self._f_since < self.timing.fault_f_min_s

    def _settle(self) -> None:
        for _ in range(4):  # each step is one real transition; more would mean flapping inputs
            target = self._target_state()
            if target == self.state:
                return
            self.trigger(f"to_{target}")

    def _after_state_change(self, event: EventData) -> None:
        source, dest = event.transition.source, event.transition.dest
        if source in ("C2", "D2") and dest in ("C1", "D1") and self._applied and self._applied.power:
            self._grace = True
            self._start_timer("pwm_stop", self.timing.pwm_stop_force_off_s, self._force_off)
        elif dest not in ("C1", "D1"):
            self._grace = False
            self._cancel("pwm_stop")
        self._emit(IecStateChanged(self.id, self.clock.wall(), source, dest, self.cause))

    def _force_off(self) -> None:
        if self._grace:
            self.log.warning("EV did not leave state C %.0f s after PWM stop: forcing power off",
                             self.timing.pwm_stop_force_off_s)
            self._grace = False

    def _enter_unavailable(self, event: EventData) -> None:
        self._f_since = self.clock.monotonic()
        self._unlock_due = False
        if self.state == "Faulted":
            self._start_timer("fault_f_min", self.timing.fault_f_min_s, lambda: None)
        self._start_timer("unlock", self.timing.unlock_after_f_s, self._unlock_now)

    def _exit_unavailable(self, event: EventData) -> None:
        self._cancel("unlock")
        self._unlock_due = False

    def _unlock_now(self) -> None:
        self._unlock_due = True

    def _enter_b2(self, event: EventData) -> None:
        after = self.timing.legacy_wakeup_after_s
        if after > 0 and not self._wakeup_done and not self.hlc:
            self._start_timer("wakeup", after, self._start_wakeup)

    def _exit_b2(self, event: EventData) -> None:
        self._cancel("wakeup")
        self._wakeup_pulse = False

    def _start_wakeup(self) -> None:
        """Legacy EVs that sleep through the PWM start: one F pulse, then PWM again (once)."""
        self.log.info("EV did not request charge %.0f s after PWM: wake-up pulse (F for %.0f s)",
                      self.timing.legacy_wakeup_after_s, self.timing.legacy_wakeup_f_s)
        self._wakeup_done = True
        self._wakeup_pulse = True
        self._start_timer("wakeup", self.timing.legacy_wakeup_f_s, self._end_wakeup)

    def _end_wakeup(self) -> None:
        self._wakeup_pulse = False

    # ------------------------------------------------------------------ helpers
    def _emit(self, event: EvseEvent) -> None:
        if self._held is not None:
            self._held.append(event)
        else:
            self._deliver(event)

    def _deliver(self, event: EvseEvent) -> None:
        if isinstance(event, IecStateChanged):
            self.log.info("%s -> %s (%s)", event.old, event.new, event.cause)
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a consumer's bug must not stop the EVSE
                self.log.exception("event listener failed on %s", event.name)

    def _fault_raised(self, fault: F.Fault) -> None:
        self.cause = f"fault {fault.code}"
        self.log.error("fault raised: %s (%s)%s", fault.code, fault.kind.description,
                       f": {fault.detail}" if fault.detail else "")
        self._emit(FaultRaised(self.id, fault.since, fault.to_dict()))

    def _fault_cleared(self, fault: F.Fault) -> None:
        self.cause = f"fault {fault.code} cleared"
        self.log.info("fault cleared: %s", fault.code)
        self._emit(FaultCleared(self.id, self.clock.wall(), fault.to_dict()))

    def _start_timer(self, name: str, delay: float, action: Callable[[], None]) -> None:
        self._cancel(name)

        def fire() -> None:
            self._timers.pop(name, None)
            self.post(action)

        self._timers[name] = self.clock.call_later(delay, fire)

    def _cancel(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()
