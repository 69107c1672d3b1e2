"""Replay of real sessions between the iso15118 package's SECC and EVCC (recorded with the jar).

tests/data/exi_sessions.json comes from scripts/exi_capture_sessions.py: every call the two
sides made to the Java codec. Without Java we check, for each recorded call:
encode: our bytes == the jar's bytes; decode: our JSON == the jar's JSON.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict

import pytest

from station.exi import NativeEXICodec

DATA = os.path.join(os.path.dirname(__file__), "data", "exi_sessions.json")


def _load() -> dict:
    if not os.path.exists(DATA):
        return {}
    with open(DATA) as f:
        return json.load(f)


SESSIONS = _load()


def _name(record: dict) -> str:
    text = record.get("json") or record.get("decoded")
    root, body = next(iter(json.loads(text).items()))
    if root == "V2G_Message":
        return next(iter(body["Body"]))
    return root


@pytest.fixture(scope="module")
def codec():
    return NativeEXICodec(cache_dir="", jar_compat=True)


@pytest.mark.skipif(not SESSIONS, reason="no recorded sessions (run scripts/exi_capture_sessions.py)")
@pytest.mark.parametrize("session", sorted(SESSIONS))
def test_recorded_session_replays_bit_exact(codec, session):
    records = SESSIONS[session]
    assert records, f"session {session} recorded nothing"
    for i, rec in enumerate(records):
        data = bytes.fromhex(rec["exi"])
        where = f"{session} #{i} {rec['op']} {_name(rec)}"
        if rec["op"] == "encode":
            assert codec.encode(rec["json"], rec["namespace"]).hex() == rec["exi"], where
        else:
            assert json.loads(codec.decode(data, rec["namespace"])) == json.loads(rec["decoded"]), where


@pytest.mark.skipif(not SESSIONS, reason="no recorded sessions")
def test_recorded_sessions_cover_the_main_flows(capsys):
    per_schema = defaultdict(set)
    for records in SESSIONS.values():
        for rec in records:
            per_schema[rec["namespace"]].add(_name(rec))
    with capsys.disabled():
        print("\nrecorded session message types per schema:")
        for ns, names in sorted(per_schema.items()):
            print(f"  {ns}: {len(names)}: {', '.join(sorted(names))}")
    assert "CurrentDemandReq" in per_schema.get("urn:iso:15118:2:2013:MsgDef", set())
