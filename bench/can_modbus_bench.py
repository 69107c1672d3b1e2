#!/usr/bin/env python3
"""CAN bus load of the infy-can driver and Modbus meter read time, on the test transports.

- CAN: N simulated modules on python-can's `virtual` bus, driver at its default 4 Hz, output on;
  counts frames both ways for a few seconds and converts to load on a 125 kbit/s bus
  (extended data frame with 8 bytes: 131 bits before stuffing, ~150 with typical stuffing).
- Modbus: SDM630 map (2 requests per reading) against a pymodbus server on 127.0.0.1; median and
  p99 of a full read. This is the software cost; on RS-485 at 9600 baud add ~2 x 60 ms of wire time.

    .venv/bin/python bench/can_modbus_bench.py [--modules 1 4 8] [--seconds 3] [--reads 200]
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hal.can import infy_codec as codec  # noqa: E402
from hal.can.infy_sim import InfyModuleSimulator, SimModule  # noqa: E402
from hal.can.infy_supply import InfyPowerSupply, InfySettings  # noqa: E402
from hal.driver import DriverContext  # noqa: E402
from hal.modbus import register_map as rm  # noqa: E402
from hal.modbus.meter import ModbusMeter, ModbusMeterSettings  # noqa: E402
from hal.modbus.sim_meter import SimModbusMeter  # noqa: E402

BITS_PER_FRAME = 150


async def can_load(modules: int, seconds: float) -> None:
    channel = f"bench-{uuid.uuid4().hex}"
    caps = codec.ModuleCapabilities(1000.0, 150.0, 50.0, 15000.0)
    sim = InfyModuleSimulator("virtual", channel, [SimModule(a, caps) for a in range(modules)])
    await sim.start()
    supply = InfyPowerSupply(InfySettings(interface="virtual", channel=channel, modules=list(range(modules))),
                             DriverContext())
    await supply.start()
    while supply.capabilities.max_current_a < 50.0 * modules:
        await asyncio.sleep(0.05)
    await supply.set_output(400.0, 20.0 * modules)
    await supply.set_on(True)
    before, t0 = supply.counters, time.monotonic()
    await asyncio.sleep(seconds)
    after, dt = supply.counters, time.monotonic() - t0
    tx = (after["bus_frames_tx"] - before["bus_frames_tx"]) / dt
    rx = (after["bus_frames_rx"] - before["bus_frames_rx"]) / dt
    load = (tx + rx) * BITS_PER_FRAME / 125_000 * 100
    print(f"CAN  {modules:2d} module(s) @4 Hz: {tx:6.1f} frames/s out, {rx:6.1f} in, "
          f"~{load:4.1f} % of 125 kbit/s")
    await supply.stop()
    await sim.stop()


async def modbus_reads(reads: int) -> None:
    sim = SimModbusMeter(rm.load("sdm630"), {"voltage_l1": 230.0, "voltage_l2": 230.0, "voltage_l3": 230.0,
                                             "current_l1": 16.0, "current_l2": 16.0, "current_l3": 16.0,
                                             "power": 11000.0, "frequency": 50.0, "energy_import": 1e6})
    port = await sim.serve_tcp()
    meter = ModbusMeter(ModbusMeterSettings(register_map="sdm630", transport="tcp", host="127.0.0.1", port=port),
                        DriverContext())
    await meter.start()
    times = []
    for _ in range(reads):
        t0 = time.perf_counter()
        await meter.read()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    print(f"Modbus SDM630 read over TCP loopback ({reads}x, 2 requests each): "
          f"median {statistics.median(times):.2f} ms, p99 {times[int(len(times) * 0.99) - 1]:.2f} ms")
    await meter.stop()
    await sim.stop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modules", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--reads", type=int, default=200)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    for n in args.modules:
        await can_load(n, args.seconds)
    await modbus_reads(args.reads)


if __name__ == "__main__":
    asyncio.run(main())
