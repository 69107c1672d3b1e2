"""Fuzzing: random and mutated EXI streams and JSON documents give only EXICodecError, quickly."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from station.exi import EXICodecError, NativeEXICodec
from tests import exi_support as es

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
TIME_LIMIT = 0.1  # seconds per decode; real messages take well under a millisecond


@pytest.fixture(scope="module")
def codec():
    return NativeEXICodec(cache_dir="", preload=True)  # timing below excludes grammar building


@pytest.fixture(scope="module")
def seeds(codec):
    """Valid streams of every message type (from the XSD-driven generator) to mutate."""
    out = []
    for ns in es.SCHEMAS:
        for mt in es.message_types(ns)[:12]:
            @settings(max_examples=1, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(es.message_strategy(ns, mt))
            def grab(message):
                out.append((ns, codec.encode(message, ns)))

            grab()
    return out


def _decode_only_codec_errors(codec, data: bytes, ns: str) -> None:
    start = time.perf_counter()
    try:
        result = codec.decode(data, ns)
    except EXICodecError as exc:
        assert exc.reason and (exc.position is None or isinstance(exc.position, int))
    else:
        assert isinstance(json.loads(result), dict)
    assert time.perf_counter() - start < TIME_LIMIT


@FUZZ
@given(data=st.binary(max_size=300), ns=st.sampled_from(es.SCHEMAS))
def test_random_bytes(codec, data, ns):
    _decode_only_codec_errors(codec, data, ns)


@FUZZ
@given(data=st.binary(min_size=1, max_size=300), ns=st.sampled_from(es.SCHEMAS))
def test_random_bytes_behind_a_valid_header(codec, data, ns):
    _decode_only_codec_errors(codec, b"\x80" + data, ns)


@FUZZ
@given(st.data())
def test_mutated_valid_streams(codec, seeds, data):
    ns, stream = data.draw(st.sampled_from(seeds))
    mutated = bytearray(stream)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete", "byte"]))
        pos = data.draw(st.integers(0, max(len(mutated) - 1, 0)))
        if kind == "flip" and mutated:
            mutated[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "truncate":
            del mutated[pos:]
        elif kind == "insert":
            mutated[pos:pos] = data.draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete" and mutated:
            del mutated[pos]
        elif mutated:
            mutated[pos] = data.draw(st.integers(0, 255))
    _decode_only_codec_errors(codec, bytes(mutated), ns)


def test_every_truncation_of_valid_streams(codec, seeds):
    for ns, stream in seeds:
        for cut in range(len(stream)):
            _decode_only_codec_errors(codec, stream[:cut], ns)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["Header", "SessionID", "Body", "Value", "value", "Id", "EVCCID", "x", "AppProtocol"]),
        children, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(root=st.sampled_from(["V2G_Message", "supportedAppProtocolReq", "SessionSetupReq", "DC_ChargeLoopReq", "zz"]),
       body=_json_values, ns=st.sampled_from(es.SCHEMAS))
def test_random_json(codec, root, body, ns):
    try:
        data = codec.encode(json.dumps({root: body}), ns)
    except EXICodecError as exc:
        assert exc.reason and exc.position is not None
    else:
        assert json.loads(codec.decode(data, ns))


@FUZZ
@given(st.data())
def test_mutated_valid_json(codec, seeds, data):
    ns, stream = data.draw(st.sampled_from(seeds))
    message = json.loads(codec.decode(stream, ns))

    def mutate(node):
        if isinstance(node, dict) and node:
            key = data.draw(st.sampled_from(sorted(node)))
            action = data.draw(st.sampled_from(["drop", "retype", "recurse", "rename"]))
            if action == "drop":
                del node[key]
            elif action == "retype":
                node[key] = data.draw(st.sampled_from([None, "x", -1, 2**80, [], {}, True, 1.5]))
            elif action == "rename":
                node[key + "_"] = node.pop(key)
            else:
                mutate(node[key])
        elif isinstance(node, list) and node:
            mutate(node[data.draw(st.integers(0, len(node) - 1))])

    mutate(message)
    try:
        codec.encode(json.dumps(message), ns)
    except EXICodecError as exc:
        assert exc.reason and exc.position is not None


def test_large_streams_take_linear_time(codec):
    """A 400 kB stream (200 000 two-octet characters) is read in well under a second, not quadratically."""
    from station.exi.bitstream import BitWriter

    w = BitWriter()
    w.bits(0x80, 8)
    w.bits(0, 5)  # supportedAppProtocolReq / AppProtocol / ProtocolNamespace / CH
    w.uint(200_000 + 2)
    for _ in range(200_000):
        w.uint(0xE9)  # 'é': two octets each
    data = w.getvalue()
    start = time.perf_counter()
    with pytest.raises(EXICodecError):  # the stream ends inside the AppProtocol element
        codec.decode(data, es.SAP)
    assert time.perf_counter() - start < 2.0
