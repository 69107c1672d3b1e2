"""Benchmark / soak: power loss at random instants. The station process (two simulated EVSEs running
sessions against the dev CSMS) is SIGKILLed --kills times at random moments and restarted each time; a
last run delivers what is queued. Prints what the CSMS received: every transaction must be complete
(Started..Ended), each seqNo once after de-duplication, in order, nothing missing.

    .venv/bin/python bench/tx_crash_bench.py [--kills 50] [--seed 1]
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.crash_run import crash_loop  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    # A kill during the opening handshake is expected here: the CSMS's websockets logs would only be noise.
    logging.getLogger("websockets").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        counts = asyncio.run(crash_loop(Path(tmp), args.kills, args.seed))
        took = time.monotonic() - started
    print(f"kills: {counts['kills']} ({took:.0f} s)")
    print(f"transactions: {counts['transactions']} (ended PowerLoss after a kill: {counts['ended_power_loss']}, "
          f"not ended: {counts['unended']})")
    print(f"TransactionEvents received: {counts['received']}, unique (txId, seqNo): {counts['unique']}, "
          f"re-sent duplicates: {counts['duplicates']} (conflicting: {counts['conflicting']})")
    print(f"missing seqNo: {counts['missing']}, out of order: {counts['out_of_order']}")
    print(f"applied by the CSMS (its ledger, keyed by transactionId + seqNo): {counts['applied']}, each exactly once; "
          f"re-sends it acknowledged without applying: {counts['csms_resends']}")
    ok = not (counts["missing"] or counts["out_of_order"] or counts["conflicting"] or counts["unended"]
              or counts["applied"] != counts["unique"] or counts["csms_conflicting"])
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
