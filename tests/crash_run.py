"""The crash loop shared by tests/test_ocpp_crash.py and bench/tx_crash_bench.py: start the station
process, SIGKILL it at a random moment, again and again, then let a last run deliver what is queued."""
from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

from tests.ocpp_support import REPO, DevCsms
from tests.ocpp_tx_support import audit


async def _spawn(work: Path, url: str, seed: int, *extra: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.crash_station", str(work), url, str(seed), *extra, cwd=str(REPO),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)})


async def crash_loop(work: Path, kills: int, seed: int = 1, max_alive_s: float = 2.5) -> dict[str, Any]:
    """Returns the audit counts plus `kills`."""
    rng = random.Random(seed)
    csms = await DevCsms(port=0, verbose=False).start()
    try:
        for n in range(kills):
            proc = await _spawn(work, csms.url, rng.randrange(1 << 30))
            # Random instant: during start-up, recovery, replay of the queue, or mid-session.
            await asyncio.sleep(rng.uniform(0.3, max_alive_s))
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        proc = await _spawn(work, csms.url, 0, "--drain")
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        await asyncio.wait_for(proc.wait(), 30)
        if line.strip() != b"DRAINED":
            raise AssertionError(f"final run did not drain the queue: {line!r}")
        counts = audit(csms.tx_log)
        counts["kills"] = kills
        # The CSMS's own ledger (scripts/dev_csms.py) must agree with the audit of the wire log.
        counts["applied"] = len(csms.ledger)
        counts["csms_resends"] = csms.resends
        counts["csms_conflicting"] = len(csms.conflicting)
        return counts
    finally:
        await csms.stop()
