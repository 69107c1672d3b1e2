"""Hypothesis strategies for V2G messages built from the iso15118 package's own pydantic models.

A message is drawn field by field from the model's declared types and constraints, validated by
the model (validators reject some draws: hypothesis retries), and turned into JSON by the
package's own EXI.to_exi path, so the JSON is exactly what the package would hand a codec.
"""

from __future__ import annotations

import enum
import typing

from hypothesis import assume
from hypothesis import strategies as st

from tests.exi_support import DIN, ISO2, SAP, V20

# hexBinary-typed fields: the models check them with validators, random text never passes.
_HEX_SIZES = {"SessionID": 8, "EVCCID": 6, "GenChallenge": 16, "EVSEID": 7, "SessionId": 8}


class _Capture:
    """An IEXICodec that only records the JSON the package produces."""

    def __init__(self):
        self.last = None

    def encode(self, message, namespace):
        self.last = message
        return b""

    def decode(self, stream, namespace):  # pragma: no cover - never used
        raise NotImplementedError

    def get_version(self):
        return "capture"


def _constraint(field, name):
    value = getattr(field.field_info, name, None)
    if value is None:
        value = getattr(field.type_, name, None)
    return value


def _int_strategy(field):
    lo = _constraint(field, "ge")
    hi = _constraint(field, "le")
    if lo is None and _constraint(field, "gt") is not None:
        lo = _constraint(field, "gt") + 1
    if hi is None and _constraint(field, "lt") is not None:
        hi = _constraint(field, "lt") - 1
    lo = 0 if lo is None else lo  # unconstrained model ints are mostly XSD unsigned types
    hi = 2**15 - 1 if hi is None else hi
    return st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi]))


def _str_strategy(field, alias):
    if alias in _HEX_SIZES:
        return st.binary(min_size=1, max_size=_HEX_SIZES[alias]).map(lambda b: b.hex().upper())
    hi = _constraint(field, "max_length") or 20
    lo = _constraint(field, "min_length") or 1
    return st.one_of(
        st.text(st.sampled_from("ABCDEF0123456789"), min_size=lo, max_size=min(hi, 20)),
        st.text(st.sampled_from("abcXYZ019:-_."), min_size=lo, max_size=min(hi, 20)),
    )


def _type_strategy(tp, field, alias):
    from pydantic.v1 import BaseModel  # pydantic 1.10 also exposes the v1 namespace

    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return st.sampled_from(typing.get_args(tp))
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return st.one_of([_type_strategy(a, field, alias) for a in args])
    if origin in (list, typing.List):
        (item,) = typing.get_args(tp) or (str,)
        return st.lists(_type_strategy(item, field, alias), min_size=1, max_size=3)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from(list(tp))
    if isinstance(tp, type) and issubclass(tp, (BaseModel,)) or _is_v1_model(tp):
        return model_strategy(tp)
    if tp is bool:
        return st.booleans()
    if isinstance(tp, type) and issubclass(tp, int):
        return _int_strategy(field)
    if isinstance(tp, type) and issubclass(tp, bytes):
        hi = min(_constraint(field, "max_length") or 32, 32)
        return st.binary(min_size=1, max_size=hi)
    if isinstance(tp, type) and issubclass(tp, str):
        return _str_strategy(field, alias)
    raise TypeError(f"no strategy for {tp!r} ({alias})")


def _is_v1_model(tp) -> bool:
    return isinstance(tp, type) and hasattr(tp, "__fields__") and hasattr(tp, "parse_obj")


_MODEL_CACHE: dict = {}


def model_strategy(model):
    if model in _MODEL_CACHE:
        return _MODEL_CACHE[model]

    @st.composite
    def build(draw):
        values = {}
        for field in model.__fields__.values():
            if not field.required and not draw(st.booleans()):
                continue
            tp = field.outer_type_
            if field.shape == 2 or getattr(tp, "item_type", None) is not None:  # List[...] / conlist
                item = getattr(tp, "item_type", None) or field.type_
                lo = getattr(tp, "min_items", None) or 1
                hi = min(getattr(tp, "max_items", None) or 3, lo + 2)
                values[field.alias] = draw(st.lists(_type_strategy(item, field, field.alias), min_size=lo,
                                                    max_size=hi))
            else:
                values[field.alias] = draw(_type_strategy(field.type_, field, field.alias))
        try:
            return model.parse_obj(values)
        except Exception:
            assume(False)

    strategy = st.deferred(lambda: build())
    _MODEL_CACHE[model] = strategy
    return strategy


def to_package_json(message, namespace: str) -> str:
    """The JSON the package's EXI.to_exi hands to its codec for this message."""
    from iso15118.shared.exi_codec import EXI
    from iso15118.shared.settings import SettingKey, shared_settings

    shared_settings.setdefault(SettingKey.MESSAGE_LOG_JSON, False)
    shared_settings.setdefault(SettingKey.MESSAGE_LOG_EXI, False)
    exi = EXI()
    previous = exi.exi_codec
    capture = _Capture()
    exi.exi_codec = capture
    try:
        exi.to_exi(message, namespace)
    finally:
        exi.exi_codec = previous
    return capture.last


def body_classes(namespace: str) -> dict:
    """Message name -> pydantic model class, for the schemas the package models."""
    if namespace == SAP:
        from iso15118.shared.messages import app_protocol as m

        return {"supportedAppProtocolReq": m.SupportedAppProtocolReq,
                "supportedAppProtocolRes": m.SupportedAppProtocolRes}
    if namespace in (DIN, ISO2):
        if namespace == DIN:
            from iso15118.shared.messages.din_spec import body
        else:
            from iso15118.shared.messages.iso15118_2 import body
        return {f.alias: f.type_ for f in body.Body.__fields__.values()}
    from iso15118.shared.messages.iso15118_20 import ac, common_messages, dc

    module = {V20 + "CommonMessages": common_messages, V20 + "AC": ac, V20 + "DC": dc}.get(namespace)
    if module is None:
        return {}
    from tests.exi_support import message_types

    wanted = {m.replace("_", ""): m for m in message_types(namespace)}
    out = {}
    for name in dir(module):
        cls = getattr(module, name)
        if _is_v1_model(cls) and name in wanted:
            out[wanted[name]] = cls
    return out


def message_json_strategy(namespace: str, name: str):
    """Package JSON for one message type, drawn from its pydantic model."""
    cls = body_classes(namespace)[name]
    if namespace in (DIN, ISO2):
        if namespace == DIN:
            from iso15118.shared.messages.din_spec.body import Body
            from iso15118.shared.messages.din_spec.header import MessageHeader
            from iso15118.shared.messages.din_spec.msgdef import V2GMessage
        else:
            from iso15118.shared.messages.iso15118_2.body import Body
            from iso15118.shared.messages.iso15118_2.header import MessageHeader
            from iso15118.shared.messages.iso15118_2.msgdef import V2GMessage

        @st.composite
        def v2g(draw):
            body = draw(model_strategy(cls))
            sid = draw(st.binary(min_size=1, max_size=8)).hex().upper()
            try:
                msg = V2GMessage(header=MessageHeader(session_id=sid), body=Body(**{name: body}))
            except Exception:
                assume(False)
            return to_package_json(msg, namespace)

        return v2g()
    return model_strategy(cls).map(lambda m: to_package_json(m, namespace))
