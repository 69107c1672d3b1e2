"""Per-EVSE ISO 15118 / DIN 70121 configuration: `[evse.iso15118]` in the station TOML.

Driver tables inside it (`plc_modem`, `power_supply`, `isolation_monitor`) are validated here
against the named driver's own Settings, so a bad key is reported like any other config error.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Literal, Optional

from pydantic.v1 import BaseModel, Extra, Field, root_validator, validator

from hal import registry


class DriverConfig(BaseModel):
    """`driver = "name"` plus that driver's settings (same shape as station.config_model.DriverConfig,
    kept here so the shared config model can import this module without a cycle)."""

    driver: str

    class Config:
        extra = Extra.allow
        allow_mutation = False

    def driver_settings(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "driver"}

ProtocolName = Literal["DIN_SPEC_70121", "ISO_15118_2", "ISO_15118_20_AC", "ISO_15118_20_DC"]
DC_PROTOCOLS = {"DIN_SPEC_70121", "ISO_15118_20_DC"}  # ISO_15118_2 carries both AC and DC


class _Strict(BaseModel):
    class Config:
        extra = Extra.forbid
        allow_mutation = False


class SlacConfig(_Strict):
    """ISO 15118-3 Table A.1 timers. Defaults are the standard's values."""

    init_timeout_s: float = Field(default=50.0, gt=0, le=50)  # TT_EVSE_SLAC_init (20-50 s in the standard)
    match_sequence_s: float = Field(default=0.4, gt=0, le=5)  # TT_match_sequence
    match_response_s: float = Field(default=0.2, gt=0, le=5)  # TT_match_response
    mnbc_s: float = Field(default=0.6, gt=0, le=5)  # TT_EVSE_match_MNBC
    match_session_s: float = Field(default=10.0, gt=0, le=60)  # TT_EVSE_match_session
    max_attempts: int = Field(default=3, ge=1, le=10)  # C_conn_max_match
    atten_char_retries: int = Field(default=2, ge=0, le=10)  # C_EV_match_retry
    #: Before falling back to PWM charging, show state F this long (T_step_EF >= 4 s; 0: switch at once).
    fallback_step_ef_s: float = Field(default=4.0, ge=0, le=60)


class TlsConfig(_Strict):
    """TLS is used when the EV asks for it in SDP (needs the SECC certificate under pki_path)."""

    #: Only TLS: ignore the EV's SDP security choice.
    enforce: bool = False
    #: Directory laid out like the iso15118 package's pki/ (iso15118_2/certs, private_keys, ...).
    #: Not set: the package's own pki/ (only create_certs.sh until a test PKI is made there).
    pki_path: Optional[Path] = None
    tls_1_3: bool = False

    @validator("pki_path")
    def _absolute(cls, value: Optional[Path]) -> Optional[Path]:
        if value is not None and not value.expanduser().is_absolute():
            raise ValueError("must be an absolute path (e.g. /etc/station/pki)")
        return value.expanduser() if value is not None else None


class DcLimitsConfig(_Strict):
    """What this EVSE offers a DC vehicle; the power supply's own capabilities cap it further."""

    max_voltage_v: float = Field(default=500.0, gt=0, le=1500)
    min_voltage_v: float = Field(default=150.0, ge=0, le=1500)
    max_current_a: float = Field(default=125.0, gt=0, le=1000)
    min_current_a: float = Field(default=0.0, ge=0, le=1000)
    max_power_w: float = Field(default=50_000.0, gt=0, le=1_000_000)
    peak_current_ripple_a: float = Field(default=2.0, ge=0, le=100)
    #: Pre-charge current limit (IEC 61851-23: at most 2 A).
    precharge_current_a: float = Field(default=2.0, gt=0, le=2)

    @root_validator(skip_on_failure=True)
    def _ranges(cls, values: dict[str, Any]) -> dict[str, Any]:
        if values["min_voltage_v"] >= values["max_voltage_v"]:
            raise ValueError("min_voltage_v must be below max_voltage_v")
        if values["min_current_a"] > values["max_current_a"]:
            raise ValueError("min_current_a must not exceed max_current_a")
        return values


