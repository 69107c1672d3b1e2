"""Meter register maps as data: what to read, where, and how to turn registers into a reading.

A map is a TOML file (profiles/meters/<name>.toml; format in docs/meters.md). Field names with a
meaning to the station: energy_import (Wh, required), power (W, required), energy_export (Wh),
frequency (Hz), voltage_l1..voltage_l3 / current_l1..current_l3 (AC) or voltage / current (DC).
Any other name is read into MeterReading.extra. `scale` converts to those units (kWh -> Wh: 1000).

Registers are 16-bit, big-endian within the register (Modbus); for 32/64-bit values `word_order`
says whether the high word comes first ("big", e.g. Eastron) or last ("little", e.g. Peacefair).
"""
from __future__ import annotations

import math
import re
import struct
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Literal, Optional

from pydantic.v1 import BaseModel, Extra, Field, ValidationError, root_validator, validator

#: Where register maps named without a path live (the repository's profiles/meters).
MAPS_DIR = Path(__file__).resolve().parents[2] / "profiles" / "meters"
NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")

Table = Literal["input", "holding"]
ValueType = Literal["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"]
#: type -> (struct format of the value, registers)
TYPES: dict[str, tuple[str, int]] = {
    "int16": (">h", 1), "uint16": (">H", 1), "int32": (">i", 2), "uint32": (">I", 2),
    "int64": (">q", 4), "uint64": (">Q", 4), "float32": (">f", 2), "float64": (">d", 4),
}
PHASED = ("voltage", "current")
KNOWN = {"energy_import", "energy_export", "power", "frequency", "voltage", "current",
         *(f"{q}_l{n}" for q in PHASED for n in (1, 2, 3))}
MAX_REGISTERS_PER_READ = 125  # Modbus limit for function 3/4


class Strict(BaseModel):
    class Config:
        extra = Extra.forbid


class Register(Strict):
    address: int = Field(..., ge=0, le=65535, description="0-based register address (30001 -> 0)")
    table: Optional[Table] = None  # default: the map's `table`
    type: ValueType = "float32"
    scale: float = 1.0

    @property
    def count(self) -> int:
        return TYPES[self.type][1]


class OcmfRegisters(Strict):
    """Where a signing meter keeps its OCMF dataset (see docs/meters.md, "Signed readings")."""

    table: Table = "holding"
    #: u16: bytes in the dataset now present (0 while none / while the meter is signing).
    length_address: int = Field(..., ge=0, le=65535)
    #: First register of the dataset: UTF-8 text, two bytes per register, high byte first.
    data_address: int = Field(..., ge=0, le=65535)
    max_bytes: int = Field(4000, ge=16, le=16000)
    #: Optional: write a context code here to ask for a signed dataset (holding register).
    request_address: Optional[int] = Field(None, ge=0, le=65535)
    request_codes: Dict[str, int] = Field(
        default_factory=lambda: {"Transaction.Begin": 1, "Transaction.End": 2, "Sample.Periodic": 3})
    request_timeout_s: float = Field(5.0, gt=0, le=60)
    signing_method: str = "ECDSA-secp256r1-SHA256"
    #: Optional: where the meter keeps its public key (same text layout as the dataset).
    public_key_length_address: Optional[int] = Field(None, ge=0, le=65535)
    public_key_address: Optional[int] = Field(None, ge=0, le=65535)

    @root_validator(skip_on_failure=True)
    def _key_pair(cls, values: dict) -> dict:  # noqa: N805
        if (values["public_key_length_address"] is None) != (values["public_key_address"] is None):
            raise ValueError("public_key_length_address and public_key_address go together")
        return values


class RegisterMap(Strict):
    name: str = Field(..., min_length=1)
    kind: Literal["ac", "dc"]
    table: Table = "input"
    word_order: Literal["big", "little"] = "big"
    max_read_registers: int = Field(60, ge=1, le=MAX_REGISTERS_PER_READ)
    #: Registers between two fields that may be read along in one request (0: only adjacent ones).
    max_gap: int = Field(16, ge=0, le=100)
    registers: Dict[str, Register]
    ocmf: Optional[OcmfRegisters] = None

    @validator("registers")
    def _required_fields(cls, v: dict[str, Register], values: dict) -> dict[str, Register]:  # noqa: N805
        missing = [n for n in ("energy_import", "power") if n not in v]
        if missing:
            raise ValueError(f"missing required field(s): {', '.join(missing)}")
        for name in v:
            if not re.match(r"^[a-z][a-z0-9_]*$", name):
                raise ValueError(f"field name {name!r}: use lower-case letters, digits and _")
        return v

    @root_validator(skip_on_failure=True)
    def _phases_fit_kind(cls, values: dict) -> dict:  # noqa: N805
        names = set(values["registers"])
        if values["kind"] == "dc" and names & {f"{q}_l{n}" for q in PHASED for n in (1, 2, 3)}:
            raise ValueError("a DC meter has `voltage` / `current`, not per-phase fields")
        if values["kind"] == "ac" and names & set(PHASED):
            raise ValueError("an AC meter has voltage_l1.. / current_l1.., not `voltage` / `current`")
        return values

    def table_of(self, reg: Register) -> str:
        return reg.table or self.table


