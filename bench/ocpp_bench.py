"""Benchmark: the station's OCPP client against the raw `ocpp` package, same machine, same run.

    .venv/bin/python bench/ocpp_bench.py [--round-trips 2000] [--starts 3]

1. GetVariables round trips per second, CSMS -> station -> CSMS, one CALL in flight, over a real websocket
   on loopback with schema validation on both sides: through the whole station (robust OCPP-J layer,
   device model) and through a bare `ocpp.v201.ChargePoint` answering the same request. Target >= 0.8x.
2. Process start (`python -m station run`) to BootNotification received by the CSMS. Target <= 1.5 s.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from ocpp.routing import on  # noqa: E402
from ocpp.v201 import ChargePoint, call, call_result  # noqa: E402
from ocpp.v201.enums import Action  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from tests.ocpp_support import DevCsms, OcppStation, ready, station_config  # noqa: E402

ITEMS = [{"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
         {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "Identity"}}]


class RawStation(ChargePoint):
    """The `ocpp` package on its own: answers GetVariables from a dict."""

    @on(Action.get_variables)
    def bench_get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        return call_result.GetVariables(get_variable_result=[
            {"attribute_status": "Accepted", "component": d["component"], "variable": d["variable"],
             "attribute_value": "300"} for d in get_variable_data])


async def round_trips(cp: Any, n: int) -> float:
    request = call.GetVariables(get_variable_data=ITEMS)
    for _ in range(50):  # warm-up (validators, caches)
        await cp.call(request, suppress=False)
    start = time.perf_counter()
    for _ in range(n):
        result = await cp.call(request, suppress=False)
    elapsed = time.perf_counter() - start
    assert result.get_variable_result[0]["attribute_status"] == "Accepted"
    return n / elapsed


async def station_rate(n: int, tmp: Path) -> float:
    csms = await DevCsms(port=0, verbose=False).start()
    try:
        async with OcppStation(station_config(tmp, csms.url), tmp):
            cp = await ready(csms, connection=1)
            return await round_trips(cp, n)
    finally:
        await csms.stop()


async def raw_rate(n: int) -> float:
    csms = await DevCsms(port=0, verbose=False, default_password=None).start()
    try:
        async with connect(f"{csms.url}/RAW-1", subprotocols=["ocpp2.0.1"]) as ws:  # type: ignore[list-item]
            station = RawStation("RAW-1", ws)
            task = asyncio.create_task(station.start())
            cp = await csms.station("RAW-1")
            rate = await round_trips(cp, n)
            task.cancel()
            return rate
    finally:
        await csms.stop()


TOML = """
[station]
id = "BENCH-1"
vendor = "Bench"
model = "Sim"
state_dir = "{state}"
log_level = "warning"
[token_reader]
driver = "sim"
[[evse]]
id = 1
[evse.board]
driver = "sim"
[[evse.connector]]
id = 1
[ocpp]
csms_url = "{url}"
basic_auth_password = "{password}"
"""


async def boot_latency(tmp: Path, starts: int) -> list[float]:
    from tests.ocpp_support import PASSWORD

    csms = await DevCsms(port=0, verbose=False).start()
    figures = []
    try:
        for n in range(starts):
            state = tmp / f"state{n}"
            config = tmp / f"bench{n}.toml"
            config.write_text(TOML.format(state=state, url=csms.url, password=PASSWORD))
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "station", "run", "--config", str(config)], cwd=REPO,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    env={**os.environ, "PYTHONPATH": str(REPO)})
            try:
                cp = await csms.station("BENCH-1", timeout=20, connection=n + 1)
                await cp.wait_for("BootNotification", timeout=20)
                figures.append(time.perf_counter() - t0)
            finally:
                proc.terminate()
                await asyncio.to_thread(proc.wait, 10)
    finally:
        await csms.stop()
    return figures


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--round-trips", type=int, default=2000)
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw1 = await raw_rate(args.round_trips)
        ours = await station_rate(args.round_trips, Path(tmp))
        raw2 = await raw_rate(args.round_trips)
        raw = (raw1 + raw2) / 2  # before and after ours: fair on a machine whose load changes
        print(f"GetVariables round trips/s: raw ocpp {raw:7.0f} ({raw1:.0f}, {raw2:.0f}), station {ours:7.0f}, "
              f"ratio {ours / raw:.2f} (target >= 0.80)")
        boots = await boot_latency(Path(tmp), args.starts)
        print("process start -> BootNotification received: " + ", ".join(f"{b:.2f}" for b in boots)
              + f" s; best {min(boots):.2f} s, worst {max(boots):.2f} s (target <= 1.5 s)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
