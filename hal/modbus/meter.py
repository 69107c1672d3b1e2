"""Meter driver "modbus": any Modbus RTU/TCP meter described by a register map (profiles/meters).

Each read() fetches every mapped register (in as few requests as the map allows) and decodes
them. It raises MeterError, never returns an old value, when the meter does not answer, answers
with an exception or garbage, or is stale: the full set of registers has stayed bit-for-bit
identical for longer than `stale_after_s` while the reading itself says power is flowing (a live
meter's voltages and currents always move in their last digits; a frozen one repeats itself).

Signed readings: if the map has an [ocmf] section, signed_reading() asks the meter for a dataset
(optional request register) and returns the OCMF text exactly as the meter produced it.
"""
from __future__ import annotations

import logging
from typing import Any, Literal, Optional

from pydantic.v1 import BaseModel, Extra, Field, root_validator, validator

from hal.driver import DriverContext
from hal.meter import Meter, MeterError, MeterReading, SignedMeterValue
from hal.modbus import register_map as rm
from hal.modbus.link import Endpoint, ModbusLink, ModbusLinkError
from hal.serial.counters import Counters

log = logging.getLogger(__name__)

COUNTERS = ("reads", "read_failures", "bad_values", "stale", "signed_reads", "signed_failures")
OCMF_POLL_S = 0.1


class ModbusMeterSettings(BaseModel):
    #: A map name under profiles/meters ("sdm630", "pzem017") or an absolute path to a map file.
    register_map: str = Field(..., min_length=1)
    transport: Literal["tcp", "rtu"]
    host: Optional[str] = Field(None, min_length=1)
    port: int = Field(502, ge=1, le=65535)
    serial_port: Optional[str] = Field(None, min_length=1)
    baudrate: int = Field(9600, ge=300, le=921600)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    unit_id: int = Field(1, ge=0, le=247)
    timeout_s: float = Field(1.0, gt=0, le=10)
    retries: int = Field(1, ge=0, le=5)
    stale_after_s: float = Field(30.0, gt=0, le=3600)
    stale_min_power_w: float = Field(50.0, ge=0)
    #: The meter's public key, when the map cannot read it from the meter.
    ocmf_public_key: Optional[str] = None

    class Config:
        extra = Extra.forbid

    @validator("register_map")
    def _map_loads(cls, v: str) -> str:  # noqa: N805
        try:
            rm.load(v)
        except rm.RegisterMapError as exc:
            raise ValueError(str(exc)) from None
        return v

    @root_validator(skip_on_failure=True)
    def _transport_keys(cls, values: dict[str, Any]) -> dict[str, Any]:  # noqa: N805
        if values["transport"] == "tcp":
            if not values.get("host"):
                raise ValueError('transport = "tcp" needs host (the meter\'s or gateway\'s address)')
            if values.get("serial_port"):
                raise ValueError('serial_port is for transport = "rtu"; remove it or change transport')
        else:
            if not values.get("serial_port"):
                raise ValueError('transport = "rtu" needs serial_port (e.g. "/dev/ttyUSB0")')
            if values.get("host"):
                raise ValueError('host is for transport = "tcp"; remove it or change transport')
        return values


