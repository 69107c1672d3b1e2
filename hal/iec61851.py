"""IEC 61851-1 arithmetic: duty cycle <-> current, cable ratings.

Pure functions, no state. In hal/ because both sides of the pilot use them: the station's EVSE state
machine (what duty to emit) and the simulator's EV and boards (what a duty allows).
"""
from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from math import floor

MIN_CURRENT_A = 6.0
MAX_CURRENT_A = 80.0
HLC_DUTY_PCT = 5.0  # "use digital communication" (ISO 15118 / DIN 70121)
_DUTY_RESOLUTION = 100  # boards take duty in 0.01 % steps


@lru_cache(maxsize=1024)
def duty_for_current(amps: float) -> float | None:
    """Duty cycle (%) that offers at most `amps`; None below 6 A (no charging allowed).

    6..51 A: I / 0.6; above 51 A: I / 2.5 + 64 (but not below 85 %, which the EV reads as 51 A).
    Rounded down to 0.01 %: the EV may draw what the duty says, so never offer more than allowed.
    Exact rational arithmetic so 63 A gives 89.20 % and not 89.19 % from float error.
    """
    if amps < MIN_CURRENT_A:
        return None
    i = Fraction(str(min(float(amps), MAX_CURRENT_A)))
    if i <= 51:
        duty = i / Fraction(6, 10)
    else:
        duty = max(Fraction(85), i / Fraction(5, 2) + 64)
    return floor(duty * _DUTY_RESOLUTION) / _DUTY_RESOLUTION


def current_for_duty(duty_pct: float) -> float:
    """Current (A) an EV may draw at `duty_pct` (IEC 61851-1 Table A.8, EV side); 0 if none."""
    if 8.0 <= duty_pct < 10.0:
        return 6.0
    if 10.0 <= duty_pct <= 85.0:
        return duty_pct * 0.6
    if 85.0 < duty_pct <= 96.5:
        return min((duty_pct - 64.0) * 2.5, MAX_CURRENT_A)
    return 0.0


#: Cable ratings a Type 2 proximity-pilot resistor can code (70 A: single-phase 100 ohm coding).
CABLE_RATINGS_A = (13.0, 20.0, 32.0, 63.0, 70.0)
