"""Power loss at any instant: the station process is SIGKILLed at random moments while two EVSEs run
sessions (10 kills here; bench/tx_crash_bench.py does >= 50). At the end the CSMS has every
TransactionEvent of every transaction, Started to Ended, once each after de-duplication on
(transactionId, seqNo), in seqNo order, nothing missing; open transactions ended with PowerLoss."""
from __future__ import annotations

from pathlib import Path

from tests.crash_run import crash_loop


async def test_sigkill_at_random_points_loses_nothing(tmp_path: Path) -> None:
    counts = await crash_loop(tmp_path, kills=10, seed=4, max_alive_s=2.0)
    print("crash test:", counts)
    assert counts["transactions"] >= 5
    assert counts["missing"] == 0
    assert counts["out_of_order"] == 0
    assert counts["conflicting"] == 0
    assert counts["unended"] == 0
    assert counts["ended_power_loss"] >= 1
    # What the CSMS applied: each event exactly once; every re-send recognised by (transactionId, seqNo).
    assert counts["applied"] == counts["unique"] == counts["received"] - counts["duplicates"]
    assert counts["csms_resends"] == counts["duplicates"] and counts["csms_conflicting"] == 0
