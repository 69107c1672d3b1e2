"""A station process for the SIGKILL crash test and benchmark (tests/test_ocpp_crash.py,
bench/tx_crash_bench.py): two simulated EVSEs plugging, charging and unplugging at random against a CSMS,
until the parent kills it. `--drain`: no sessions; print DRAINED once every queued message is delivered.

    python -m tests.crash_station <work dir> <csms url> <seed> [--drain]
"""
from __future__ import annotations

import asyncio
import logging
import random
import sys
from pathlib import Path

from tests.ocpp_support import OcppStation
from tests.ocpp_tx_support import PROFILE, tx_config

VARIABLES = {"SampledDataCtrlr.TxUpdatedInterval": 1, "OCPPCommCtrlr.MessageAttemptInterval.TransactionEvent": 0}


async def sessions(st: OcppStation, evse_id: int, rng: random.Random) -> None:
    while True:
        await st.sim("sim.plug", evse=evse_id, profile=PROFILE)
        await asyncio.sleep(rng.uniform(0.2, 1.5))
        await st.sim("sim.unplug", evse=evse_id)
        await asyncio.sleep(rng.uniform(0.05, 0.3))


async def main(work: Path, url: str, seed: int, drain: bool) -> None:
    cfg = tx_config(work, url, evses=2, variables=VARIABLES, meter={"sign": True})  # signed Begin/End too
    async with OcppStation(cfg, work) as st:
        if drain:
            while not (st.svc.connected and st.svc.outbox.accepted and st.svc.queue.pending() == 0):
                await asyncio.sleep(0.02)
            print("DRAINED", flush=True)
            return
        print("STARTED", flush=True)
        rng = random.Random(seed)
        await asyncio.gather(sessions(st, 1, rng), sessions(st, 2, rng))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), "--drain" in sys.argv[4:]))
