#!/usr/bin/env python3
"""A simulated charger safety MCU speaking "mcu-cobs" on a pty, with a simple IEC 61851 EV behind it.

Runs as its own process; written from docs/serial-mcu-protocol.md with no import from hal/, so
it checks the driver byte for byte instead of sharing its bugs.

    scripts/sim_mcu_board.py [--period 1.0] [--host-timeout 5.0] [--pp 32] [--ev-current 16]

Creates a pty and prints one JSON line on stdout: {"event": "ready", "pty": "/dev/pts/N"}; point
the "mcu-cobs" driver's `port` at that name. Then it reads JSON-lines commands on stdin and
answers each with one JSON line ({"ok": true, ...} or {"ok": false, "error": ...}):

    {"cmd": "ev", "state": "A"|"B"|"C"|"D"|"E"}   plug / unplug / request / stop (E: CP short)
    {"cmd": "status"}                             the MCU's and the EV's state
    {"cmd": "mute", "on": true}                   stop (or resume) sending anything
    {"cmd": "noise", "bytes": 40}                 random garbage before every frame (0 = off)
    {"cmd": "fault", "bit": 1, "on": true}        set/clear an error-flag wire bit (1 = RCD trip)
    {"cmd": "bay", "occupied": true}              the bay sensor (with --bay-sensor) sees a car, or not
    {"cmd": "reboot"}                             MCU reset (reports ResetReason WATCHDOG)
    {"cmd": "quit"}

MCU behaviour: boots with pilot F, no power permission, contactor open. The contactor closes only
while the host allows power, its keep-alive is fresh, PWM runs and the EV is in C, and opens at
once otherwise. Without a host keep-alive for --host-timeout s it goes safe: permission dropped,
pilot F, contactor open, HEARTBEAT_TIMEOUT flag until keep-alives return. It sends every changed
message at once and the full state every --period s.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import struct
import sys
import time
import tty
import zlib

# --- wire format (docs/serial-mcu-protocol.md) -------------------------------------------------

T_SET_PWM, T_ALLOW, T_LOCK, T_RCD, T_RESET, T_HOST_KA = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
T_CP, T_PP, T_CONTACTOR, T_ERRORS, T_TELEMETRY, T_LOCK_STATE, T_MCU_KA, T_RESET_REASON, T_METER, T_BAY = \
    range(0x81, 0x8B)
HOST_FORMATS = {T_SET_PWM: "<H", T_ALLOW: "<B", T_LOCK: "<B", T_RCD: "<B", T_RESET: "<B", T_HOST_KA: "<IB"}
CP_CODES = {"A": 0, "B": 1, "C": 2, "D": 3, "E": 4, "F": 5}
CP_VOLTS = {"A": 12.0, "B": 9.0, "C": 6.0, "D": 3.0, "E": 0.0, "F": -12.0}
BIT_RCD_TRIPPED, BIT_HEARTBEAT = 1, 11
RESET_POWER_ON, RESET_WATCHDOG, RESET_HOST = 0, 1, 2
CAPS = 0b10011  # lock, RCD test, PP
CAP_BAY_SENSOR = 0b100000


def cobs_encode(data: bytes) -> bytes:
    out, block = bytearray(), bytearray()
    for b in data:
        if b:
            block.append(b)
            if len(block) == 254:
                out += bytes([255]) + block
                block = bytearray()
            continue
        out += bytes([len(block) + 1]) + block
        block = bytearray()
    out += bytes([len(block) + 1]) + block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes | None:
    out, i = bytearray(), 0
    while i < len(data):
        code = data[i]
        if code == 0 or i + code > len(data):
            return None
        out += data[i + 1:i + code]
        i += code
        if code < 255 and i < len(data):
            out.append(0)
    return bytes(out)


def wire_frame(payload: bytes) -> bytes:
    return cobs_encode(payload + struct.pack("<I", zlib.crc32(payload) & 0xFFFFFFFF)) + b"\x00"


# --- the simulated MCU ---------------------------------------------------------------------------

class Mcu:
    def __init__(self, args: argparse.Namespace, master: int) -> None:
        self.args = args
        self.master = master
        self.rx_buf = bytearray()
        self.rx_errors = 0
        self.tx_dropped = 0
        self.muted = False
        self.noise = 0
        self.ev = "A"
        self.energy_wh = 0.0
        self.last_sent: dict[int, bytes] = {}
        self.boot(RESET_POWER_ON)

    def boot(self, reason: int) -> None:
        self.booted_at = time.monotonic()
        self.duty = 0  # F
        self.allowed = False
        self.locked = False
        self.bay_occupied = False
        self.errors = 0
        self.host_alive = False
        self.last_keepalive = 0.0
        self.keepalives = 0
        self.contactor = False
        self.last_sent.clear()
        self.send(bytes([T_RESET_REASON, reason]))

    # measured / derived state
    @property
    def cp(self) -> str:
        return "F" if self.duty == 0 else self.ev

    @property
    def pwm_on(self) -> bool:
        return 1 <= self.duty <= 9999

    def offered_current(self) -> float:
        pct = self.duty / 100
        return pct * 0.6 if pct <= 85 else (pct - 64) * 2.5

    def evaluate(self, dt: float) -> None:
        now = time.monotonic()
        if self.host_alive and now - self.last_keepalive > self.args.host_timeout:
            self.host_alive = False
            self.allowed = False
            self.duty = 0
            self.errors |= 1 << BIT_HEARTBEAT
        # Any error except the (informational) heartbeat flag keeps the contactor open.
        faults = self.errors & ~(1 << BIT_HEARTBEAT)
        self.contactor = self.allowed and self.host_alive and self.pwm_on and self.cp == "C" and not faults
        if self.contactor:
            self.energy_wh += 3 * 230.0 * self.current() * dt / 3600

    def current(self) -> float:
        return min(self.args.ev_current, self.offered_current()) if self.contactor else 0.0

    def messages(self) -> dict[int, bytes]:
        amps = self.current()
        cp_high = CP_VOLTS[self.cp]
        cp_low = -12.0 if self.pwm_on else cp_high
        pp = 0 if self.ev == "A" else self.args.pp
        uptime = int((time.monotonic() - self.booted_at) * 1000)
        volts = 2300 if self.contactor else 0
        caps = CAPS | (CAP_BAY_SENSOR if self.args.bay_sensor else 0)
        bay = {T_BAY: bytes([T_BAY, int(self.bay_occupied)])} if self.args.bay_sensor else {}
        return bay | {
            T_MCU_KA: struct.pack("<BIBBBHHB", T_MCU_KA, uptime & 0xFFFFFFFF, 1, caps, 3, 60, 320, int(self.allowed)),
            T_CP: bytes([T_CP, CP_CODES[self.cp]]),
            T_PP: bytes([T_PP, pp]),
            T_CONTACTOR: bytes([T_CONTACTOR, int(self.contactor), int(self.contactor)]),
            T_ERRORS: struct.pack("<BI", T_ERRORS, self.errors),
            T_TELEMETRY: struct.pack("<Bhhhh", T_TELEMETRY, round(cp_high * 100), round(cp_low * 100), 350, 250),
            T_LOCK_STATE: bytes([T_LOCK_STATE, int(self.locked)]),
            T_METER: struct.pack("<BIi3H3H", T_METER, int(self.energy_wh), round(3 * 230.0 * amps),
                                 volts, volts, volts, *(round(amps * 100),) * 3),
        }

    def publish(self, everything: bool) -> None:
        for mtype, payload in self.messages().items():
            if mtype == T_MCU_KA and not everything:
                continue  # uptime always changes: keep-alives only on the period
            if mtype == T_METER and not everything:
                continue
            if everything or self.last_sent.get(mtype) != payload:
                self.send(payload)

    def send(self, payload: bytes) -> None:
        self.last_sent[payload[0]] = payload
        if self.muted:
            return
        data = wire_frame(payload)
        if self.noise:
            data = bytes(random.getrandbits(8) for _ in range(self.noise)) + b"\x00" + data
        try:
            os.write(self.master, data)
        except (BlockingIOError, OSError):
            self.tx_dropped += 1  # nobody reads the port: a UART just loses the bytes

    # host -> MCU
    def on_bytes(self, data: bytes) -> None:
        self.rx_buf += data
        while (end := self.rx_buf.find(0)) >= 0:
            raw, self.rx_buf = bytes(self.rx_buf[:end]), self.rx_buf[end + 1:]
            if raw:
                self.on_frame(raw)
        if len(self.rx_buf) > 256:
            self.rx_buf.clear()
            self.rx_errors += 1

    def on_frame(self, raw: bytes) -> None:
        frame = cobs_decode(raw)
        if frame is None or len(frame) < 5:
            self.rx_errors += 1
            return
        payload, crc = frame[:-4], struct.unpack("<I", frame[-4:])[0]
        fmt = HOST_FORMATS.get(payload[0])
        if crc != zlib.crc32(payload) & 0xFFFFFFFF or fmt is None or len(payload) - 1 != struct.calcsize(fmt):
            self.rx_errors += 1
            return
        fields = struct.unpack(fmt, payload[1:])
        kind = payload[0]
        if kind == T_HOST_KA:
            self.last_keepalive = time.monotonic()
            self.keepalives += 1
            if not self.host_alive:
                self.host_alive = True
                self.errors &= ~(1 << BIT_HEARTBEAT)
        elif kind == T_SET_PWM and fields[0] <= 10000:
            self.duty = fields[0]
        elif kind == T_ALLOW and fields[0] in (0, 1):
            self.allowed = bool(fields[0])
        elif kind == T_LOCK and fields[0] in (0, 1):
            self.locked = bool(fields[0])
        elif kind == T_RCD and fields[0] == 2:
            self.errors &= ~(1 << BIT_RCD_TRIPPED)
        elif kind == T_RESET and fields[0] == 0xA5:
            self.boot(RESET_HOST)
        elif kind != T_RCD:
            self.rx_errors += 1
        self.evaluate(0.0)
        self.publish(everything=False)

    # side channel
    def command(self, req: dict) -> dict:
        cmd = req.get("cmd")
        if cmd == "ev":
            if req.get("state") not in ("A", "B", "C", "D", "E"):
                return {"ok": False, "error": f"bad EV state {req.get('state')!r}"}
            self.ev = req["state"]
        elif cmd == "status":
            return {"ok": True, "status": {
                "ev": self.ev, "cp": self.cp, "duty": self.duty, "allowed": self.allowed,
                "contactor": self.contactor, "host_alive": self.host_alive, "errors": self.errors,
                "locked": self.locked, "energy_wh": self.energy_wh, "rx_errors": self.rx_errors,
                "keepalives": self.keepalives, "muted": self.muted,
            }}
        elif cmd == "mute":
            self.muted = bool(req.get("on", True))
        elif cmd == "noise":
            self.noise = int(req.get("bytes", 0))
        elif cmd == "fault":
            bit = 1 << int(req["bit"])
            self.errors = self.errors | bit if req.get("on", True) else self.errors & ~bit
        elif cmd == "bay":
            self.bay_occupied = bool(req.get("occupied", True))
        elif cmd == "reboot":
            self.boot(RESET_WATCHDOG)
        elif cmd == "quit":
            raise SystemExit(0)
        else:
            return {"ok": False, "error": f"unknown command {cmd!r}"}
        self.evaluate(0.0)
        self.publish(everything=False)
        return {"ok": True}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--period", type=float, default=1.0, help="full-state period, s")
    parser.add_argument("--host-timeout", type=float, default=5.0, help="host keep-alive timeout, s")
    parser.add_argument("--pp", type=int, default=32, help="cable rating reported while plugged, A")
    parser.add_argument("--ev-current", type=float, default=16.0, help="what the EV draws at most, A")
    parser.add_argument("--bay-sensor", action="store_true", help="the board has a parking bay sensor")
    args = parser.parse_args()

    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no line discipline, before the host opens it
    os.set_blocking(master, False)
    mcu = Mcu(args, master)
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def on_master() -> None:
        try:
            data = os.read(master, 4096)
        except (BlockingIOError, OSError):
            return
        mcu.on_bytes(data)

    stdin_buf = bytearray()

    def on_stdin() -> None:
        data = os.read(sys.stdin.fileno(), 4096)
        if not data:
            done.set_result(None) if not done.done() else None
            return
        stdin_buf.extend(data)
        while (nl := stdin_buf.find(b"\n")) >= 0:
            line, stdin_buf[:] = bytes(stdin_buf[:nl]), stdin_buf[nl + 1:]
            if not line.strip():
                continue
            try:
                req = json.loads(line)
                reply = mcu.command(req)
            except SystemExit:
                done.set_result(None) if not done.done() else None
                return
            except (ValueError, KeyError, TypeError) as exc:
                req, reply = {}, {"ok": False, "error": str(exc)}
            if isinstance(req, dict) and "id" in req:
                reply["id"] = req["id"]
            print(json.dumps(reply), flush=True)

    loop.add_reader(master, on_master)
    loop.add_reader(sys.stdin.fileno(), on_stdin)
    print(json.dumps({"event": "ready", "pty": os.ttyname(slave)}), flush=True)

    async def ticker() -> None:
        tick, last, last_full = 0.02, time.monotonic(), 0.0
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            mcu.evaluate(now - last)
            last = now
            full = now - last_full >= args.period
            if full:
                last_full = now
            mcu.publish(everything=full)

    task = asyncio.ensure_future(ticker())
    await done
    task.cancel()


if __name__ == "__main__":
    asyncio.run(main())
