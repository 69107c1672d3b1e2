"""Shared pieces of the transaction tests: station configs with token authorization, sequence checks."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from station.config_model import StationConfig
from tests import rig
from tests.ocpp_support import FAST, PASSWORD

PROFILE = "ac-3ph-16a"


def tx_config(tmp_path: Path, csms_url: str, *, evses: int = 1, tokens: bool = False,
              variables: dict[str, Any] | None = None, meter: dict[str, Any] | None = None,
              board: dict[str, Any] | None = None) -> StationConfig:
    """`station_config` with the local token mode (tokens=True: no free vend, every card goes to OCPP);
    meter / board: extra settings of the sim meter (e.g. {"sign": True}) / sim board."""
    table = {"csms_url": csms_url, "security_profile": 1, "basic_auth_password": PASSWORD,
             "variables": {**FAST, **(variables or {})}}
    extra: dict[str, Any] = {"authorization": {"mode": "local", "tokens": []}} if tokens else {}
    evse = {"meter": {"driver": "sim", **meter}} if meter else None
    return rig.config(tmp_path, evses=evses, evse=evse, board=board, ocpp=table, **extra)


def tx_events(cp: Any, evse_id: int | None = None) -> list[dict[str, Any]]:
    return [p for p in cp.of("TransactionEvent") if evse_id is None or p["evse"]["id"] == evse_id]


def check_sequence(events: list[dict[str, Any]]) -> None:
    """One transaction: Started first, Ended last, seqNo 0..n without gaps."""
    assert [e["seq_no"] for e in events] == list(range(len(events))), [e["seq_no"] for e in events]
    assert events[0]["event_type"] == "Started" and events[-1]["event_type"] == "Ended"
    assert all(e["event_type"] == "Updated" for e in events[1:-1])
    assert len({e["transaction_info"]["transaction_id"] for e in events}) == 1


def audit(tx_log: list[dict[str, Any]]) -> dict[str, int]:
    """What a billing CSMS sees in the TransactionEvents it processed, in arrival order: per transaction,
    each seqNo from 0 to the Ended one exactly once after de-duplication on (transactionId, seqNo) (a
    message re-sent because the station died between the CSMS's answer and its own delete is
    byte-identical: counted in `duplicates`, `conflicting` if not), first arrivals in seqNo order."""
    seen: dict[tuple[str, int], dict[str, Any]] = {}
    per_tx: dict[str, list[int]] = {}
    counts = {"received": len(tx_log), "duplicates": 0, "conflicting": 0, "out_of_order": 0, "missing": 0,
              "transactions": 0, "unended": 0, "ended_power_loss": 0}
    for event in tx_log:
        key = (event["transaction_info"]["transaction_id"], event["seq_no"])
        if key in seen:
            counts["duplicates"] += 1
            counts["conflicting"] += seen[key] != event
            continue
        seen[key] = event
        seqs = per_tx.setdefault(key[0], [])
        if seqs and key[1] < seqs[-1]:
            counts["out_of_order"] += 1
        seqs.append(key[1])
    counts["unique"] = len(seen)
    counts["transactions"] = len(per_tx)
    for tx_id, seqs in per_tx.items():
        last = max(seqs)
        counts["missing"] += last + 1 - len(seqs)
        ended = seen[(tx_id, last)]
        if ended["event_type"] != "Ended" or seen.get((tx_id, 0), {}).get("event_type") != "Started":
            counts["unended"] += 1
        elif ended["transaction_info"].get("stopped_reason") == "PowerLoss":
            counts["ended_power_loss"] += 1
    return counts
