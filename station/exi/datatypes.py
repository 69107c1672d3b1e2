"""EXI value representations for the XSD simple types the V2G schemas use.

Each simple type maps to one Datatype: how its value is written in a bit-packed
stream (EXI 1.0 section 7) and how it appears in the JSON dialect of the
iso15118 package (integers as numbers, hexBinary as upper-case hex, base64Binary
as base64 text, enumerations and strings as text).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Optional

from .xsd import INTEGER_BOUNDS, STRING_TYPES, SimpleType

# Kinds, small ints so the coder can dispatch with plain comparisons.
UINT, INT, NBIT, BOOL, ENUM, STRING, HEX, B64 = range(8)
KIND_NAMES = ("unsigned integer", "integer", "bounded integer", "boolean", "enumeration",
              "string", "hexBinary", "base64Binary")


@dataclass
class Datatype:
    kind: int
    bits: int = 0  # NBIT and ENUM: width of the n-bit unsigned integer
    lower: int = 0  # NBIT: value offset
    upper: Optional[int] = None
    values: tuple = ()  # ENUM: the enumerated literals in schema order
    index: dict = field(default_factory=dict)  # ENUM: literal -> position
    name: str = ""

    def describe(self) -> str:
        return f"{self.name or KIND_NAMES[self.kind]} ({KIND_NAMES[self.kind]})"


def datatype_for(st: SimpleType) -> Datatype:
    name = st.name[1] if st.name else st.builtin
    if st.enumeration:
        values = tuple(st.enumeration)
        return Datatype(ENUM, bits=(len(values) - 1).bit_length(), values=values,
                        index={v: i for i, v in enumerate(values)}, name=name)
    b = st.builtin
    if b in INTEGER_BOUNDS:
        lo, hi = st.min_inclusive, st.max_inclusive
        if lo is not None and hi is not None and hi - lo < 4096:
            return Datatype(NBIT, bits=(hi - lo).bit_length(), lower=lo, upper=hi, name=name)
        if lo is not None and lo >= 0:
            return Datatype(UINT, lower=lo, upper=hi, name=name)
        return Datatype(INT, lower=lo if lo is not None else -(2**1000), upper=hi, name=name)
    if b == "boolean":
        return Datatype(BOOL, name=name)
    if b == "hexBinary":
        return Datatype(HEX, name=name)
    if b == "base64Binary":
        return Datatype(B64, name=name)
    if b in STRING_TYPES:
        return Datatype(STRING, name=name)
    raise ValueError(f"unsupported simple type {b}")


def binary_from_json(dt: Datatype, value) -> bytes:
    """hexBinary / base64Binary JSON text -> bytes; raises ValueError."""
    if not isinstance(value, str):
        raise ValueError(f"expected a {'hex' if dt.kind == HEX else 'base64'} string, got {type(value).__name__}")
    if dt.kind == HEX:
        return bytes.fromhex(value)
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"invalid base64: {exc}") from None


def binary_to_json(dt: Datatype, data: bytes) -> str:
    if dt.kind == HEX:
        return data.hex().upper()
    return base64.b64encode(data).decode("ascii")