class Iso15118Config(_Strict):
    #: `[evse.iso15118.plc_modem]`: the HomePlug Green PHY modem SLAC runs on ("homeplug", "sim").
    plc_modem: DriverConfig
    #: `[evse.iso15118.power_supply]`: DC power modules; required when a DC protocol is offered.
    power_supply: Optional[DriverConfig] = None
    #: `[evse.iso15118.isolation_monitor]`: IMD for the DC cable check; required with a DC protocol.
    isolation_monitor: Optional[DriverConfig] = None
    #: Protocols offered in SupportedAppProtocol; the EV's priority decides among them.
    protocols: List[ProtocolName] = Field(default_factory=lambda: ["ISO_15118_2"], min_items=1)
    #: Authorization modes. Only "EIM" (the station's own authorization: RFID, free mode, OCPP) so far.
    auth_modes: List[Literal["EIM", "PnC"]] = Field(default_factory=lambda: ["EIM"], min_items=1)
    #: EVSE ID sent to the EV (ISO: "DE*ABC*E123*1" style; DIN: hex). Not set: built from station id + EVSE id.
    evse_id: Optional[str] = Field(default=None, min_length=1, max_length=37)
    tls: TlsConfig = TlsConfig()
    dc: DcLimitsConfig = DcLimitsConfig()
    slac: SlacConfig = SlacConfig()
    #: After a SLAC match, a V2G session must start within this time, else AC falls back to PWM charging.
    session_start_timeout_s: float = Field(default=20.0, gt=0, le=120)
    #: While power flows, the EV must send a request at least this often, else power is cut.
    ev_silence_timeout_s: float = Field(default=5.0, gt=0, le=60)
    #: Contactor feedback after a close/open request from the SECC (V2G2-860: 3 s).
    contactor_timeout_s: float = Field(default=3.0, gt=0, le=3)
    #: Log level of the iso15118 package's own loggers (it logs every message at INFO).
    log_level: Literal["debug", "info", "warning", "error"] = "warning"
    #: EXI codec: "native" (station/exi: no JVM, sub-millisecond) or "java" (the package's EXICodec.jar).
    exi_codec: Literal["native", "java"] = "native"
    #: JVM heap cap for the package's Java EXI codec (MiB), when exi_codec = "java".
    jvm_heap_mb: int = Field(default=128, ge=48, le=1024)

    @validator("auth_modes")
    def _eim_only(cls, value: list[str]) -> list[str]:
        if "PnC" in value:
            raise ValueError('"PnC" (Plug & Charge) needs the OCPP certificate services, not available yet; use ["EIM"]')
        if len(set(value)) != len(value):
            raise ValueError("lists a mode twice")
        return value

    @validator("protocols")
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists a protocol twice")
        return value

    @validator("plc_modem")
    def _plc(cls, value: DriverConfig) -> DriverConfig:
        return _check_driver("plc_modem", value)

    @validator("power_supply")
    def _ps(cls, value: Optional[DriverConfig]) -> Optional[DriverConfig]:
        return None if value is None else _check_driver("power_supply", value)

    @validator("isolation_monitor")
    def _imd(cls, value: Optional[DriverConfig]) -> Optional[DriverConfig]:
        return None if value is None else _check_driver("isolation_monitor", value)

    @root_validator(skip_on_failure=True)
    def _dc_parts(cls, values: dict[str, Any]) -> dict[str, Any]:
        dc = [p for p in values["protocols"] if p in DC_PROTOCOLS]
        missing = [k for k in ("power_supply", "isolation_monitor") if values.get(k) is None]
        if dc and missing:
            raise ValueError(f"{', '.join(dc)} (DC) needs {' and '.join(f'[evse.iso15118.{k}]' for k in missing)}")
        return values


def _check_driver(kind: str, value: DriverConfig) -> DriverConfig:
    words = kind.replace("_", " ")
    try:
        cls = registry.load(kind, value.driver)
    except registry.DriverNotFound as exc:
        raise ValueError(f'no {words} driver named "{value.driver}"; available: {", ".join(exc.available) or "none"}')
    except Exception as exc:  # noqa: BLE001 - a driver module that fails to import
        raise ValueError(f'{words} driver "{value.driver}" could not be loaded: {type(exc).__name__}: {exc}')
    try:
        cls.Settings.parse_obj(value.driver_settings())
    except Exception as exc:  # noqa: BLE001 - pydantic ValidationError: list every problem
        errors = getattr(exc, "errors", None)
        if callable(errors):
            detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors())
        else:
            detail = str(exc)
        raise ValueError(f'{words} driver "{value.driver}" settings: {detail}')
    return value


def driver_settings(kind: str, value: DriverConfig) -> tuple[type, BaseModel]:
    cls = registry.load(kind, value.driver)
    return cls, cls.Settings.parse_obj(value.driver_settings())
