"""Benchmark: the native EXI codec against the iso15118 package's Java codec, same messages.

    .venv/bin/python bench/exi_bench.py [--iterations 300] [--no-jar] [--only CurrentDemandReq ...]

Prints, per message type: median and p99 of encode and decode (ms) for both codecs; codec
start-up time; process RSS (ours) and the JVM's RSS. Messages come from the recorded sessions
(tests/data/exi_sessions.json) plus a few built in, so every figure is for real traffic.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

SESSIONS = os.path.join(HERE, "..", "tests", "data", "exi_sessions.json")
ISO2 = "urn:iso:15118:2:2013:MsgDef"
BUILT_IN = [
    (ISO2, {"V2G_Message": {"Header": {"SessionID": "3F7F4CAA5995E2B5"}, "Body": {"ChargingStatusReq": {}}}}),
    (ISO2, {"V2G_Message": {"Header": {"SessionID": "3F7F4CAA5995E2B5"}, "Body": {"ChargingStatusRes": {
        "ResponseCode": "OK", "EVSEID": "DE*ABC*E123456", "SAScheduleTupleID": 1,
        "EVSEMaxCurrent": {"Multiplier": 0, "Unit": "A", "Value": 32}, "ReceiptRequired": False,
        "AC_EVSEStatus": {"NotificationMaxDelay": 0, "EVSENotification": "None", "RCD": False}}}}}),
]
FOCUS = ("CurrentDemandReq", "CurrentDemandRes", "ChargingStatusReq", "ChargingStatusRes")


def rss_kib(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def child_pids() -> list[int]:
    me = os.getpid()
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == me:
                        out.append(int(pid))
            except OSError:
                pass
    return out


def message_name(text: str) -> str:
    root, body = next(iter(json.loads(text).items()))
    return next(iter(body["Body"])) if root == "V2G_Message" else root


def load_messages() -> dict[tuple[str, str], tuple[str, str]]:
    """(namespace, message type) -> (namespace, json) — one real instance of each."""
    from station.exi.grammar_cache import FRAGMENT_ROOTS

    found = {}
    if os.path.exists(SESSIONS):
        with open(SESSIONS) as f:
            for session, records in json.load(f).items():
                for rec in records:
                    if rec["op"] == "encode" and message_name(rec["json"]) not in FRAGMENT_ROOTS.get(
                            rec["namespace"], ()):  # signed parts are only ever encoded
                        found.setdefault((session.split("_")[0], message_name(rec["json"])),
                                         (rec["namespace"], rec["json"]))
    for ns, msg in BUILT_IN:
        text = json.dumps(msg)
        found.setdefault(("iso2", message_name(text)), (ns, text))
    return found


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def measure(codec, ns: str, text: str, n: int) -> tuple[list[float], list[float]]:
    enc, dec = [], []
    data = codec.encode(text, ns)
    for _ in range(n):
        t = time.perf_counter()
        data = codec.encode(text, ns)
        enc.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        codec.decode(data, ns)
        dec.append((time.perf_counter() - t) * 1000)
    return enc, dec


def main() -> int:
    parser = argparse.ArgumentParser(description="native vs Java EXI codec")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--no-jar", action="store_true")
    parser.add_argument("--only", nargs="*", help="message types to run, e.g. CurrentDemandReq (default: all)")
    args = parser.parse_args()
    rss0 = rss_kib()
    t = time.perf_counter()
    from station.exi import NativeEXICodec

    native = NativeEXICodec(preload=True)  # grammar cache on disk if present
    native_start = time.perf_counter() - t
    t = time.perf_counter()
    NativeEXICodec(preload=True, cache_dir="")
    native_cold = time.perf_counter() - t
    messages = {k: v for k, v in load_messages().items() if not args.only or k[1] in args.only}
    results = {}
    for key, (ns, text) in sorted(messages.items()):
        results[key] = {"native": measure(native, ns, text, args.iterations)}
    native_rss = rss_kib()
    jvm_children = [p for p in child_pids() if "java" in open(f"/proc/{p}/cmdline").read()]
    print(f"native codec: start-up {native_start * 1000:.0f} ms with the grammar cache, "
          f"{native_cold * 1000:.0f} ms building from the XSDs; process RSS {native_rss / 1024:.1f} MiB "
          f"(+{(native_rss - rss0) / 1024:.1f} MiB for codec, grammars, iso15118 schemas); "
          f"JVM processes: {len(jvm_children)}")
    if not args.no_jar:
        from iso15118.shared.exificient_exi_codec import ExificientEXICodec

        t = time.perf_counter()
        jar = ExificientEXICodec()
        jar.get_version()
        jar_start = time.perf_counter() - t
        first = {}
        for key, (ns, text) in sorted(messages.items()):
            t = time.perf_counter()
            data = jar.encode(text, ns)
            first[key] = (time.perf_counter() - t) * 1000
            assert bytes(data) == native.encode(text, ns), f"codecs disagree on {key}"
            results[key]["jar"] = measure(jar, ns, text, args.iterations)
        jvm = [p for p in child_pids() if "java" in open(f"/proc/{p}/cmdline").read()]
        jvm_rss = sum(rss_kib(p) for p in jvm)
        print(f"java codec: start-up {jar_start * 1000:.0f} ms (JVM launch + py4j), JVM RSS {jvm_rss / 1024:.1f} MiB, "
              f"first call per message type median {statistics.median(first.values()):.1f} ms")
    print(f"\n{args.iterations} iterations per message; times in ms (encode = JSON text -> EXI bytes, "
          "decode = EXI bytes -> JSON text)")
    header = f"{'schema':7} {'message type':34} {'native enc med/p99':>19} {'native dec med/p99':>19}"
    if not args.no_jar:
        header += f" {'jar enc med/p99':>17} {'jar dec med/p99':>17} {'speed-up p99':>12}"
    print(header)
    for key, res in sorted(results.items(), key=lambda kv: (kv[0][1] not in FOCUS, kv[0])):
        ne, nd = res["native"]
        line = (f"{key[0]:7} {key[1]:34} {statistics.median(ne):8.3f}/{pct(ne, 0.99):8.3f}  "
                f"{statistics.median(nd):8.3f}/{pct(nd, 0.99):8.3f}")
        if "jar" in res:
            je, jd = res["jar"]
            speed = min(pct(je, 0.99) / pct(ne, 0.99), pct(jd, 0.99) / pct(nd, 0.99))
            line += (f" {statistics.median(je):7.2f}/{pct(je, 0.99):7.2f}  "
                     f"{statistics.median(jd):7.2f}/{pct(jd, 0.99):7.2f} {speed:10.0f}x")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
