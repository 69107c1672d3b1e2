"""The board contract: what the station needs from a charger's control/safety board.

One Board object serves one EVSE. A board with two charge ports exposes two Board objects
(a driver setting selects the channel) sharing one link. The board never closes a contactor
unless the controller has allowed power on; the controller never relies on itself alone to
open one (the board's MCU owns hard safety), but it reacts within IEC 61851's bounds.

Inputs arrive as BoardEvents on `events()`; the latest value of every input is also kept in
`inputs` so a consumer that starts late, or a status query, sees the present state.
"""
from __future__ import annotations

import asyncio
import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import AsyncIterator, Callable, ClassVar

from pydantic.v1 import BaseModel

from hal.driver import DriverContext


class CPState(str, enum.Enum):
    """Control-pilot state as measured on the CP high level (IEC 61851-1 Table A.3)."""

    A = "A"  # +12 V: no vehicle
    B = "B"  # +9 V: vehicle connected, not ready
    C = "C"  # +6 V: vehicle requests charge
    D = "D"  # +3 V: charge with ventilation
    E = "E"  # 0 V: CP shorted to PE or EVSE unpowered
    F = "F"  # -12 V: EVSE not available (we drive it)
    INVALID = "INVALID"  # out-of-range reading or CP measurement lost


class PilotMode(str, enum.Enum):
    X1 = "X1"  # steady +12 V, no oscillator
    PWM = "PWM"  # 1 kHz oscillator at `duty_pct` (x2)
    F = "F"  # steady -12 V: EVSE not available


@dataclass(frozen=True)
class PilotCommand:
    mode: PilotMode
    duty_pct: float = 0.0  # only meaningful for PWM

    @staticmethod
    def x1() -> "PilotCommand":
        return PilotCommand(PilotMode.X1)

    @staticmethod
    def f() -> "PilotCommand":
        return PilotCommand(PilotMode.F)

    @staticmethod
    def pwm(duty_pct: float) -> "PilotCommand":
        if not 0.0 < duty_pct < 100.0:
            raise ValueError(f"PWM duty must be in (0, 100) %, got {duty_pct}")
        return PilotCommand(PilotMode.PWM, duty_pct)

    def __str__(self) -> str:
        return f"PWM {self.duty_pct:.2f}%" if self.mode is PilotMode.PWM else self.mode.value


class ErrorFlag(enum.Flag):
    """Error conditions a board reports; several may be set at once."""

    NONE = 0
    DIODE_FAULT = enum.auto()  # PWM low level not ~-12 V: EV diode missing or shorted
    RCD_TRIPPED = enum.auto()
    RCD_SELFTEST_FAILED = enum.auto()
    LOCK_FAULT = enum.auto()
    CP_FAULT = enum.auto()
    PP_FAULT = enum.auto()
    CONTACTOR_FAULT = enum.auto()  # did not close when commanded
    CONTACTOR_WELDED = enum.auto()  # feedback says closed after an open command
    VENTILATION_FAULT = enum.auto()
    OVER_TEMPERATURE = enum.auto()
    OVER_CURRENT = enum.auto()
    HEARTBEAT_TIMEOUT = enum.auto()  # the MCU lost our keep-alive and went safe
    EMERGENCY_STOP = enum.auto()
    MCU_FAULT = enum.auto()

    def names(self) -> list[str]:
        return [f.name for f in ErrorFlag if f and f in self and f.name]


class LockState(str, enum.Enum):
    UNLOCKED = "unlocked"
    LOCKED = "locked"
    FAULT = "fault"


@dataclass(frozen=True)
class BoardCapabilities:
    min_current_a: float = 6.0
    max_current_a: float = 32.0
    phases: int = 3
    supports_lock: bool = True
    supports_rcd_test: bool = True
    supports_phase_switch: bool = False
    supports_ventilation: bool = False
    has_pp: bool = True  # socket with proximity pilot (cable rating read from PP)
    #: The board's firmware closes its relay by itself when the EV requests (C) while PWM is offered
    #: (OpenEVSE): offering PWM implies permission; allow_power_on(False) still cuts at once.
    relay_follows_pilot: bool = False
    #: A parking bay sensor is wired to the board (BayChanged events; OCPP TxStartPoint ParkingBayOccupancy).
    has_bay_sensor: bool = False


