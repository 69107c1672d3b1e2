"""EVSE side of SLAC (ISO 15118-3 Annex A): match the plugged-in EV's PLC modem to ours."""
from station.slac.evse import MatchResult, SlacTimers, SlacMatcher

__all__ = ["MatchResult", "SlacTimers", "SlacMatcher"]
