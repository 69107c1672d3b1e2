"""Faults an EVSE latches: what raised them, how they clear, and how they are reported."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from hal.board import ErrorFlag


class Clears(enum.Enum):
    FLAG = "when the board stops reporting it"
    UNPLUG = "when the EV is unplugged"
    LINK = "when the board link is healthy and the power path is open"
    MANUAL = "by an operator reset (station reset / OCPP Reset), once the condition is gone"


@dataclass(frozen=True)
class FaultKind:
    code: str
    description: str
    clears: Clears
    #: ChargeX MREC code where one fits (EVerest uses the same list), for reporting.
    mrec: str | None = None


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    since: datetime
    detail: str = ""

    @property
    def code(self) -> str:
        return self.kind.code

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.kind.code,
            "description": self.kind.description + (f": {self.detail}" if self.detail else ""),
            "since": self.since.isoformat(),
            "clears": self.kind.clears.value,
            "mrec": self.kind.mrec,
        }


def _k(code: str, description: str, clears: Clears, mrec: str | None = None) -> FaultKind:
    return FaultKind(code, description, clears, mrec)


DIODE = _k("DiodeFault", "EV diode missing or shorted (PWM low level not -12 V)", Clears.UNPLUG)
CP_SHORTED = _k("CPShorted", "control pilot shorted to PE (state E)", Clears.FLAG)
CP_INVALID = _k("CPInvalid", "control pilot reading out of range or lost", Clears.FLAG)
RCD = _k("RCDTripped", "residual current device tripped", Clears.FLAG, "MREC2GroundFailure")
RCD_SELFTEST = _k("RCDSelfTestFailed", "RCD self-test failed", Clears.FLAG, "MREC2GroundFailure")
LOCK = _k("LockFault", "socket lock did not engage", Clears.UNPLUG, "MREC1ConnectorLockFailure")
CP_FAULT = _k("CPFault", "board reports a control-pilot fault", Clears.FLAG, "MREC14PilotFault")
PP_FAULT = _k("PPFault", "proximity pilot open or invalid", Clears.FLAG, "MREC23ProximityFault")
CONTACTOR = _k("ContactorFault", "contactor did not close when commanded", Clears.UNPLUG, "MREC17EVSEContactorFault")
WELDED = _k("ContactorWelded", "contactor still closed after an open command", Clears.MANUAL, "MREC17EVSEContactorFault")
VENTILATION = _k("VentilationFault", "ventilation required (state D) but not available", Clears.FLAG)
OVER_TEMP = _k("OverTemperature", "over-temperature", Clears.FLAG)
OVER_CURRENT = _k("OverCurrent", "EV drew more current than allowed", Clears.FLAG, "MREC4OverCurrentFailure")
EV_OVER_CURRENT = _k("EVOverCurrent", "EV drew more current than offered", Clears.UNPLUG, "MREC4OverCurrentFailure")
METER = _k("MeterFailure", "meter not answering, or repeating a stale reading", Clears.FLAG)
HEARTBEAT = _k("BoardHeartbeatTimeout", "board lost the controller's keep-alive and went safe", Clears.FLAG)
EMERGENCY_STOP = _k("EmergencyStop", "emergency stop pressed", Clears.FLAG, "MREC8EmergencyStop")
BOARD = _k("BoardFault", "board reports an internal fault", Clears.FLAG)
LINK_LOST = _k("BoardLinkLost", "no answer from the board", Clears.LINK)
INTERNAL = _k("InternalError", "exception in the EVSE task", Clears.MANUAL)

#: Board error flags and the fault each raises.
FLAG_FAULTS: dict[ErrorFlag, FaultKind] = {
    ErrorFlag.DIODE_FAULT: DIODE,
    ErrorFlag.RCD_TRIPPED: RCD,
    ErrorFlag.RCD_SELFTEST_FAILED: RCD_SELFTEST,
    ErrorFlag.LOCK_FAULT: LOCK,
    ErrorFlag.CP_FAULT: CP_FAULT,
    ErrorFlag.PP_FAULT: PP_FAULT,
    ErrorFlag.CONTACTOR_FAULT: CONTACTOR,
    ErrorFlag.CONTACTOR_WELDED: WELDED,
    ErrorFlag.VENTILATION_FAULT: VENTILATION,
    ErrorFlag.OVER_TEMPERATURE: OVER_TEMP,
    ErrorFlag.OVER_CURRENT: OVER_CURRENT,
    ErrorFlag.HEARTBEAT_TIMEOUT: HEARTBEAT,
    ErrorFlag.EMERGENCY_STOP: EMERGENCY_STOP,
    ErrorFlag.MCU_FAULT: BOARD,
}
