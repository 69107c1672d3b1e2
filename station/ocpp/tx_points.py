"""TxStartPoint / TxStopPoint (E01, E06): which conditions hold after an EVSE event, and the triggerReason /
stoppedReason for each cause. Pure data and small functions.

The points are conditions, not hardware events (OCPP 2.0.1 part 2, TxStartPoint values):
- EVConnected: the cable is in at both ends.
- ParkingBayOccupancy: the board's bay sensor sees a car (BoardCapabilities.has_bay_sensor); without a
  sensor an EV at the connector is the bay occupied (it holds and ends with EVConnected).
- Authorized: a token (or a remote start, or free vend) authorized the session.
- PowerPathClosed: every precondition for charging is met, the logical AND of EVConnected and Authorized;
  not the contactor, so a suspended session (EV or EVSE pauses, contactor open) keeps its transaction.
- EnergyTransfer: energy flows.
- DataSigned: the meter delivered the signed start value of the session (asked for when PowerPathClosed
  starts to hold, SampledDataCtrlr.SignReadings); it ends with PowerPathClosed, when the meter is asked for
  the signed end value.
"""
from __future__ import annotations

from station.session import (Authorized, BayFreed, BayOccupied, Deauthorized, EnergyTransferStarted,
                             EnergyTransferStopped, EVConnected, EVDisconnected, EvseEvent)

ALL = ("ParkingBayOccupancy", "EVConnected", "Authorized", "DataSigned", "PowerPathClosed", "EnergyTransfer")

#: Event -> conditions it makes hold / stop holding directly (PowerPathClosed and DataSigned are derived).
GAINED: dict[type, tuple[str, ...]] = {EVConnected: ("EVConnected",), Authorized: ("Authorized",),
                                       EnergyTransferStarted: ("EnergyTransfer",), BayOccupied: ("ParkingBayOccupancy",)}
LOST: dict[type, tuple[str, ...]] = {EVDisconnected: ("EVConnected", "Authorized", "EnergyTransfer"),
                                     Deauthorized: ("Authorized",), EnergyTransferStopped: ("EnergyTransfer",),
                                     BayFreed: ("ParkingBayOccupancy",)}

#: triggerReason of a Started event, by the event that made the first start point hold.
START_TRIGGER: dict[type, str] = {EVConnected: "CablePluggedIn", Authorized: "Authorized",
                                  EnergyTransferStarted: "ChargingStateChanged", BayOccupied: "EVDetected"}
SIGNED_TRIGGER = "SignedDataReceived"

#: Evse.deauthorize(reason) -> (triggerReason, stoppedReason).
DEAUTHORIZED: dict[str, tuple[str, str]] = {
    "StopAuthorized": ("StopAuthorized", "Local"),
    "Local": ("StopAuthorized", "Local"),
    "Remote": ("RemoteStop", "Remote"),
    "EVConnectTimeout": ("EVConnectTimeout", "Timeout"),
    "ImmediateReset": ("ResetCommand", "ImmediateReset"),
    "DeAuthorized": ("Deauthorized", "DeAuthorized"),
    "MasterPass": ("StopAuthorized", "MasterPass"),
}


def parse(value: str | None) -> set[str]:
    return {p.strip() for p in (value or "").split(",") if p.strip()}


def after(holds: set[str], event: EvseEvent | None, signed: bool = False, bay_sensor: bool = False) -> set[str]:
    """The conditions that hold after `event` (None with signed: the meter's signed start value arrived)."""
    now = set(holds) | set(GAINED.get(type(event), ()))
    now -= set(LOST.get(type(event), ()))
    if not bay_sensor:
        now.discard("ParkingBayOccupancy")
        if "EVConnected" in now:
            now.add("ParkingBayOccupancy")
    if {"EVConnected", "Authorized"} <= now:
        now.add("PowerPathClosed")
        if signed:
            now.add("DataSigned")
    else:
        now -= {"PowerPathClosed", "DataSigned"}
    return now


def ending(event: EvseEvent, cause: tuple[str, str] | None) -> tuple[str, str]:
    """(triggerReason, stoppedReason) for a point lost through `event`; an earlier cause (a token stop,
    a remote stop, a fault) names the reason when the transaction ends later, at the unplug."""
    if isinstance(event, Deauthorized):
        return DEAUTHORIZED.get(event.reason, ("StopAuthorized", "Local"))
    if isinstance(event, EVDisconnected):
        return "EVCommunicationLost", cause[1] if cause else "EVDisconnected"
    if isinstance(event, BayFreed):
        return "EVDeparted", cause[1] if cause else "EVDisconnected"
    if cause is not None:
        return "ChargingStateChanged", cause[1]
    return "ChargingStateChanged", "StoppedByEV" if isinstance(event, EnergyTransferStopped) else "Other"
