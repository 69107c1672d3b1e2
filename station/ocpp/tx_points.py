"""TxStartPoint / TxStopPoint (E01, E06): which EVSE event makes a point hold or stop holding, and the
triggerReason / stoppedReason for each cause. Pure data and small functions."""
from __future__ import annotations

from station.session import (Authorized, Deauthorized, EnergyTransferStarted, EnergyTransferStopped, EVConnected,
                             EVDisconnected, EvseEvent, PowerPathClosed, PowerPathOpened)

#: ParkingBayOccupancy has no detector here: an EV at the connector is the bay occupied. DataSigned
#: (the meter signed the start value) is not tracked separately: the Started event carries the signed value.
ALL = ("ParkingBayOccupancy", "EVConnected", "Authorized", "DataSigned", "PowerPathClosed", "EnergyTransfer")

GAINED: dict[type, str] = {EVConnected: "EVConnected", Authorized: "Authorized", PowerPathClosed: "PowerPathClosed",
                           EnergyTransferStarted: "EnergyTransfer"}
LOST: dict[type, str] = {EVDisconnected: "EVConnected", Deauthorized: "Authorized",
                         PowerPathOpened: "PowerPathClosed", EnergyTransferStopped: "EnergyTransfer"}

START_TRIGGER = {"EVConnected": "CablePluggedIn", "Authorized": "Authorized",
                 "PowerPathClosed": "ChargingStateChanged", "EnergyTransfer": "ChargingStateChanged"}

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
    points = {p.strip() for p in (value or "").split(",") if p.strip()}
    if "ParkingBayOccupancy" in points:
        points.add("EVConnected")
    return points


def ending(event: EvseEvent, cause: tuple[str, str] | None) -> tuple[str, str]:
    """(triggerReason, stoppedReason) for a point lost through `event`; an earlier cause (a token stop,
    a remote stop, a fault) names the reason when the transaction ends later, at the unplug."""
    if isinstance(event, Deauthorized):
        return DEAUTHORIZED.get(event.reason, ("StopAuthorized", "Local"))
    if isinstance(event, EVDisconnected):
        return "EVCommunicationLost", cause[1] if cause else "EVDisconnected"
    if cause is not None:
        return "ChargingStateChanged", cause[1]
    return "ChargingStateChanged", "StoppedByEV" if isinstance(event, EnergyTransferStopped) else "Other"