@dataclass(frozen=True)
class Telemetry:
    cp_high_v: float | None = None
    cp_low_v: float | None = None
    temperatures_c: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BoardInputs:
    """Latest known value of every board input."""

    cp: CPState = CPState.A
    contactor_closed: bool = False
    pp_rating_a: float | None = None  # None: no cable detected / not a socket
    errors: ErrorFlag = ErrorFlag.NONE
    lock: LockState = LockState.UNLOCKED
    telemetry: Telemetry = field(default_factory=Telemetry)
    link_up: bool = False
    bay_occupied: bool = False  # only meaningful with capabilities.has_bay_sensor


# --- events -----------------------------------------------------------------------------

@dataclass(frozen=True)
class BoardEvent:
    """Base of everything a board reports. `t_ns` is perf_counter_ns at emission (latency probes)."""

    t_ns: int = field(default=0, kw_only=True, compare=False)


@dataclass(frozen=True)
class CPChanged(BoardEvent):
    state: CPState


@dataclass(frozen=True)
class ContactorChanged(BoardEvent):
    closed: bool


@dataclass(frozen=True)
class PPChanged(BoardEvent):
    rating_a: float | None


@dataclass(frozen=True)
class ErrorsChanged(BoardEvent):
    errors: ErrorFlag


@dataclass(frozen=True)
class LockChanged(BoardEvent):
    state: LockState


@dataclass(frozen=True)
class TelemetryUpdated(BoardEvent):
    telemetry: Telemetry


@dataclass(frozen=True)
class BayChanged(BoardEvent):
    occupied: bool


@dataclass(frozen=True)
class LinkChanged(BoardEvent):
    up: bool
    reason: str = ""


class Board(ABC):
    """A charger board driver. Subclasses implement the commands and call `_emit` for inputs."""

    #: pydantic model of the driver's settings in the station config ([evse.board] table).
    Settings: ClassVar[type[BaseModel]]

    def __init__(self, settings: BaseModel, context: DriverContext) -> None:
        self.settings = settings
        self.context = context
        self._inputs = BoardInputs()
        self._queue: asyncio.Queue[BoardEvent] = asyncio.Queue()
        self._sink: Callable[[BoardEvent], None] | None = None

    # --- lifecycle ---
    @abstractmethod
    async def start(self) -> None:
        """Open the link; emit LinkChanged(up=True) and the initial inputs once the board answers."""

    @abstractmethod
    async def stop(self) -> None:
        """Leave the board safe (power not allowed, pilot F) and close the link."""

    # --- commands ---
    @abstractmethod
    async def set_pilot(self, command: PilotCommand) -> None: ...

    @abstractmethod
    async def allow_power_on(self, allowed: bool) -> None:
        """Grant or withdraw permission to close the power path. False must act at once."""

    @abstractmethod
    async def set_lock(self, locked: bool) -> None: ...

    @abstractmethod
    async def rcd_self_test(self) -> None: ...

    @abstractmethod
    async def rcd_reset(self) -> None: ...

    async def set_phases(self, phases: int) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot switch phases")

    @property
    @abstractmethod
    def capabilities(self) -> BoardCapabilities: ...

    # --- inputs ---
    @property
    def inputs(self) -> BoardInputs:
        return self._inputs

    def set_sink(self, sink: Callable[[BoardEvent], None] | None) -> None:
        """Hand every event to `sink` as it is emitted (in the event loop) instead of queueing it for
        `events()`: one task switch less between a CP change and the reaction to it. Events queued
        before the sink was set are handed over first; None goes back to queueing."""
        self._sink = sink
        while sink is not None and not self._queue.empty():
            sink(self._queue.get_nowait())

    async def events(self) -> AsyncIterator[BoardEvent]:
        while True:
            yield await self._queue.get()

    def next_event_nowait(self) -> BoardEvent | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def _emit(self, event: BoardEvent) -> None:
        """Record an input change and queue it for the consumer. Call from the event loop."""
        inputs = self._inputs
        match event:
            case CPChanged(state=s):
                inputs = replace(inputs, cp=s)
            case ContactorChanged(closed=c):
                inputs = replace(inputs, contactor_closed=c)
            case PPChanged(rating_a=r):
                inputs = replace(inputs, pp_rating_a=r)
            case ErrorsChanged(errors=e):
                inputs = replace(inputs, errors=e)
            case LockChanged(state=s):
                inputs = replace(inputs, lock=s)
            case TelemetryUpdated(telemetry=t):
                inputs = replace(inputs, telemetry=t)
            case LinkChanged(up=u):
                inputs = replace(inputs, link_up=u)
            case BayChanged(occupied=o):
                inputs = replace(inputs, bay_occupied=o)
        self._inputs = inputs
        if self._sink is not None:
            self._sink(event)
        else:
            self._queue.put_nowait(event)
