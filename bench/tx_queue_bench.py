"""Benchmark: the durable transaction queue. 10,000 TransactionEvents are queued while the CSMS is
away (committed to SQLite WAL, synchronous=FULL), then the CSMS comes back and the station replays them
in order. Prints the commit rate, the queue's disk use per 1,000 events and the replay rate
(target >= 200 events/s).

    .venv/bin/python bench/tx_queue_bench.py [--events 10000]
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

from ocpp.v201 import call  # noqa: E402

from tests.ocpp_support import DevCsms, OcppStation  # noqa: E402
from tests.ocpp_tx_support import tx_config  # noqa: E402


def event(n: int, offline: bool) -> call.TransactionEvent:
    return call.TransactionEvent(
        event_type="Started" if n == 0 else "Updated", timestamp="2026-01-01T00:00:00.000Z",
        trigger_reason="CablePluggedIn" if n == 0 else "MeterValuePeriodic", seq_no=n,
        transaction_info={"transaction_id": "bench-tx", "charging_state": "Charging"}, offline=offline,
        evse={"id": 1, "connector_id": 1},
        meter_value=[{"timestamp": "2026-01-01T00:00:00.000Z", "sampled_value": [
            {"value": 1000.0 + n, "measurand": "Energy.Active.Import.Register", "context": "Sample.Periodic",
             "unit_of_measure": {"unit": "Wh"}},
            {"value": 11000.0, "measurand": "Power.Active.Import", "context": "Sample.Periodic",
             "unit_of_measure": {"unit": "W"}}]}])


async def run(events: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        csms = await DevCsms(port=0, verbose=False).start()
        port = csms.port
        await csms.stop()
        async with OcppStation(tx_config(work, f"ws://127.0.0.1:{port}"), work) as st:
            queue = st.svc.queue
            started = time.monotonic()
            items = [queue.enqueue(event(n, True)) for n in range(events)]
            await items[-1].durable
            commit_s = time.monotonic() - started
            disk = queue.store.disk_bytes()
            sizes = queue.store.file_sizes()
            database = sizes.get("ocpp_queue.sqlite", 0)
            print(f"queued {events} events offline: {events / commit_s:.0f} commits/s "
                  f"(each its own SQLite transaction, synchronous=FULL); {queue.in_memory()} held in memory")
            print(f"disk use: {disk / events * 1000 / 1024:.0f} KiB per 1,000 events in all "
                  f"(database {database / events * 1000 / 1024:.0f} KiB per 1,000; "
                  f"WAL {sizes.get('ocpp_queue.sqlite-wal', 0) / 1024:.0f} KiB, bounded by SQLite's auto-checkpoint)")
            back = await DevCsms(port=port, verbose=False).start()
            try:
                cp = await back.station("TEST-1", timeout=30)
                replay_start = time.monotonic()
                while queue.pending():
                    await asyncio.sleep(0.05)
                replay_s = time.monotonic() - replay_start
                seqs = [p["seq_no"] for p in back.tx_log]
                assert seqs == list(range(events)), "replay out of order or incomplete"
                assert all(p["offline"] for p in back.tx_log)
                print(f"replay after reconnect: {events} events in {replay_s:.1f} s = {events / replay_s:.0f} "
                      f"events/s (target >= 200), in order, each once")
                del cp
            finally:
                await back.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10000)
    args = parser.parse_args()
    logging.getLogger("station.ocpp.link").setLevel(logging.ERROR)  # "cannot reach CSMS" while it is away
    asyncio.run(run(args.events))
    return 0


if __name__ == "__main__":
    sys.exit(main())
