"""Benchmark: the SECC (iso15118 package + our controller + the package's Java EXI codec) under a
long DC session against the package's own EVCC, over a veth pair into a network namespace.

    sudo .venv/bin/python bench/secc_bench.py [--protocol din|iso2-dc|iso20-dc] [--loops 250] [--heap-mb 128]

Prints: JVM start and warm-up time; per request type the SECC's response time (request decoded ->
response encoded, i.e. our processing plus both codec calls) p50/p99/max for the first (cold-start)
session and for the long session; how many CurrentDemand responses exceeded 25 ms (the SECC budget)
and 250 ms (the EV's timeout); RSS of this Python process and of the JVM after warm-up and after the
session. The EV is patient (waits up to 3 s per response) so a slow response shows in the figures
instead of ending the run. Needs root (ip netns, raw sockets).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rss_mib(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def table(title: str, stats: dict[str, list[float]]) -> None:
    print(f"\n{title}")
    print(f"  {'request':34} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, values in sorted(stats.items()):
        ms = [v * 1000 for v in values]
        print(f"  {name:34} {len(ms):5d} {statistics.median(ms):8.1f} {pct(ms, 0.99):8.1f} {max(ms):8.1f}")


async def run_session(rig, protocol: str, loops: int) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    service = [s for s in rig.station.services if type(s).__name__ == "Iso15118Service"][0]
    service.codec.stats.clear()
    ev = await rig.session(protocol, "dc-ccs", "--loops", str(loops))
    done = await ev.wait_for("done", 60 + loops * 1.0)
    if not done["ok"]:
        print("EV reported a failed session:", await ev.stderr(), file=sys.stderr)
    rig.port.ev_action("hlc-stop")
    rig.port.unplug()
    await ev.close()
    rig.ev = None
    await rig.until(lambda: not rig.hlc.controller.session_active, 15, "session closed")
    return {k: list(v) for k, v in service.codec.stats.items()}


async def main(args: argparse.Namespace) -> int:
    from station import simnet as netns
    from tests.iso15118_rig import HlcRig, station_config

    reason = netns.skip_reason()
    if reason:
        print(f"secc_bench: cannot run here: {reason}")
        return 2
    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="secc_bench"))
    with netns.ev_namespace() as wire:
        cfg = station_config(tmp, wire, kind="dc", jvm_heap_mb=args.heap_mb, ev_silence_timeout_s=10.0,
                             exi_codec=args.codec)
        rss_before = rss_mib()
        started = time.monotonic()
        async with HlcRig(cfg, wire, tmp) as rig:
            service = [s for s in rig.station.services if type(s).__name__ == "Iso15118Service"][0]
            jvm = service.codec.inner if args.codec == "java" else None

            def jvm_rss() -> str:
                return f"JVM RSS {rss_mib(jvm.pid):.0f} MiB" if jvm is not None else "no JVM"

            start = (f"JVM start {jvm.start_s:.1f} s + warm-up (heap cap {jvm.heap_mb} MiB)" if jvm is not None
                     else "native EXI codec (grammars built at start)")
            print(f"SECC up in {time.monotonic() - started:.1f} s: {start}; Python RSS {rss_before:.0f} -> "
                  f"{rss_mib():.0f} MiB, {jvm_rss()}")
            first = await run_session(rig, args.protocol, 10)
            table(f"first session after start ({args.protocol}, 10 loops): SECC response time", first)
            long = await run_session(rig, args.protocol, args.loops)
            table(f"long session ({args.protocol}, {args.loops} loops): SECC response time", long)
            loop_key = next((k for k in long if "CurrentDemand" in k or "ChargeLoop" in k), None)
            if loop_key:
                ms = [v * 1000 for v in long[loop_key]]
                print(f"\n{loop_key}: {len(ms)} cycles, {sum(m > 25 for m in ms)} over 25 ms (SECC budget), "
                      f"{sum(m > 250 for m in ms)} over 250 ms (EV timeout)")
            codec = service.codec.codec_times
            enc = [v for k, vs in codec.items() if k.startswith("encode") for v in vs]
            dec = [v for k, vs in codec.items() if k.startswith("decode") for v in vs]
            if enc and dec:
                print(f"codec alone: encode p50 {statistics.median(enc) * 1000:.1f} ms, "
                      f"decode p50 {statistics.median(dec) * 1000:.1f} ms")
            print(f"memory after the sessions: Python RSS {rss_mib():.0f} MiB, {jvm_rss()}")
            print(f"load average now: {os.getloadavg()[0]:.2f} (2 cores shared: figures scale with it)")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocol", choices=["din", "iso2-dc", "iso20-dc"], default="din")
    parser.add_argument("--loops", type=int, default=250, help="charge loop cycles in the long session (>= 200)")
    parser.add_argument("--heap-mb", type=int, default=128)
    parser.add_argument("--codec", choices=["native", "java"], default="native", help="the SECC's EXI codec")
    sys.exit(asyncio.run(main(parser.parse_args())))