class RegisterMapError(ValueError):
    pass


def resolve(ref: str) -> Path:
    """A map name ("sdm630") -> profiles/meters/sdm630.toml; anything else must be an absolute path."""
    if NAME_RE.match(ref):
        return MAPS_DIR / f"{ref}.toml"
    path = Path(ref)
    if not path.is_absolute():
        raise RegisterMapError(f"{ref!r}: give a map name (e.g. sdm630) or an absolute path to a .toml file")
    return path


def load(ref: str) -> RegisterMap:
    path = resolve(ref)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = ", ".join(sorted(p.stem for p in MAPS_DIR.glob("*.toml")))
        raise RegisterMapError(f"register map {ref!r} not found ({path}); built-in maps: {known}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RegisterMapError(f"register map {path}: {exc}") from None
    try:
        return RegisterMap.parse_obj(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"] if p != "__root__")
            problems.append(f"{where + ': ' if where else ''}{error['msg']}")
        raise RegisterMapError(f"register map {path}: {'; '.join(problems)}") from None


# --- reading plan and decoding ---------------------------------------------------------------

@dataclass(frozen=True)
class Block:
    table: str
    start: int
    count: int


def plan(regmap: RegisterMap) -> list[Block]:
    """The fewest read requests covering every field, within max_read_registers and max_gap."""
    spans = sorted((regmap.table_of(r), r.address, r.address + r.count) for r in regmap.registers.values())
    blocks: list[Block] = []
    for table, start, end in spans:
        if blocks:
            last = blocks[-1]
            last_end = last.start + last.count
            if (last.table == table and start - last_end <= regmap.max_gap
                    and max(end, last_end) - last.start <= regmap.max_read_registers):
                blocks[-1] = Block(table, last.start, max(end, last_end) - last.start)
                continue
        blocks.append(Block(table, start, end - start))
    return blocks


def decode_value(reg: Register, words: list[int], word_order: str) -> float:
    if word_order == "little":
        words = list(reversed(words))
    fmt, _ = TYPES[reg.type]
    value = struct.unpack(fmt, b"".join(w.to_bytes(2, "big") for w in words))[0]
    if not math.isfinite(value):
        raise ValueError(f"not a number: {value}")
    return value * reg.scale


def decode(regmap: RegisterMap, data: dict[tuple[str, int], int]) -> dict[str, float]:
    """Field values from {(table, address): register word}."""
    out = {}
    for name, reg in regmap.registers.items():
        table = regmap.table_of(reg)
        words = [data[(table, reg.address + i)] for i in range(reg.count)]
        try:
            out[name] = decode_value(reg, words, regmap.word_order)
        except ValueError as exc:
            raise ValueError(f"{name} (register {reg.address}): {exc}") from None
    return out


def encode_value(reg: Register, value: float, word_order: str) -> list[int]:
    """The register words a meter holding `value` serves (for simulators and tests)."""
    fmt, count = TYPES[reg.type]
    raw = value / reg.scale
    packed = struct.pack(fmt, raw if reg.type.startswith("float") else round(raw))
    words = [int.from_bytes(packed[i:i + 2], "big") for i in range(0, 2 * count, 2)]
    return list(reversed(words)) if word_order == "little" else words


def text_registers(text: bytes) -> list[int]:
    """Bytes -> registers, two per register, high byte first, last one padded with 0."""
    padded = text + b"\x00" * (len(text) % 2)
    return [int.from_bytes(padded[i:i + 2], "big") for i in range(0, len(padded), 2)]


def registers_text(words: list[int], length: int) -> bytes:
    return b"".join(w.to_bytes(2, "big") for w in words)[:length]
