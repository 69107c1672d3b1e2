"""Record the EXI traffic of real sessions between the iso15118 package's SECC and EVCC.

Both run in one process on one network interface (SDP over IPv6 link-local multicast, then
TCP), each with the package's Java codec wrapped in a recorder. Every encode and decode is
stored as {namespace, json, exi, decoded} so tests can replay it without Java:
tests/data/exi_sessions.json. Run it again after upgrading iso15118:

    .venv/bin/python scripts/exi_capture_sessions.py [--iface eth0] [--seconds 25]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "exi_sessions.json")
EV_CONFIGS = {
    "din_dc": {"supportedProtocols": ["DIN_SPEC_70121"], "supportedEnergyServices": ["DC"],
               "energyTransferMode": "DC_extended", "useTls": False},
    "iso2_ac_eim": {"supportedProtocols": ["ISO_15118_2"], "supportedEnergyServices": ["AC"],
                    "energyTransferMode": "AC_three_phase_core", "useTls": False},
    "iso2_dc_eim": {"supportedProtocols": ["ISO_15118_2"], "supportedEnergyServices": ["DC"],
                    "energyTransferMode": "DC_extended", "useTls": False},
    "iso20_ac": {"supportedProtocols": ["ISO_15118_20_AC"], "supportedEnergyServices": ["AC"],
                 "energyTransferMode": "AC_three_phase_core", "useTls": True},
    "iso20_dc": {"supportedProtocols": ["ISO_15118_20_DC"], "supportedEnergyServices": ["DC"],
                 "energyTransferMode": "DC_extended", "useTls": True},
}


class Recorder:
    """IEXICodec wrapper that logs every call (the package's EXI class is a process-wide
    singleton, so SECC and EVCC calls all go through whichever was installed last)."""

    def __init__(self, inner, log: list, side: str):
        self.inner, self.log, self.side = inner, log, side

    def encode(self, message, namespace):
        data = bytes(self.inner.encode(message, namespace))
        self.log.append({"op": "encode", "namespace": namespace, "json": message,
                         "exi": data.hex()})
        return data

    def decode(self, stream, namespace):
        out = self.inner.decode(stream, namespace)
        self.log.append({"op": "decode", "namespace": namespace, "exi": bytes(stream).hex(),
                         "decoded": out})
        return out

    def get_version(self):
        return self.inner.get_version()


async def one_session(name: str, ev_config: dict, iface: str, seconds: float, jar, log: list) -> None:
    from iso15118.evcc import EVCCHandler
    from iso15118.evcc.controller.simulator import SimEVController
    from iso15118.evcc.evcc_config import EVCCConfig
    from iso15118.secc import SECCHandler
    from iso15118.secc.controller.interface import ServiceStatus
    from iso15118.secc.controller.simulator import SimEVSEController
    from iso15118.secc.secc_settings import Config
    from iso15118.shared.messages.enums import AuthEnum
    from iso15118.shared.settings import load_shared_settings

    load_shared_settings()
    config = Config()
    config.load_envs()
    config.iface = iface
    config.supported_auth_options = [AuthEnum.EIM]  # PnC needs the package's test PKI, not shipped
    evse = SimEVSEController()
    await evse.set_status(ServiceStatus.STARTING)
    secc = SECCHandler(exi_codec=Recorder(jar, log, "secc"), evse_controller=evse, config=config)
    evcc_config = EVCCConfig.parse_obj(ev_config)
    evcc_config.load_raw_values()
    evcc = EVCCHandler(evcc_config=evcc_config, iface=iface, exi_codec=Recorder(jar, log, "evcc"),
                       ev_controller=SimEVController(evcc_config))
    tasks = [asyncio.create_task(secc.start(iface))]
    await asyncio.sleep(1.0)
    tasks.append(asyncio.create_task(evcc.start()))
    await asyncio.sleep(seconds)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(f"{name}: {len(log)} codec calls", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iface", default="eth0")
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--only", nargs="*", default=list(EV_CONFIGS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from iso15118.shared.exificient_exi_codec import ExificientEXICodec

    if len(args.only) > 1:  # the package keeps per-process state: one session per process
        for name in args.only:
            subprocess.run([sys.executable, __file__, "--iface", args.iface, "--seconds", str(args.seconds),
                            "--only", name], check=False)
        return 0
    jar = ExificientEXICodec()
    sessions = {}
    if os.path.exists(OUT):
        with open(OUT) as f:
            sessions = json.load(f)
    for name in args.only:
        log: list = []
        try:
            asyncio.run(one_session(name, EV_CONFIGS[name], args.iface, args.seconds, jar, log))
        except Exception as exc:  # report, keep what was recorded
            print(f"{name}: failed: {exc!r}", file=sys.stderr)
        sessions[name] = log
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(sessions, f, indent=1)
    print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
