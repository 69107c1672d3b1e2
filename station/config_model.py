"""Shape of the station config file (TOML). Loading and error reporting live in station.config.

PYDANTIC API: the iso15118 package pins pydantic==1.10.21, so all our models use the `pydantic.v1`
API (`from pydantic.v1 import BaseModel, Field, validator`), which works unchanged under pydantic
1.10.17+ and 2.x. Do not use v2-only API (ConfigDict, model_validate, field_validator).

Driver tables ([evse.board], [evse.meter], [token_reader]) carry `driver = "name"` plus that
driver's own settings, validated against the driver class's `Settings` model at load time.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Literal, Optional

from pydantic.v1 import BaseModel, Extra, Field

from station.iso15118.config import Iso15118Config
from station.ocpp.config import OcppConfig


class Strict(BaseModel):
    class Config:
        extra = Extra.forbid
        allow_mutation = False


class StationInfo(Strict):
    id: str = Field(min_length=1, max_length=48, regex=r"^[A-Za-z0-9._:-]+$")  # OCPP identity
    vendor: str = Field(min_length=1, max_length=50)
    model: str = Field(min_length=1, max_length=20)
    serial_number: Optional[str] = Field(default=None, max_length=25)
    state_dir: Optional[Path] = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"


class ControlConfig(Strict):
    #: Unix socket of the local control endpoint (status, sim commands).
    socket: Optional[Path] = None


class LimitsConfig(Strict):
    #: Site/grid connection limit per phase, shared by all EVSEs (None: no site limit).
    site_max_current_a: Optional[float] = Field(default=None, gt=0, le=1000)


class AuthorizationConfig(Strict):
    #: free: every plug-in charges (no token). local: tokens listed here (until OCPP decides).
    mode: Literal["free", "local"] = "free"
    tokens: List[str] = Field(default_factory=list)


class Iec61851Config(Strict):
    """Timing constants (seconds). Defaults follow ../shared/reference/iec61851.md."""

    contactor_open_max_s: float = Field(default=0.1, gt=0, le=0.1)
    contactor_close_max_s: float = Field(default=3.0, gt=0, le=3.0)
    contactor_feedback_timeout_s: float = Field(default=1.0, gt=0, le=5.0)
    pwm_stop_force_off_s: float = Field(default=6.0, gt=0, le=6.0)
    fault_f_min_s: float = Field(default=0.3, ge=0.3, le=10.0)
    unlock_after_f_s: float = Field(default=5.0, ge=0, le=60.0)
    legacy_wakeup_after_s: float = Field(default=30.0, ge=0, le=600.0)  # 0 disables
    legacy_wakeup_f_s: float = Field(default=4.0, gt=0, le=10.0)
    pwm_min_change_interval_s: float = Field(default=5.0, ge=0, le=60.0)
    lock_timeout_s: float = Field(default=2.0, gt=0, le=10.0)
    overcurrent_grace_s: float = Field(default=7.0, gt=0, le=60.0)
    overcurrent_margin_a: float = Field(default=2.0, ge=0.5, le=10.0)


class DriverConfig(BaseModel):
    """`driver = "name"` plus the driver's settings (kept raw until validated against the driver)."""

    driver: str

    class Config:
        extra = Extra.allow
        allow_mutation = False

    def driver_settings(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "driver"}


ConnectorType = Literal[
    "cType2", "sType2", "cType1", "cCCS1", "cCCS2", "cG105", "cTesla", "sType3", "s309-1P-16A",
    "s309-3P-16A", "s309-1P-32A", "s309-3P-32A", "sBS1361", "sCEE-7-7", "cChaoJi", "cGBT", "Other1PhMax16A",
    "Other3Ph", "Pan", "wInductive", "wResonant", "Undetermined", "Unknown",
]


class ConnectorConfig(Strict):
    id: int = Field(ge=1, le=10)
    type: ConnectorType = "sType2"
    #: Socket with a lock actuator: locked in B/C/D, unlocked in A.
    lock: bool = False


class EvseConfig(Strict):
    id: int = Field(ge=1, le=100)
    kind: Literal["ac", "dc"] = "ac"
    max_current_a: float = Field(default=32.0, ge=6, le=80)  # AC per-phase rating
    phases: Literal[1, 3] = 3
    #: Offer high-level communication (5 % PWM, ISO 15118 / DIN 70121). DC EVSEs need it.
    hlc: bool = False
    #: State D (ventilation requested) allowed to charge.
    ventilation: bool = False
    board: DriverConfig
    meter: Optional[DriverConfig] = None
    connectors: List[ConnectorConfig] = Field(alias="connector", min_items=1)
    #: `[evse.iso15118]`: SLAC + ISO 15118 / DIN 70121 SECC (station/iso15118/config.py). Needs hlc = true.
    iso15118: Optional[Iso15118Config] = None

    class Config(Strict.Config):
        allow_population_by_field_name = True


class StationConfig(Strict):
    station: StationInfo
    control: ControlConfig = ControlConfig()
    limits: LimitsConfig = LimitsConfig()
    authorization: AuthorizationConfig = AuthorizationConfig()
    iec61851: Iec61851Config = Iec61851Config()
    token_reader: DriverConfig = DriverConfig(driver="none")
    #: The meter at the grid connection (all EVSEs behind it): OCPP evseId 0 meter values.
    grid_meter: Optional[DriverConfig] = None
    evses: List[EvseConfig] = Field(alias="evse", min_items=1)
    ocpp: Optional[OcppConfig] = None

    class Config(Strict.Config):
        allow_population_by_field_name = True
