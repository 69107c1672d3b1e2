"""The session view of an EVSE that OCPP needs: connector status, charging state and events.

The EVSE state machine publishes these; consumers (OCPP client, control endpoint, logs) subscribe
and never reach into the state machine.
"""
from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from hal.meter import MeterReading


class ConnectorStatus(str, enum.Enum):
    """OCPP 2.0.1 ConnectorStatusEnumType."""

    AVAILABLE = "Available"
    OCCUPIED = "Occupied"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


class ChargingState(str, enum.Enum):
    """OCPP 2.0.1 ChargingStateEnumType."""

    IDLE = "Idle"
    EV_CONNECTED = "EVConnected"
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"


@dataclass
class Session:
    """One plug-in (or pre-authorization) to unplug. OCPP's transaction builds on it."""

    started: datetime
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    id_token: str | None = None
    token_type: str | None = None
    authorized_at: datetime | None = None
    energy_start_wh: float | None = None
    last_reading: MeterReading | None = None

    @property
    def energy_wh(self) -> float:
        if self.energy_start_wh is None or self.last_reading is None:
            return 0.0
        return max(0.0, self.last_reading.energy_import_wh - self.energy_start_wh)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "started": self.started.isoformat(),
            "id_token": self.id_token,
            "token_type": self.token_type,
            "authorized": self.authorized_at is not None,
            "energy_wh": round(self.energy_wh, 1),
        }


# --- events ------------------------------------------------------------------------------

@dataclass(frozen=True)
class EvseEvent:
    evse_id: int
    timestamp: datetime

    @property
    def name(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"event": self.name}
        for f in fields(self):
            value = getattr(self, f.name)
            data[f.name] = value.isoformat() if isinstance(value, datetime) else value
        return data


@dataclass(frozen=True)
class IecStateChanged(EvseEvent):
    old: str
    new: str
    cause: str


@dataclass(frozen=True)
class BayOccupied(EvseEvent):
    """The board's parking bay sensor sees a car (only boards with has_bay_sensor)."""


@dataclass(frozen=True)
class BayFreed(EvseEvent):
    pass


@dataclass(frozen=True)
class EVConnected(EvseEvent):
    session_id: str


@dataclass(frozen=True)
class EVDisconnected(EvseEvent):
    session_id: str
    energy_wh: float


@dataclass(frozen=True)
class Authorized(EvseEvent):
    session_id: str
    id_token: str | None
    token_type: str | None


@dataclass(frozen=True)
class Deauthorized(EvseEvent):
    session_id: str
    reason: str


@dataclass(frozen=True)
class PowerPathClosed(EvseEvent):
    pass


@dataclass(frozen=True)
class PowerPathOpened(EvseEvent):
    pass


@dataclass(frozen=True)
class EnergyTransferStarted(EvseEvent):
    pass


@dataclass(frozen=True)
class EnergyTransferStopped(EvseEvent):
    reason: str


@dataclass(frozen=True)
class ConnectorStatusChanged(EvseEvent):
    connector_id: int
    status: str


@dataclass(frozen=True)
class ChargingStateChanged(EvseEvent):
    state: str


@dataclass(frozen=True)
class FaultRaised(EvseEvent):
    fault: dict[str, Any]


@dataclass(frozen=True)
class FaultCleared(EvseEvent):
    fault: dict[str, Any]


@dataclass(frozen=True)
class MeterUpdated(EvseEvent):
    energy_wh: float
    power_w: float
    current_a: tuple[float, ...]


def describe(event: EvseEvent) -> str | None:
    """One line for the log, or None for events logged elsewhere (state changes, faults, meter)."""
    match event:
        case BayOccupied():
            return "parking bay occupied"
        case BayFreed():
            return "parking bay free"
        case EVConnected(session_id=sid):
            return f"EV connected (session {sid[:8]})"
        case EVDisconnected(session_id=sid, energy_wh=wh):
            return f"EV disconnected (session {sid[:8]}, {wh:.1f} Wh)"
        case Authorized(id_token=token, token_type=kind):
            return f"authorized: {token or '-'} ({kind})"
        case Deauthorized(reason=reason):
            return f"authorization ended: {reason}"
        case PowerPathClosed():
            return "contactor closed"
        case PowerPathOpened():
            return "contactor open"
        case EnergyTransferStarted():
            return "energy transfer started"
        case EnergyTransferStopped(reason=reason):
            return f"energy transfer stopped ({reason})"
        case ConnectorStatusChanged(connector_id=cid, status=status):
            return f"connector {cid}: {status}"
        case ChargingStateChanged(state=state):
            return f"charging state: {state}"
    return None
