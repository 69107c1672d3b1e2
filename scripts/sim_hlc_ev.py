"""The simulated EV's communication controller, run in the EV's network namespace by tests and the
benchmark: SLAC (hal/sim/slac_ev.py) on its end of the veth pair, then the iso15118 package's own
EVCC (SimEVController) for one session. Reports progress as JSON lines on stdout:
{"event": "ready"} (codec warm) -> {"event": "matched", ...} -> {"event": "done", "ok": ...}.
Reads "go" on stdin before SLAC, so the test can plug the EV in first.

    ip netns exec NS python tests/iso15118_ev.py --iface ev0 --protocol din
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from typing import Any

PROTOCOLS = {
    "din": {"supportedProtocols": ["DIN_SPEC_70121"], "energyTransferMode": "DC_extended"},
    "iso2-ac": {"supportedProtocols": ["ISO_15118_2"], "energyTransferMode": "AC_three_phase_core"},
    "iso2-dc": {"supportedProtocols": ["ISO_15118_2"], "energyTransferMode": "DC_extended"},
    "iso20-dc": {"supportedProtocols": ["ISO_15118_20_DC"], "supportedEnergyServices": ["DC"]},
    "iso20-ac": {"supportedProtocols": ["ISO_15118_20_AC"], "supportedEnergyServices": ["AC"]},
}


def emit(event: str, **data: Any) -> None:
    print(json.dumps({"event": event, "t": time.monotonic(), **data}), flush=True)


def _be_patient(floor_s: float) -> None:
    """Test EV only: wait at least `floor_s` for each SECC response (the standard's 250 ms for
    CurrentDemandRes is too tight for the Java codec on a loaded 2-core CI box; the benchmark
    reports the real figures)."""
    import iso15118.shared.comm_session as comm_session

    class PatientAsyncio:
        def __getattr__(self, name: str) -> Any:
            return getattr(asyncio, name)

        @staticmethod
        async def wait_for(awaitable: Any, timeout: float | None) -> Any:
            return await asyncio.wait_for(awaitable, None if timeout is None else max(timeout, floor_s))

    comm_session.asyncio = PatientAsyncio()  # type: ignore[assignment]


LOOP_REQUESTS = ("CurrentDemandReq", "ChargingStatusReq", "DC_ChargeLoopReq", "AC_ChargeLoopReq")


class PacedCodec:
    """Test EV only: sends charge-loop requests at most every `period` s, as real EVs do (~100 ms),
    so a session's length (and energy) does not depend on how fast the SECC's codec answers."""

    def __init__(self, inner: Any, period: float) -> None:
        self.inner, self.period, self._last = inner, period, 0.0

    def encode(self, message: str, namespace: str) -> bytes:
        if any(name in message[:200] for name in LOOP_REQUESTS):
            wait = self._last + self.period - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # the EV's own process: nothing else of ours waits on it
            self._last = time.monotonic()
        return self.inner.encode(message, namespace)

    def decode(self, stream: bytes, namespace: str) -> str:
        return self.inner.decode(stream, namespace)

    def get_version(self) -> str:
        return self.inner.get_version()

    def close(self) -> None:
        self.inner.close()


async def main(args: argparse.Namespace) -> int:
    from hal.plc_homeplug import RawLink
    from hal.sim.slac_ev import EvSlac, EvSlacOptions
    from station.iso15118 import package

    package.load("error" if not args.verbose else "info",
                 ("iso15118.evcc", "iso15118.evcc.controller.simulator", "iso15118.evcc.evcc_config"))
    from iso15118.evcc import EVCCHandler
    from iso15118.evcc.controller.simulator import SimEVController
    from iso15118.evcc.evcc_config import EVCCConfig

    from station.iso15118.codec import JvmExiCodec, warm_up
    from station.iso15118.secc_config import apply_shared_settings

    apply_shared_settings(args.pki_path)

    if args.patience:
        _be_patient(args.patience)
    codec = JvmExiCodec(args.heap_mb)
    if args.loop_period:
        codec = PacedCodec(codec, args.loop_period)
    if args.warm:
        await asyncio.to_thread(warm_up, codec)
    emit("ready")
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "go"

    link = RawLink(args.iface)
    link.open()
    options = EvSlacOptions(skip=set(args.slac_skip or ()))
    try:
        result = await EvSlac(link, options).run()
    except Exception as exc:  # noqa: BLE001 - reported to the test
        emit("slac_failed", reason=str(exc))
        return 2
    finally:
        link.close()
    emit("matched", nmk=result.nmk.hex(), duration_s=result.duration_s)
    if args.slac_only:
        return 0

    evcc_config = EVCCConfig.parse_obj({**PROTOCOLS[args.protocol], "useTls": args.tls, "isCertInstallNeeded": False,
                                        "chargeLoopCycle": args.loops, "sdpRetryCycles": 1})
    evcc_config.load_raw_values()
    done = asyncio.Event()

    class Ev(SimEVController):
        async def enable_charging(self, enabled: bool) -> None:
            await super().enable_charging(enabled)
            if not enabled:
                done.set()

    handler = EVCCHandler(evcc_config=evcc_config, iface=args.iface, exi_codec=codec, ev_controller=Ev(evcc_config))
    if args.freeze_after:
        asyncio.get_running_loop().call_later(args.freeze_after, lambda: (emit("freezing"), time.sleep(3600)))
    task = asyncio.create_task(handler.start())
    waiter = asyncio.create_task(done.wait())
    await asyncio.wait({task, waiter}, timeout=args.timeout, return_when=asyncio.FIRST_COMPLETED)
    emit("done", ok=done.is_set())
    task.cancel()
    codec.close()
    return 0 if done.is_set() else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--iface", required=True)
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="din")
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--loops", type=int, default=10, help="charge loop cycles (CurrentDemand/ChargingStatus)")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--heap-mb", type=int, default=96)
    parser.add_argument("--warm", action="store_true", help="warm the EV's codec up before SLAC")
    parser.add_argument("--slac-only", action="store_true")
    parser.add_argument("--slac-skip", action="append", help="SLAC message the EV never sends")
    parser.add_argument("--freeze-after", type=float, default=0.0, help="stop answering this long after SLAC")
    parser.add_argument("--pki-path", default=None)
    parser.add_argument("--patience", type=float, default=0.0, help="minimum wait for each SECC response (s)")
    parser.add_argument("--loop-period", type=float, default=0.0, help="minimum charge-loop request period (s)")
    parser.add_argument("--verbose", action="store_true")
    ns = parser.parse_args()
    logging.basicConfig(level=logging.INFO if ns.verbose else logging.ERROR, stream=sys.stderr)
    sys.exit(asyncio.run(main(ns)))
