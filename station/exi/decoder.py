"""EXI bits -> events -> the JSON dialect (as a dict), driven by the cached grammars.

Every read is bounded by the input: a length prefix larger than what is left in
the stream is rejected before anything is allocated, and each loop consumes bits.
"""

from __future__ import annotations

from .bitstream import BitReader
from .datatypes import B64, BOOL, ENUM, HEX, INT, NBIT, STRING, UINT, binary_to_json
from .errors import EXICodecError
from .grammar import AT, CH, EE, SE, DocGrammar, TypeGrammar


def decode_document(doc: DocGrammar, data: bytes, fragment=None, compat: bool = False) -> dict:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EXICodecError(f"expected bytes, got {type(data).__name__}", 0)
    r = BitReader(bytes(data))
    if r.bits(2) != 2:
        raise EXICodecError("not an EXI body: distinguishing bits are not 10 (an EXI cookie is not supported)", 0)
    if r.bits(1):
        raise EXICodecError("EXI header options are not supported", 2)
    if r.bits(5):
        raise EXICodecError("unsupported EXI version (only final version 1)", 3)
    grammar = fragment if fragment is not None else doc
    pos = r.pos
    code = r.bits(grammar.bits)
    if code >= len(grammar.elements):
        raise EXICodecError("root element not declared in the schema (SE(*)) is not supported", pos)
    qname, tg = grammar.elements[code]
    out = {qname[1]: _element(r, tg, compat)}
    if fragment is not None:
        pos = r.pos
        if r.bits(fragment.bits) != len(fragment.elements) + 1:
            raise EXICodecError("fragments with more than one element are not supported", pos)
    return out


def _element(r: BitReader, tg: TypeGrammar, compat: bool):
    dt = tg.simple
    if dt is not None:
        pos = r.pos
        if r.bits(1):
            raise EXICodecError(f"undeclared event in {tg.name} (not a V2G message)", pos)
        value = _value(r, dt)
        pos = r.pos
        if r.bits(1):
            raise EXICodecError(f"undeclared event in {tg.name} (not a V2G message)", pos)
        return value
    out: dict = {}
    state = tg.start
    list_keys = tg.list_keys
    while True:
        pos = r.pos
        code = r.bits(state.bits)
        prods = state.prods
        if code >= len(prods):
            raise EXICodecError(f"undeclared event in {tg.name} (not a V2G message)", pos)
        prod = prods[code]
        kind = prod.kind
        if kind == EE:
            if compat and tg.jar_defaults:
                for default in tg.jar_defaults:
                    out.setdefault(default[0], default[1])
            return out
        if kind == SE:
            value = _element(r, prod.child, compat)
        elif (kind == AT or kind == CH) and prod.dt is not None:
            value = _value(r, prod.dt)
        else:
            raise EXICodecError(f"wildcard or mixed content in {tg.name} is not supported", pos)
        key = prod.key
        if key in list_keys:
            out.setdefault(key, []).append(value)
        else:
            out[key] = value
        state = prod.target


def _value(r: BitReader, dt):
    kind = dt.kind
    pos = r.pos
    if kind == NBIT:
        v = r.bits(dt.bits) + dt.lower
        if v > dt.upper:
            raise EXICodecError(f"{v} is out of range for {dt.describe()}", pos)
        return v
    if kind == UINT:
        v = r.uint(dt.upper.bit_length() if dt.upper is not None else 256)
        if dt.upper is not None and v > dt.upper:
            raise EXICodecError(f"{v} is out of range for {dt.describe()}", pos)
        return v
    if kind == INT:
        negative = r.bits(1)
        v = r.uint(256)
        v = -v - 1 if negative else v
        if (dt.upper is not None and v > dt.upper) or v < dt.lower:
            raise EXICodecError(f"{v} is out of range for {dt.describe()}", pos)
        return v
    if kind == ENUM:
        idx = r.bits(dt.bits)
        if idx >= len(dt.values):
            raise EXICodecError(f"enumeration index {idx} out of range for {dt.describe()}", pos)
        return dt.values[idx]
    if kind == BOOL:
        return bool(r.bits(1))
    if kind == STRING:
        return _string(r, pos)
    if kind == HEX or kind == B64:
        n = r.uint(32)
        return binary_to_json(dt, r.raw(n))
    raise EXICodecError(f"unsupported datatype {dt.describe()}", pos)  # pragma: no cover


def _string(r: BitReader, pos: int) -> str:
    n = r.uint(32)
    if n < 2:
        raise EXICodecError("string table references are not used in the V2G profile", pos)
    n -= 2
    if 8 * n > r.remaining():
        raise EXICodecError(f"string of {n} characters announced, stream too short", pos)
    chunk = r.peek(8 * n)
    if not chunk & int.from_bytes(b"\x80" * n, "big"):  # all ASCII: one octet per character
        r.pos += 8 * n
        return chunk.to_bytes(n, "big").decode("ascii")
    chars = []
    for _ in range(n):
        cp = r.uint(21)
        if cp > 0x10FFFF:
            raise EXICodecError(f"invalid character code {cp}", pos)
        chars.append(chr(cp))
    return "".join(chars)
