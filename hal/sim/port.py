"""One simulated charge port: the board's outputs, the MCU's hardware safety, the cable and the EV.

The port is the physics; SimBoard only forwards commands to it and receives its input events.
Every change goes through `_refresh()`, which first integrates energy at the old power, then
recomputes what the board measures and emits only what changed (everything, on resync).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

from hal.board import (
    BayChanged, BoardEvent, ContactorChanged, CPChanged, CPState, ErrorFlag, ErrorsChanged, LinkChanged, LockChanged,
    LockState, PilotCommand, PilotMode, PPChanged, Telemetry, TelemetryUpdated,
)
from hal.clock import Clock, TimerHandle
from hal.sim.ev import EVProfile, EVState, read_pilot

log = logging.getLogger(__name__)

#: Injectable faults and what each does (shown by `station sim profiles` and in errors).
FAULTS: dict[str, str] = {
    "rcd": "residual current: the RCD trips, the contactor opens, RCD_TRIPPED latches until rcd_reset",
    "rcd-selftest-fail": "the next RCD self-test fails (RCD_SELFTEST_FAILED)",
    "weld": "the contactor welds: once closed it stays closed",
    "contactor-stuck-open": "the contactor never closes",
    "lock": "the lock actuator fails: set_lock -> LockState.FAULT + LOCK_FAULT",
    "link-loss": "the board link drops: commands ignored, the MCU opens the contactor and drops the allowance",
    "diode": "EV diode shorted: DIODE_FAULT and CP low = -CP high while PWM runs with an EV plugged",
    "cp-short": "CP shorted to PE: state E",
    "cp-lost": "CP measurement lost: state INVALID",
    "ignore-pwm-stop": "the EV keeps S2 closed and keeps drawing when PWM stops or the duty drops below 6 A",
    "overdraw": "the EV draws 25 % more than the duty allows",
    "over-temperature": "OVER_TEMPERATURE flag and a hot board temperature",
    "emergency-stop": "emergency stop pressed: EMERGENCY_STOP and the contactor opens in hardware",
    "pp-invalid": "proximity pilot unreadable: no cable rating and PP_FAULT while plugged",
    "meter-fail": "the meter stops answering (read raises MeterError)",
    "power-supply-fail": "the DC power supply stops answering (its commands raise)",
    "isolation-fault": "the isolation monitor reads an insulation fault (DC cable check fails)",
}

EV_ACTIONS = ("pause", "resume", "ventilation-on", "ventilation-off", "hlc-start", "hlc-stop")

CP_HIGH_V: dict[CPState, float | None] = {
    CPState.A: 12.0, CPState.B: 9.0, CPState.C: 6.0, CPState.D: 3.0, CPState.E: 0.0, CPState.F: -12.0,
    CPState.INVALID: None,
}
OVERDRAW_FACTOR = 1.25
BOARD_TEMP_C = 35.0
HOT_BOARD_TEMP_C = 95.0


@dataclass
class PortSettings:
    """What the SimBoard's settings and the EVSE's config tell the port."""

    cable_rating_a: float | None = 32.0
    contactor_delay_s: float = 0.05
    supply_voltage_v: float = 230.0
    phases: int = 3
    bay_sensor: bool = False  # a parking bay sensor (BayChanged)


class SimPort:
    def __init__(self, evse_id: int, clock: Clock) -> None:
        self.evse_id = evse_id
        self.clock = clock
        self.settings = PortSettings()
        #: Receives input events (the SimBoard's _emit); None until a board is attached.
        self.sink: Callable[[BoardEvent], None] | None = None
        self.started = False
        # board outputs
        self.pilot = PilotCommand.x1()
        self.power_allowed = False
        self.lock_commanded = False
        # hardware
        self.contactor_closed = False
        self.link_up = True
        self.rcd_latched = False
        self.selftest_failed = False
        self.lock_fault = False
        self.faults: set[str] = set()
        self.ev: EVState | None = None
        self.meter_wh = 0.0  # the meter's import register; never reset
        self.bay_occupied = False
        self._power_w = 0.0
        self._last_integration = clock.monotonic()
        self._close_timer: TimerHandle | None = None
        self._react_timer: TimerHandle | None = None
        self._full_timer: TimerHandle | None = None
        self._published: dict[str, Any] = {}
        #: DC power supply output (on, volts, amps), set by SimPowerSupply.
        self.dc_output: tuple[bool, float, float] = (False, 0.0, 0.0)

    # --- what the board measures -------------------------------------------------------------
    def cp_state(self) -> CPState:
        if "cp-lost" in self.faults:
            return CPState.INVALID
        if "cp-short" in self.faults:
            return CPState.E
        if self.pilot.mode is PilotMode.F:
            return CPState.F
        ev = self.ev
        if ev is None:
            return CPState.A
        if not ev.s2_closed:
            return CPState.B
        return CPState.D if ev.ventilation else CPState.C

    def pp_rating(self) -> float | None:
        if self.ev is None or "pp-invalid" in self.faults:
            return None
        return self.settings.cable_rating_a

    def lock_state(self) -> LockState:
        if self.lock_fault:
            return LockState.FAULT
        return LockState.LOCKED if self.lock_commanded else LockState.UNLOCKED

    def errors(self) -> ErrorFlag:
        flags = ErrorFlag.NONE
        if self.rcd_latched:
            flags |= ErrorFlag.RCD_TRIPPED
        if self.selftest_failed:
            flags |= ErrorFlag.RCD_SELFTEST_FAILED
        if self.lock_fault:
            flags |= ErrorFlag.LOCK_FAULT
        if self._diode_shorted():
            flags |= ErrorFlag.DIODE_FAULT
        if "over-temperature" in self.faults:
            flags |= ErrorFlag.OVER_TEMPERATURE
        if "emergency-stop" in self.faults:
            flags |= ErrorFlag.EMERGENCY_STOP
        if "pp-invalid" in self.faults and self.ev is not None:
            flags |= ErrorFlag.PP_FAULT
        return flags

    def telemetry(self) -> Telemetry:
        high = CP_HIGH_V[self.cp_state()]
        if high is None:
            low = None
        elif self.pilot.mode is PilotMode.PWM and high >= 0:
            low = -high if self._diode_shorted() else -12.0
        else:
            low = high  # steady level: no oscillator, low equals high
        temp = HOT_BOARD_TEMP_C if "over-temperature" in self.faults else BOARD_TEMP_C
        return Telemetry(cp_high_v=high, cp_low_v=low, temperatures_c={"board": temp})

    def _diode_shorted(self) -> bool:
        return "diode" in self.faults and self.ev is not None and self.pilot.mode is PilotMode.PWM

    # --- draw and energy ---------------------------------------------------------------------
    def draw_a(self) -> float:
        ev = self.ev
        if ev is None or not self.contactor_closed or not ev.s2_closed:
            return 0.0
        if ev.profile.kind == "dc":
            on, _, amps = self.dc_output
            return amps if on and not ev.full else 0.0
        return ev.setpoint_a * (OVERDRAW_FACTOR if "overdraw" in self.faults else 1.0)

    def dc_voltage_v(self) -> float:
        """Voltage on the DC output: the supply's while it is on and the contactor closed."""
        on, volts, _ = self.dc_output
        return volts if on and self.contactor_closed else 0.0

    def set_dc_output(self, on: bool, voltage_v: float, current_a: float) -> None:
        self.integrate()
        self.dc_output = (on, voltage_v, current_a)
        self._refresh()

    def live_phases(self) -> int:
        if self.ev is not None and self.ev.profile.kind == "dc":
            return 1  # one DC circuit
        return min(self.ev.profile.phases, self.settings.phases) if self.ev else 0

    def phase_currents(self) -> tuple[float, ...]:
        draw, live = self.draw_a(), self.live_phases()
        return tuple(draw if i < live else 0.0 for i in range(self.settings.phases))

    def power_w(self) -> float:
        if self.ev is not None and self.ev.profile.kind == "dc":
            return self.dc_voltage_v() * self.draw_a()
        return self.settings.supply_voltage_v * self.draw_a() * self.live_phases()

    def integrate(self) -> None:
        """Bring energy and SoC up to now at the power that held since the last change."""
        now = self.clock.monotonic()
        dt = now - self._last_integration
        self._last_integration = now
        if dt > 0 and self._power_w > 0:
            wh = self._power_w * dt / 3600.0
            self.meter_wh += wh
            if self.ev is not None:
                self.ev.add_energy(wh)

    # --- the heart: recompute, act in hardware, report ------------------------------------------
    def _refresh(self, force_publish: bool = False) -> None:
        self.integrate()
        self._update_contactor()
        self._power_w = self.power_w()
        self._schedule_full()
        self._publish(force_publish)

    def _contactor_may_close(self) -> bool:
        return (
            self.power_allowed
            and self.cp_state() in (CPState.C, CPState.D)
            and not self.rcd_latched
            and self.link_up
            and "emergency-stop" not in self.faults
            and "contactor-stuck-open" not in self.faults
        )

    def _update_contactor(self) -> None:
        ok = self._contactor_may_close()
        if self.contactor_closed:
            if not ok and "weld" not in self.faults:
                self.contactor_closed = False
        elif ok and self._close_timer is None:
            self._close_timer = self.clock.call_later(self.settings.contactor_delay_s, self._close_contactor)
        if not ok and self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None

    def _close_contactor(self) -> None:
        self._close_timer = None
        if self._contactor_may_close():
            self.contactor_closed = True
        self._refresh()

    def _schedule_full(self) -> None:
        """Wake when the battery reaches its target at the present power, so the EV can stop."""
        if self._full_timer is not None:
            self._full_timer.cancel()
            self._full_timer = None
        ev = self.ev
        if ev is None or self._power_w <= 0 or ev.full:
            return
        wh_left = (ev.profile.soc_target - ev.soc) / 100.0 * ev.profile.battery_wh
        self._full_timer = self.clock.call_later(wh_left / self._power_w * 3600.0, self._battery_full)

    def _battery_full(self) -> None:
        self._full_timer = None
        self.integrate()
        ev = self.ev
        if ev is not None:
            ev.soc = max(ev.soc, ev.profile.soc_target)  # float rounding must not leave it a hair short
            ev.stop_requesting()
        self._refresh()

    def _publish(self, force: bool) -> None:
        """Emit the inputs that changed since last reported (all of them when forced)."""
        if not self.started or not self.link_up or self.sink is None:
            return  # nothing reaches the controller; a resync sends everything later
        current = {
            "cp": self.cp_state(),
            "contactor": self.contactor_closed,
            "pp": self.pp_rating(),
            "errors": self.errors(),
            "lock": self.lock_state(),
            "telemetry": self.telemetry(),
        }
        makers = {
            "cp": CPChanged, "contactor": ContactorChanged, "pp": PPChanged,
            "errors": ErrorsChanged, "lock": LockChanged, "telemetry": TelemetryUpdated, "bay": BayChanged,
        }
        if self.settings.bay_sensor:
            current = {"bay": self.bay_occupied, **current}  # the car parks before it plugs in
        for key, value in current.items():
            if force or self._published.get(key, _UNSET) != value:
                self._published[key] = value
                self.sink(makers[key](value, t_ns=time.perf_counter_ns()))

    # --- EV reaction ---------------------------------------------------------------------------
    def _schedule_reaction(self) -> None:
        if self.ev is None:
            return
        if self._react_timer is not None:
            self._react_timer.cancel()
        self._react_timer = self.clock.call_later(self.ev.profile.reaction_s, self._ev_reacts)

    def _ev_reacts(self) -> None:
        self._react_timer = None
        if self.ev is None:
            return
        self.integrate()  # energy so far at the old draw, before the EV changes it
        # A CP shorted to PE carries no PWM the EV could read.
        reading = read_pilot(self.pilot) if "cp-short" not in self.faults else read_pilot(PilotCommand.x1())
        self.ev.decide(reading, ignore_pwm_stop="ignore-pwm-stop" in self.faults)
        self._refresh()

    # --- board commands (from SimBoard) ----------------------------------------------------------
    def start(self, sink: Callable[[BoardEvent], None]) -> None:
        self.sink = sink
        self.started = True
        self.link_up = "link-loss" not in self.faults
        if self.link_up:
            sink(LinkChanged(True, t_ns=time.perf_counter_ns()))
        self._refresh(force_publish=True)

    def stop(self) -> None:
        self.power_allowed = False
        self.pilot = PilotCommand.f()
        self._schedule_reaction()
        self._refresh()
        self.started = False

    def _accepting(self) -> bool:
        if not self.link_up:
            log.debug("EVSE %s: board link down, command not delivered", self.evse_id)
        return self.link_up  # a dead link: commands never reach the MCU

    def set_pilot(self, command: PilotCommand) -> None:
        if not self._accepting() or command == self.pilot:
            return
        self.pilot = command
        self._schedule_reaction()
        self._refresh()

    def allow_power_on(self, allowed: bool) -> None:
        if not self._accepting():
            return
        self.power_allowed = allowed
        self._refresh()

    def set_lock(self, locked: bool) -> None:
        if not self._accepting():
            return
        self.lock_commanded = locked
        if "lock" in self.faults:
            self.lock_fault = True
        self._refresh()

    def rcd_self_test(self) -> None:
        if not self._accepting():
            return
        self.selftest_failed = "rcd-selftest-fail" in self.faults
        self._refresh()

    def rcd_reset(self) -> None:
        if not self._accepting():
            return
        if "rcd" not in self.faults:
            self.rcd_latched = False  # a residual current still flowing trips it again at once
        self._refresh()

    # --- world actions (from control commands) -------------------------------------------------
    def plug(self, profile: EVProfile) -> None:
        if self.ev is not None:
            raise ValueError(f"EVSE {self.evse_id} already has {self.ev.profile.name!r} plugged in; unplug it first")
        self.integrate()
        self.ev = EVState(profile)
        self.bay_occupied = True  # a car at the connector is in the bay
        self._schedule_reaction()
        self._refresh()

    def set_bay(self, occupied: bool) -> None:
        if not self.settings.bay_sensor:
            raise ValueError(f"EVSE {self.evse_id} has no bay sensor (its [evse.board] needs bay_sensor = true)")
        if not occupied and self.ev is not None:
            raise ValueError(f"the EV plugged into EVSE {self.evse_id} cannot leave the bay; unplug it first")
        self.bay_occupied = occupied
        self._refresh()

    def unplug(self) -> None:
        if self.ev is None:
            raise ValueError(f"nothing is plugged into EVSE {self.evse_id}")
        self.integrate()
        self.ev = None
        if self._react_timer is not None:
            self._react_timer.cancel()
            self._react_timer = None
        self._refresh()

    def set_fault(self, fault: str, active: bool) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; available: {', '.join(FAULTS)}")
        if active == (fault in self.faults):
            return
        self.integrate()
        if active:
            self.faults.add(fault)
        else:
            self.faults.discard(fault)
        if fault == "rcd" and active:
            self.rcd_latched = True
        elif fault == "lock" and not active:
            self.lock_fault = False  # repaired: the actuator holds the last commanded position
        elif fault in ("ignore-pwm-stop", "cp-short"):
            self._schedule_reaction()  # what the EV reads or how it behaves changed
        if fault == "link-loss":
            self._set_link(not active)
        else:
            self._refresh()

    def _set_link(self, up: bool) -> None:
        if up:
            self.link_up = True
            if self.started and self.sink is not None:
                self.sink(LinkChanged(True, t_ns=time.perf_counter_ns()))
            self._refresh(force_publish=True)  # the consumer missed everything while the link was down
            return
        if self.started and self.sink is not None:
            self.sink(LinkChanged(False, "sim: link-loss injected", t_ns=time.perf_counter_ns()))
        self.link_up = False
        self.power_allowed = False  # the MCU's keep-alive watchdog: go safe on its own
        self._refresh()

    def ev_action(self, action: str) -> None:
        if action not in EV_ACTIONS:
            raise ValueError(f"unknown EV action {action!r}; available: {', '.join(EV_ACTIONS)}")
        ev = self.ev
        if ev is None:
            raise ValueError(f"no EV is plugged into EVSE {self.evse_id}")
        self.integrate()
        if action == "pause":
            ev.paused = True
            ev.stop_requesting()
        elif action == "resume":
            ev.paused = False
            self._schedule_reaction()
        elif action in ("hlc-start", "hlc-stop"):
            ev.hlc_active = action == "hlc-start"
            self._schedule_reaction()
        else:
            ev.ventilation = action == "ventilation-on"
        self._refresh()

    # --- reporting ---------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        self.integrate()
        return {
            "evse": self.evse_id,
            "cp": self.cp_state().value,
            "pilot": str(self.pilot),
            "pilot_mode": self.pilot.mode.value,
            "duty_pct": self.pilot.duty_pct if self.pilot.mode is PilotMode.PWM else None,
            "power_allowed": self.power_allowed,
            "contactor": "closed" if self.contactor_closed else "open",
            "lock": self.lock_state().value,
            "rcd": "tripped" if self.rcd_latched else "ok",
            "link": "up" if self.link_up else "down",
            "started": self.started,
            "pp_a": self.pp_rating(),
            "errors": self.errors().names(),
            "power_w": round(self.power_w(), 1),
            "meter_wh": round(self.meter_wh, 3),
            "bay_occupied": self.bay_occupied if self.settings.bay_sensor else None,
            "ev": self.ev.as_dict(self.draw_a()) if self.ev else None,
            "faults": sorted(self.faults),
        }


_UNSET = object()
