"""The session view of an Evse (connector status, charging state, status snapshot), as a mixin:
derived from the state machine's state and inputs, never stored, published only on change."""
from __future__ import annotations

from typing import Any

from station.session import ChargingState, ChargingStateChanged, ConnectorStatus, ConnectorStatusChanged

CONNECTED = {"B1", "B2", "C1", "C2", "D1", "D2"}


class EvseViewMixin:
    @property
    def connector_status(self) -> ConnectorStatus:
        if self.state in ("Faulted", "E"):
            return ConnectorStatus.FAULTED
        if self.state == "F":
            return ConnectorStatus.UNAVAILABLE
        if self.ev_present or self.state in CONNECTED:
            return ConnectorStatus.OCCUPIED
        if self.reserved:
            return ConnectorStatus.RESERVED
        return ConnectorStatus.AVAILABLE

    @property
    def charging_state(self) -> ChargingState:
        if not self.ev_present:
            return ChargingState.IDLE
        if self.state in ("C2", "D2") and self._applied is not None and self._applied.power:
            # Power granted: Charging, unless a meter reading since the contactor closed shows the EV
            # taking nothing (the contactor's own delay is not a state worth reporting).
            if self._reading_after_close and not self.energy_transfer:
                return ChargingState.SUSPENDED_EV
            return ChargingState.CHARGING
        if self.state == "B2":
            return ChargingState.SUSPENDED_EV
        return ChargingState.SUSPENDED_EVSE if self.authorized else ChargingState.EV_CONNECTED

    def connector_statuses(self) -> dict[int, ConnectorStatus]:
        """One CP per EVSE: the first connector carries the EVSE's status; while it is in use the
        others are Unavailable (OCPP: one connector of an EVSE at a time)."""
        status = self.connector_status
        result = {}
        for i, connector in enumerate(self.config.connectors):
            busy_elsewhere = i > 0 and status is ConnectorStatus.OCCUPIED
            result[connector.id] = ConnectorStatus.UNAVAILABLE if busy_elsewhere else status
        return result

    def _publish_views(self) -> None:
        status = self.connector_status
        if status is not self._connector_status:
            self._connector_status = status
            for connector_id, connector_status in self.connector_statuses().items():
                self._emit(ConnectorStatusChanged(self.id, self.clock.wall(), connector_id, connector_status.value))
        charging = self.charging_state
        if charging is not self._charging_state:
            self._charging_state = charging
            self._emit(ChargingStateChanged(self.id, self.clock.wall(), charging.value))

    def snapshot(self) -> dict[str, Any]:
        inputs = self.board.inputs
        reading = self.last_reading
        pilot = self._applied.pilot if self._applied else None
        return {
            "id": self.id,
            "state": self.state,
            "connector_status": self.connector_status.value,
            "connectors": {str(k): v.value for k, v in self.connector_statuses().items()},
            "charging_state": self.charging_state.value,
            "cp": inputs.cp.value,
            "pilot": str(pilot) if pilot else None,
            "power_allowed": bool(self._applied and self._applied.power),
            "contactor_closed": inputs.contactor_closed,
            "lock": inputs.lock.value,
            "pp_rating_a": inputs.pp_rating_a,
            "link_up": inputs.link_up,
            "bay_occupied": inputs.bay_occupied if self.board.capabilities.has_bay_sensor else None,
            "enabled": self.enabled,
            "current_limit_a": self.limiter.value,
            "limit_sources": self.limiter.sources,
            "authorized": self.authorized,
            "hlc": self.hlc,
            "faults": [f.to_dict() for f in self.faults.active()],
            "session": self.session.to_dict() if self.session else None,
            "energy_wh": round(reading.energy_import_wh, 1) if reading else None,
            "power_w": round(reading.power_w, 1) if reading else None,
        }