class ModbusMeter(Meter):
    Settings = ModbusMeterSettings

    def __init__(self, settings: BaseModel, context: DriverContext) -> None:
        super().__init__(settings, context)
        s: ModbusMeterSettings = settings  # type: ignore[assignment]
        self.settings = s
        self.map = rm.load(s.register_map)
        self._blocks = rm.plan(self.map)
        self._endpoint = Endpoint(s.transport, host=s.host or "", port=s.port, serial_port=s.serial_port or "",
                                  baudrate=s.baudrate, parity=s.parity, stopbits=s.stopbits,
                                  timeout_s=s.timeout_s, retries=s.retries)
        self._link = ModbusLink.of(context, self._endpoint)
        self._counters = Counters(COUNTERS)
        self._last_raw: tuple[int, ...] | None = None
        self._same_since = 0.0
        self._last_signed: str | None = None
        self._public_key: str | None = s.ocmf_public_key
        self._started = False

    @property
    def where(self) -> str:
        return f"{self.map.name} at {self._endpoint.describe()} unit {self.settings.unit_id}"

    @property
    def counters(self) -> dict[str, int]:
        return self._counters.snapshot()

    async def start(self) -> None:
        if not self._started:
            self._started = True
            self._link.retain()

    async def stop(self) -> None:
        if self._started:
            self._started = False
            await self._link.release()

    # --- readings ------------------------------------------------------------------------

    async def read(self) -> MeterReading:
        self._counters.inc("reads")
        data: dict[tuple[str, int], int] = {}
        raw: list[int] = []
        for block in self._blocks:
            words = await self._read(block.table, block.start, block.count)
            raw += words
            data.update({(block.table, block.start + i): w for i, w in enumerate(words)})
        try:
            values = rm.decode(self.map, data)
        except ValueError as exc:
            self._counters.inc("bad_values")
            raise MeterError(f"{self.where}: {exc}") from None
        self._check_stale(tuple(raw), values["power"])
        return self._reading(values)

    async def _read(self, table: str, address: int, count: int) -> list[int]:
        try:
            return await self._link.read(table, address, count, self.settings.unit_id)
        except ModbusLinkError as exc:
            self._counters.inc("read_failures")
            raise MeterError(f"{self.where}: {exc}") from None

    def _check_stale(self, raw: tuple[int, ...], power_w: float) -> None:
        now = self.context.clock.monotonic()
        if raw != self._last_raw:
            self._last_raw, self._same_since = raw, now
            return
        frozen_for = now - self._same_since
        if frozen_for > self.settings.stale_after_s and abs(power_w) >= self.settings.stale_min_power_w:
            self._counters.inc("stale")
            raise MeterError(f"{self.where}: stale: the same reading for {frozen_for:.0f} s while it reports "
                             f"{power_w:.0f} W (limit {self.settings.stale_after_s:g} s)")

    def _reading(self, values: dict[str, float]) -> MeterReading:
        if self.map.kind == "dc":
            voltage = tuple(values[n] for n in ("voltage",) if n in values)
            current = tuple(values[n] for n in ("current",) if n in values)
        else:
            voltage = tuple(values[f"voltage_l{n}"] for n in (1, 2, 3) if f"voltage_l{n}" in values)
            current = tuple(values[f"current_l{n}"] for n in (1, 2, 3) if f"current_l{n}" in values)
        return MeterReading(
            timestamp=self.context.clock.wall(),
            energy_import_wh=values["energy_import"],
            power_w=values["power"],
            voltage_v=voltage,
            current_a=current,
            energy_export_wh=values.get("energy_export"),
            frequency_hz=values.get("frequency"),
            extra={k: v for k, v in values.items() if k not in rm.KNOWN},
        )

    # --- signed readings (OCMF) ----------------------------------------------------------

    @property
    def can_sign(self) -> bool:
        return self.map.ocmf is not None

    async def signed_reading(self, context: str) -> SignedMeterValue | None:
        ocmf = self.map.ocmf
        if ocmf is None:
            return None
        try:
            text = await self._signed_text(ocmf, context)
            key = await self._public_key_text(ocmf)
        except MeterError:
            self._counters.inc("signed_failures")
            raise
        self._counters.inc("signed_reads")
        self._last_signed = text
        return SignedMeterValue(signed_meter_data=text, signing_method=ocmf.signing_method,
                                encoding_method="OCMF", public_key=key or "")

    async def _signed_text(self, ocmf: rm.OcmfRegisters, context: str) -> str:
        code = ocmf.request_codes.get(context) if ocmf.request_address is not None else None
        if code is None:
            text = await self._read_text(ocmf.table, ocmf.length_address, ocmf.data_address, ocmf.max_bytes)
            if text is None:
                raise MeterError(f"{self.where}: the meter holds no signed dataset")
            return _checked_ocmf(text, self.where)
        assert ocmf.request_address is not None
        try:
            await self._link.write(ocmf.request_address, code, self.settings.unit_id)
        except ModbusLinkError as exc:
            raise MeterError(f"{self.where}: asking for a signed reading ({context}): {exc}") from None
        deadline = self.context.clock.monotonic() + ocmf.request_timeout_s
        while True:
            text = await self._read_text(ocmf.table, ocmf.length_address, ocmf.data_address, ocmf.max_bytes)
            if text is not None and text != self._last_signed:
                return _checked_ocmf(text, self.where)
            if self.context.clock.monotonic() >= deadline:
                raise MeterError(f"{self.where}: no new signed dataset {ocmf.request_timeout_s:g} s after "
                                 f"asking for {context}")
            await self.context.clock.sleep(OCMF_POLL_S)

    async def _public_key_text(self, ocmf: rm.OcmfRegisters) -> str | None:
        if self._public_key is None and ocmf.public_key_address is not None:
            assert ocmf.public_key_length_address is not None
            self._public_key = await self._read_text(ocmf.table, ocmf.public_key_length_address,
                                                     ocmf.public_key_address, 1000)
        return self._public_key

    async def _read_text(self, table: str, length_address: int, data_address: int, max_bytes: int) -> str | None:
        """The text the meter holds (None while it holds none). Bytes are decoded, never altered."""
        [length] = await self._read(table, length_address, 1)
        if length == 0:
            return None
        if length > max_bytes:
            raise MeterError(f"{self.where}: signed dataset of {length} bytes exceeds max_bytes = {max_bytes}")
        words: list[int] = []
        total = (length + 1) // 2
        step = min(self.map.max_read_registers, rm.MAX_REGISTERS_PER_READ)
        for offset in range(0, total, step):
            words += await self._read(table, data_address + offset, min(step, total - offset))
        try:
            return rm.registers_text(words, length).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MeterError(f"{self.where}: signed dataset is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _checked_ocmf(text: str, where: str) -> str:
    """OCMF|{payload}|{signature}: refuse anything else rather than pass garbage on as signed data."""
    parts = text.split("|")
    if len(parts) < 3 or parts[0] != "OCMF" or not parts[1].startswith("{") or not parts[-1].startswith("{"):
        raise MeterError(f"{where}: signed dataset is not OCMF (starts {text[:20]!r})")
    return text
