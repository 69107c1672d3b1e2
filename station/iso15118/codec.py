"""The iso15118 package's Java EXI codec (EXIficient over py4j), started the way a 512 MB
controller needs it: heap capped, serial GC, one JVM per station shared by every SECC, and warmed
up with one message of each type before the first session (a cold JVM answers the first
CurrentDemandReq in ~200 ms; the EV gives up after 250 ms).

`TimedCodec` wraps any codec and records, per message type, the time from the start of decoding
a request to the end of encoding its response: the SECC's processing time (bench/secc_bench.py).
"""
from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

log = logging.getLogger("station.iso15118.codec")

WARMUP_FILE = Path(__file__).with_name("warmup_messages.json")
KEEP = 2000  # timings kept per message type
_BODY = re.compile(r'"Body"\s*:\s*\{\s*"(\w+)"')
_ROOT = re.compile(r'^\s*\{\s*"(\w+)"')


def jvm_options(heap_mb: int) -> list[str]:
    return [
        "--add-opens", "java.base/java.lang=ALL-UNNAMED",  # what the package passes
        f"-Xmx{heap_mb}m", "-Xms16m",  # cap: the default heap grew to >1 GiB RSS after 6,000 calls
        "-XX:+UseSerialGC",  # smallest footprint; pauses are short at this heap size
        "-XX:TieredStopAtLevel=1",  # C1 only: warm in ~half the time, ~50 MiB less RSS, same per-call speed here
        "-Xss512k", "-XX:ReservedCodeCacheSize=48m", "-XX:MaxMetaspaceSize=128m",
        "-Xshare:auto",
    ]


class JvmExiCodec:
    """IEXICodec over the package's EXICodec.jar in a JVM we start with our own options."""

    def __init__(self, heap_mb: int = 128) -> None:
        from py4j.java_gateway import GatewayParameters, JavaGateway, launch_gateway

        from iso15118.shared.settings import JAR_FILE_PATH

        started = time.monotonic()
        port, self.process = launch_gateway(classpath=JAR_FILE_PATH, die_on_exit=True,
                                            javaopts=jvm_options(heap_mb), return_proc=True)
        self.gateway = JavaGateway(gateway_parameters=GatewayParameters(port=port, auto_convert=False))
        self.exi_codec = self.gateway.jvm.com.siemens.ct.exi.main.cmd.EXICodec()
        self.start_s = time.monotonic() - started
        self.heap_mb = heap_mb
        self._lock = threading.Lock()  # one py4j connection per thread anyway; keep calls ordered

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def encode(self, message: str, namespace: str) -> bytes:
        exi = self.exi_codec.encode(message, namespace)
        if exi is None:
            raise ValueError(self.exi_codec.get_last_encoding_error())
        return exi

    def decode(self, stream: bytes, namespace: str) -> str:
        decoded = self.exi_codec.decode(stream, namespace)
        if decoded is None:
            raise ValueError(self.exi_codec.get_last_decoding_error())
        return decoded

    def get_version(self) -> str:
        return str(self.exi_codec.get_version())

    def close(self) -> None:
        try:
            self.gateway.shutdown()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
        if self.process.poll() is None:
            self.process.kill()


def message_type(json_text: str) -> str:
    """The message's element name: the Body child for DIN / ISO-2, the root for -20 and SAP."""
    match = _BODY.search(json_text, 0, 400) or _ROOT.search(json_text, 0, 100)
    return match.group(1) if match else "?"


class TimedCodec:
    """Wraps a codec; `stats[type]` = SECC processing times (s) for requests of that type."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        # Bounded: a station runs for months; the benchmark needs a few hundred per type.
        self.stats: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=KEEP))
        self.codec_times: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=KEEP))
        self._pending: tuple[str, float] | None = None
        #: (namespace, json) of every message encoded, when recording (warm-up capture).
        self.recorded: dict[str, tuple[str, str]] | None = None

    def encode(self, message: str, namespace: str) -> bytes:
        t0 = time.perf_counter()
        out = self.inner.encode(message, namespace)
        t1 = time.perf_counter()
        kind = message_type(message)
        self.codec_times[f"encode {kind}"].append(t1 - t0)
        if self.recorded is not None:
            self.recorded.setdefault(f"{namespace} {kind}", (namespace, message))
        if self._pending is not None:
            request, started = self._pending
            self.stats[request].append(t1 - started)
            self._pending = None
        return out

    def decode(self, stream: bytes, namespace: str) -> str:
        t0 = time.perf_counter()
        out = self.inner.decode(stream, namespace)
        kind = message_type(out)
        self.codec_times[f"decode {kind}"].append(time.perf_counter() - t0)
        if self.recorded is not None:
            self.recorded.setdefault(f"{namespace} {kind}", (namespace, out))
        if kind.endswith("Req") or kind.endswith("req"):
            self._pending = (kind, t0)
        return out

    def get_version(self) -> str:
        return self.inner.get_version()


HOT = ("CurrentDemand", "ChargingStatus", "ChargeLoop", "PreCharge", "CableCheck")


def warm_up(codec: Any, path: Path = WARMUP_FILE, rounds: int = 1, hot_rounds: int = 3) -> int:
    """Encode and decode one message of every type the SECC meets (`rounds` times; the charge-loop
    types `hot_rounds` more), so the JVM has loaded each type's classes and compiled the hot paths
    before an EV waits on it. Returns the number of calls made."""
    try:
        samples = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        log.warning("no EXI warm-up messages (%s): the first session may be slow", exc)
        return 0
    hot = [s for s in samples if any(h in message_type(s[1]) for h in HOT)]
    calls = 0
    for batch in [samples] * rounds + [hot] * hot_rounds:
        for namespace, message in batch:
            try:
                codec.decode(codec.encode(message, namespace), namespace)
                calls += 2
            except Exception as exc:  # noqa: BLE001 - a sample the codec refuses only costs its warm-up
                log.debug("warm-up of %s failed: %s", message_type(message), exc)
    return calls


_shared: dict[str, Any] = {}
_shared_lock = threading.Lock()


def shared_codec(kind: str = "native", heap_mb: int = 128) -> Any:
    """The station's one EXI codec of `kind`, made ready on first use (blocking: call it in a worker
    thread). "native": our codec (station/exi), grammars built from the package's XSDs now, kept in
    memory only (no pickle from a writable directory to trust). "java": the package's jar in a
    heap-capped JVM, warmed up so the first session does not wait on class loading."""
    with _shared_lock:
        if kind not in _shared:
            started = time.monotonic()
            if kind == "native":
                from station.exi.codec import NativeEXICodec

                codec: Any = NativeEXICodec(preload=True, cache_dir="")
                calls = warm_up(codec, rounds=1, hot_rounds=0)  # real messages through it once
                log.info("native EXI codec ready in %.2f s (%d warm-up calls)", time.monotonic() - started, calls)
            else:
                codec = JvmExiCodec(heap_mb)
                calls = warm_up(codec)
                log.info("EXI codec JVM started in %.1f s (heap cap %d MiB), warmed up with %d calls in %.1f s",
                         codec.start_s, heap_mb, calls, time.monotonic() - started)
            _shared[kind] = codec
        return _shared[kind]
