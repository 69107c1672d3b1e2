"""JSON dialect (as a dict) -> EXI events -> bits, driven by the cached grammars."""

from __future__ import annotations

from .bitstream import BitWriter
from .datatypes import B64, BOOL, ENUM, HEX, NBIT, STRING, UINT, binary_from_json
from .errors import EXICodecError
from .grammar import AT, CH, SE, DocGrammar, State, TypeGrammar

EXI_HEADER = 0x80  # distinguishing bits 10, no options, final version 1


def expected(state: State) -> str:
    names = [p.key for p in state.prods if p.key is not None]
    if state.ee >= 0:
        names.append("(end of element)")
    return ", ".join(names) or "nothing"


def encode_document(doc: DocGrammar, message: object, fragment=None, compat: bool = False) -> bytes:
    if not isinstance(message, dict) or len(message) != 1:
        raise EXICodecError("the message must be a JSON object with exactly one root element", "$")
    (root, body), = message.items()
    w = BitWriter()
    w.bits(EXI_HEADER, 8)
    if fragment is not None:
        code = fragment.by_key.get(root)
        if code is None:
            raise EXICodecError(f"'{root}' is not an element of this schema", "$")
        w.bits(code, fragment.bits)
        _element(w, fragment.elements[code][1], body, root, compat)
        w.bits(len(fragment.elements) + 1, fragment.bits)  # ED
        return w.getvalue()
    code = doc.by_key.get(root)
    if code is None:
        raise EXICodecError(f"'{root}' is not a global element of this schema", "$")
    w.bits(code, doc.bits)
    _element(w, doc.elements[code][1], body, root, compat)
    return w.getvalue()


def _element(w: BitWriter, tg: TypeGrammar, obj: object, path: str, compat: bool) -> None:
    dt = tg.simple
    if dt is not None:
        w.bits(0, 1)  # CH
        _value(w, dt, obj, path)
        w.bits(0, 1)  # EE
        return
    if not isinstance(obj, dict):
        raise EXICodecError(f"expected an object for {tg.name}, got {type(obj).__name__}", path)
    if compat and tg.jar_defaults:
        obj = {**{d[0]: d[1] for d in tg.jar_defaults if len(d) == 2}, **obj}
    order = tg.order
    try:
        items = sorted(obj.items(), key=lambda kv: order[kv[0]])
    except KeyError:
        bad = next(k for k in obj if k not in order)
        raise EXICodecError(f"'{bad}' is not part of {tg.name}", path) from None
    state = tg.start
    list_keys = tg.list_keys
    for key, value in items:
        if type(value) is list:
            if key not in list_keys:
                raise EXICodecError(f"'{key}' occurs at most once in {tg.name} but a list was given", path)
            seq = value
        else:
            seq = (value,)
        for item in seq:
            code = state.by_key.get(key)
            if code is None:
                raise EXICodecError(f"'{key}' is not allowed here in {tg.name}; expected {expected(state)}",
                                    f"{path}.{key}")
            w.bits(code, state.bits)
            prod = state.prods[code]
            kind = prod.kind
            if kind == SE:
                _element(w, prod.child, item, f"{path}.{key}", compat)
            elif (kind == AT or kind == CH) and prod.dt is not None:
                _value(w, prod.dt, item, f"{path}.{key}")
            else:
                raise EXICodecError(f"'{key}': wildcard or mixed content is not supported", f"{path}.{key}")
            state = prod.target
    if state.ee < 0:
        raise EXICodecError(f"{tg.name} is incomplete; expected {expected(state)}", path)
    w.bits(state.ee, state.bits)


def _value(w: BitWriter, dt, v: object, path: str) -> None:
    kind = dt.kind
    if kind <= NBIT:  # integers
        if type(v) is not int:
            raise EXICodecError(f"expected an integer ({dt.describe()}), got {v!r}", path)
        if (dt.upper is not None and v > dt.upper) or v < dt.lower:
            raise EXICodecError(f"{v} is out of range for {dt.describe()}", path)
        if kind == NBIT:
            w.bits(v - dt.lower, dt.bits)
        elif kind == UINT:
            w.uint(v)
        elif v < 0:
            w.bits(1, 1)
            w.uint(-v - 1)
        else:
            w.bits(0, 1)
            w.uint(v)
    elif kind == ENUM:
        idx = dt.index.get(v) if isinstance(v, str) else None
        if idx is None:
            raise EXICodecError(f"{v!r} is not one of {dt.describe()}: {', '.join(dt.values)}", path)
        w.bits(idx, dt.bits)
    elif kind == STRING:
        if type(v) is not str:
            raise EXICodecError(f"expected a string ({dt.describe()}), got {v!r}", path)
        w.uint(len(v) + 2)
        if v.isascii():
            w.raw(v.encode("ascii"))
        else:
            for ch in v:
                w.uint(ord(ch))
    elif kind == BOOL:
        if type(v) is not bool:
            raise EXICodecError(f"expected true or false, got {v!r}", path)
        w.bits(1 if v else 0, 1)
    elif kind == HEX or kind == B64:
        try:
            data = binary_from_json(dt, v)
        except ValueError as exc:
            raise EXICodecError(f"{dt.describe()}: {exc}", path) from None
        w.uint(len(data))
        w.raw(data)
    else:  # pragma: no cover - datatype_for only creates the kinds above
        raise EXICodecError(f"unsupported datatype {dt.describe()}", path)
