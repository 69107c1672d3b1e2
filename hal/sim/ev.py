"""Simulated vehicles: named EV profiles and what an EV reads from the control pilot."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic.v1 import BaseModel, Extra, Field, ValidationError

from hal.board import PilotCommand, PilotMode
from hal.iec61851 import current_for_duty

#: Smallest current an EV may charge with in basic (PWM) charging.
MIN_CHARGE_CURRENT_A = 6.0


class EVProfile(BaseModel):
    """What a simulated vehicle is. Plug-in options may override any field except the name."""

    class Config:
        extra = Extra.forbid
        frozen = True

    name: str
    kind: Literal["ac", "dc"] = "ac"
    phases: Literal[1, 2, 3] = 3
    max_current_a: float = Field(default=16.0, gt=0, le=500)
    battery_wh: float = Field(default=60_000.0, gt=0, le=500_000)
    soc_start: float = Field(default=20.0, ge=0, le=100)
    soc_target: float = Field(default=80.0, ge=0, le=100)
    #: Wants high-level communication (ISO 15118 / DIN 70121); waits at 5 % duty.
    hlc: bool = False
    #: How long the EV takes to notice a pilot change and act on it (IEC 61851 allows up to seconds).
    reaction_s: float = Field(default=0.2, ge=0, le=60)
    #: Requests charging with ventilation (state D instead of C).
    wants_ventilation: bool = False

    def with_options(self, options: dict[str, Any]) -> "EVProfile":
        """This profile with some fields overridden; ValueError names the bad option."""
        allowed = sorted(set(EVProfile.__fields__) - {"name"})
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ValueError(f"unknown plug option(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
        for key, value in options.items():
            # pydantic v1 would coerce "42" or true into a number; an option of the wrong type is a mistake.
            default = EVProfile.__fields__[key].default
            expected = (int, float) if isinstance(default, (int, float)) and not isinstance(default, bool) else type(default)
            if isinstance(value, bool) != isinstance(default, bool) or not isinstance(value, expected):
                raise ValueError(f"invalid plug option {key}={value!r}: expected {type(default).__name__}")
        try:
            return EVProfile.parse_obj({**self.dict(), **options})
        except ValidationError as exc:
            problems = "; ".join(
                f"{err['loc'][0]}={options.get(str(err['loc'][0]))!r}: {err['msg']}" for err in exc.errors()
            )
            raise ValueError(f"invalid plug option {problems}") from None


PROFILES: dict[str, EVProfile] = {
    p.name: p
    for p in (
        EVProfile(name="ac-3ph-16a", phases=3, max_current_a=16, battery_wh=60_000),
        EVProfile(name="ac-3ph-32a", phases=3, max_current_a=32, battery_wh=80_000),
        EVProfile(name="ac-1ph-16a", phases=1, max_current_a=16, battery_wh=12_000, soc_start=10),
        EVProfile(name="ac-1ph-32a", phases=1, max_current_a=32, battery_wh=40_000),
        EVProfile(name="ac-3ph-16a-vent", phases=3, max_current_a=16, battery_wh=60_000, wants_ventilation=True),
        # DC vehicles talk ISO 15118 before any energy flows: at 5 % they close S2 and wait for the SECC
        # (the simulated EV's SLAC + EVCC run over a veth pair: scripts/sim_hlc_ev.py).
        EVProfile(name="dc-ccs", kind="dc", phases=3, max_current_a=200, battery_wh=77_000, hlc=True, soc_start=15),
        # AC vehicle that prefers ISO 15118-2 at 5 % and charges with the PWM current after a fallback.
        EVProfile(name="ac-3ph-16a-hlc", phases=3, max_current_a=16, battery_wh=60_000, hlc=True),
    )
}

DEFAULT_PROFILE = "ac-3ph-16a"


def profile(name: str) -> EVProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown EV profile {name!r}; available: {', '.join(PROFILES)}") from None


@dataclass(frozen=True)
class PilotReading:
    """What the EV makes of the pilot: the current it may draw and whether HLC is requested."""

    allowed_a: float
    hlc: bool = False


def read_pilot(pilot: PilotCommand) -> PilotReading:
    """The EV side of IEC 61851-1 Table A.8: duty cycle -> maximum current."""
    if pilot.mode is not PilotMode.PWM:
        return PilotReading(0.0)
    duty = pilot.duty_pct
    if 3.0 <= duty <= 7.0:
        return PilotReading(0.0, hlc=True)  # "use digital communication"; no basic charging
    return PilotReading(current_for_duty(duty))  # 0 outside the table: charging not allowed


class EVState:
    """A plugged-in vehicle: its profile, the S2 switch and its battery."""

    def __init__(self, profile: EVProfile) -> None:
        self.profile = profile
        self.s2_closed = False
        self.paused = False
        self.ventilation = profile.wants_ventilation
        #: The EV's HLC layer wants state C (set when its SLAC/ISO 15118 session is up).
        self.hlc_active = False
        #: Current per phase the EV aims to draw whenever the power path is closed.
        self.setpoint_a = 0.0
        self.energy_wh = 0.0
        self.soc = profile.soc_start

    @property
    def full(self) -> bool:
        return self.soc >= self.profile.soc_target

    def decide(self, reading: PilotReading, ignore_pwm_stop: bool) -> None:
        """Act on the pilot as read `reaction_s` ago: close S2 to request charge, or open it."""
        p = self.profile
        allowed = reading.allowed_a if p.kind == "ac" else 0.0  # DC draws only what the power supply gives
        if reading.hlc and p.hlc and self.hlc_active and not self.full and not self.paused:
            # HLC session up (`sim.ev hlc-start`): S2 closed; the EVSE closes the contactor only
            # when the session allows it (cable check / PowerDelivery).
            self.s2_closed = True
            self.setpoint_a = p.max_current_a if p.kind == "ac" else 0.0
        elif allowed >= MIN_CHARGE_CURRENT_A and not self.full and not self.paused:
            self.s2_closed = True
            self.setpoint_a = min(p.max_current_a, allowed)
        elif ignore_pwm_stop and self.s2_closed and not self.full and not self.paused:
            pass  # a misbehaving EV: keeps requesting and drawing its last current
        else:
            self.s2_closed = False
            self.setpoint_a = 0.0

    def stop_requesting(self) -> None:
        self.s2_closed = False
        self.setpoint_a = 0.0

    def add_energy(self, wh: float) -> None:
        self.energy_wh += wh
        self.soc = min(100.0, self.soc + wh / self.profile.battery_wh * 100.0)

    def as_dict(self, draw_a: float) -> dict[str, Any]:
        return {
            "profile": self.profile.name,
            "kind": self.profile.kind,
            "phases": self.profile.phases,
            "s2": "closed" if self.s2_closed else "open",
            "paused": self.paused,
            "ventilation": self.ventilation,
            "setpoint_a": round(self.setpoint_a, 3),
            "draw_a": round(draw_a, 3),
            "energy_wh": round(self.energy_wh, 3),
            "soc": round(self.soc, 3),
            "soc_target": self.profile.soc_target,
            "hlc_active": self.hlc_active,
        }
