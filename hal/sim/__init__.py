"""The simulator: charge ports with EVs, driven through the normal Board/Meter/TokenReader contracts.

`station sim ...` (via the control endpoint) plugs EVs in, presents tokens and injects faults.
"""
from hal.sim.ev import PROFILES, EVProfile
from hal.sim.port import EV_ACTIONS, FAULTS, SimPort
from hal.sim.world import SimWorld

__all__ = ["EV_ACTIONS", "EVProfile", "FAULTS", "PROFILES", "SimPort", "SimWorld"]
