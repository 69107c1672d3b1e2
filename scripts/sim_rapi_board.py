#!/usr/bin/env python3
"""A simulated OpenEVSE controller speaking RAPI on a pty, with a simple IEC 61851 EV behind it.

Runs as its own process; written from the RAPI description in docs/serial-mcu-protocol.md (after
the OpenEVSE firmware's rapi_proc.cpp) with no import from hal/, so it checks the driver
byte for byte instead of sharing its bugs.

    scripts/sim_rapi_board.py [--boot-mode enabled|sleeping|disabled] [--ev-current 16]

Creates a pty and prints {"event": "ready", "pty": "/dev/pts/N"} on stdout, then reads JSON-lines
commands on stdin and answers each with one JSON line:

    {"cmd": "ev", "state": "A"|"B"|"C"|"D"}   plug / unplug / request / stop
    {"cmd": "status"}                         firmware and EV state
    {"cmd": "mute", "on": true}               stop answering / notifying (or resume)
    {"cmd": "noise", "bytes": 40}             random garbage before every frame sent (0 = off)
    {"cmd": "fault", "state": 6}              enter a fault state (6 = GFCI); 0 clears it
    {"cmd": "reboot"}                         reboot: `$AB`, back to --boot-mode
    {"cmd": "quit"}

Firmware model: enabled -> PWM at the current capacity and the relay closes while the EV is in
C; sleeping ($FS) -> +12 V, relay opens when the EV leaves C or after 3 s; disabled ($FD) -> -12 V,
relay opens at once. Heartbeat supervision ($SY) as the firmware does it: a missed pulse cuts
the current capacity to the fallback (it does not open the relay) until acknowledged ($SY 165).
`$AT` goes out whenever state, pilot, capacity or flags change.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import tty

VERSION = "8.2.1.SIM"
RAPI_VERSION = "5.2.1"
EV_CODES = {"A": 1, "B": 2, "C": 3, "D": 4}
SLEEPING, DISABLED = 0xFE, 0xFF
CHARGING_ON, EV_CONNECTED = 0x0040, 0x0100
SLEEP_RELAY_DELAY_S = 3.0


def xor(data: str) -> int:
    chk = 0
    for ch in data.encode("ascii"):
        chk ^= ch
    return chk


def with_checksum(text: str) -> bytes:
    return f"{text}^{xor(text):02X}\r".encode("ascii")


class OpenEvse:
    def __init__(self, args: argparse.Namespace, master: int) -> None:
        self.args = args
        self.master = master
        self.rx = b""
        self.rx_errors = 0
        self.muted = False
        self.noise = 0
        self.ev = "A"
        self.total_wh = 0.0
        self.boot()

    def boot(self) -> None:
        self.mode = self.args.boot_mode
        self.fault = 0
        self.capacity = 32
        self.max_capacity = 32
        self.relay = False
        self.sleep_since = 0.0
        self.session_ws = 0.0
        self.hs_interval = 0
        self.hs_fallback = 0
        self.hs_last = time.monotonic()
        self.hs_triggered = 0
        self.hs_saved = self.capacity
        self.last_at: tuple[int, int, int, int] | None = None
        self.commands: list[str] = []
        self.send(f"$AB 00 {VERSION}")

    @property
    def evse_state(self) -> int:
        if self.fault:
            return self.fault
        if self.mode == "sleeping":
            return SLEEPING
        if self.mode == "disabled":
            return DISABLED
        return EV_CODES[self.ev]

    @property
    def vflags(self) -> int:
        return (CHARGING_ON if self.relay else 0) | (EV_CONNECTED if self.ev != "A" else 0)

    def amps(self) -> float:
        return min(self.args.ev_current, self.capacity) if self.relay else 0.0

    def evaluate(self, dt: float) -> None:
        now = time.monotonic()
        if self.hs_interval and now - self.hs_last > self.hs_interval:
            if self.hs_fallback < self.capacity:
                self.hs_saved = self.capacity
                self.capacity = max(6, self.hs_fallback)
            self.hs_triggered = 2
            self.hs_last = now
        if self.fault or self.mode == "disabled":
            self.relay = False
        elif self.mode == "sleeping":
            # The firmware lets the EV stop first: open when it leaves C, or after 3 s at most.
            if self.relay and (self.ev != "C" or now - self.sleep_since >= SLEEP_RELAY_DELAY_S):
                self.relay = False
        else:
            self.relay = self.ev == "C"
        if self.relay:
            watts = 230.0 * self.amps()
            self.session_ws += watts * dt
            self.total_wh += watts * dt / 3600
        self.notify()

    def notify(self) -> None:
        at = (self.evse_state, EV_CODES[self.ev], self.capacity, self.vflags)
        if at != self.last_at:
            self.last_at = at
            self.send(f"$AT {at[0]:02x} {at[1]:02x} {at[2]} {at[3]:04x}")

    def send(self, text: str) -> None:
        if self.muted:
            return
        data = with_checksum(text)
        if self.noise:
            data = bytes(random.getrandbits(8) for _ in range(self.noise)) + data
        try:
            os.write(self.master, data)
        except OSError:
            pass  # nobody reads the port: a UART just loses the bytes

    # host -> EVSE
    def on_bytes(self, data: bytes) -> None:
        self.rx += data
        while b"\r" in self.rx:
            line, self.rx = self.rx.split(b"\r", 1)
            start = line.rfind(b"$")
            if start >= 0:
                self.on_line(line[start:].decode("ascii", "replace"))
        if len(self.rx) > 128:
            self.rx, self.rx_errors = b"", self.rx_errors + 1

    def on_line(self, line: str) -> None:
        body, chk = line, None
        for mark in "^*":
            if mark in line:
                body, chk = line.rsplit(mark, 1)
                want = xor(body) if mark == "^" else sum(body.encode()) & 0xFF
                if chk.upper() != f"{want:02X}":
                    self.rx_errors += 1
                    self.reply(False, [], None)
                    return
                break
        tokens = body[1:].split(" ")
        seq = None
        if len(tokens) > 1 and tokens[-1].startswith(":"):
            seq = tokens.pop()[1:]
        if self.muted:
            return
        self.commands.append(" ".join(tokens))
        ok, out = self.execute(tokens[0], tokens[1:])
        self.reply(ok, out, seq)
        self.evaluate(0.0)

    def reply(self, ok: bool, out: list[str], seq: str | None) -> None:
        text = "$" + ("OK" if ok else "NK") + "".join(f" {x}" for x in out) + (f" :{seq}" if seq else "")
        self.send(text)

    def execute(self, cmd: str, args: list[str]) -> tuple[bool, list[str]]:
        if cmd == "FE":
            self.mode = "enabled"
        elif cmd == "FS":
            if self.mode != "sleeping":
                self.sleep_since = time.monotonic()
            self.mode = "sleeping"
        elif cmd == "FD":
            self.mode = "disabled"
        elif cmd == "FR":
            self.boot()
        elif cmd == "SC" and len(args) in (1, 2):
            amps = int(args[0])
            ok = 6 <= amps <= self.max_capacity
            self.capacity = min(max(amps, 6), self.max_capacity)
            return ok, [str(self.capacity)]
        elif cmd == "SY":
            if not args:
                self.hs_last = time.monotonic()
            elif len(args) == 1:
                if int(args[0]) != 165:
                    return False, [str(self.hs_interval), str(self.hs_fallback), str(self.hs_triggered)]
                if self.hs_triggered == 2:
                    self.hs_triggered = 1
                    self.capacity = self.hs_saved
                self.hs_last = time.monotonic()
            elif len(args) == 2:
                self.hs_interval, self.hs_fallback = int(args[0]), int(args[1])
                self.hs_last = time.monotonic()
            else:
                return False, []
            return True, [str(self.hs_interval), str(self.hs_fallback), str(self.hs_triggered)]
        elif cmd == "GS":
            return True, [f"{self.evse_state:02x}", str(int(self.session_ws / 230)), f"{EV_CODES[self.ev]:02x}",
                          f"{self.vflags:04x}"]
        elif cmd == "GC":
            return True, ["6", str(self.max_capacity), str(self.capacity), str(self.max_capacity)]
        elif cmd == "GV":
            return True, [VERSION, RAPI_VERSION]
        elif cmd == "GG":
            return True, [str(int(self.amps() * 1000)), "230000" if self.relay else "0"]
        elif cmd == "GP":
            return True, ["245", "-2560", "-2560"]
        elif cmd == "GU":
            return True, [str(int(self.session_ws)), str(int(self.total_wh))]
        elif cmd == "G0":
            return True, ["1" if self.ev != "A" else "0"]
        else:
            return False, []
        return True, []

    # side channel
    def command(self, req: dict) -> dict:
        cmd = req.get("cmd")
        if cmd == "ev":
            if req.get("state") not in EV_CODES:
                return {"ok": False, "error": f"bad EV state {req.get('state')!r}"}
            self.ev = req["state"]
        elif cmd == "status":
            return {"ok": True, "status": {
                "ev": self.ev, "mode": self.mode, "evse_state": self.evse_state, "relay": self.relay,
                "capacity": self.capacity, "hs_interval": self.hs_interval, "hs_triggered": self.hs_triggered,
                "fault": self.fault, "rx_errors": self.rx_errors, "session_ws": self.session_ws,
                "commands": self.commands[-20:], "muted": self.muted,
            }}
        elif cmd == "mute":
            self.muted = bool(req.get("on", True))
        elif cmd == "noise":
            self.noise = int(req.get("bytes", 0))
        elif cmd == "fault":
            self.fault = int(req.get("state", 0))
        elif cmd == "reboot":
            self.boot()
        elif cmd == "quit":
            raise SystemExit(0)
        else:
            return {"ok": False, "error": f"unknown command {cmd!r}"}
        self.evaluate(0.0)
        return {"ok": True}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boot-mode", choices=("enabled", "sleeping", "disabled"), default="enabled")
    parser.add_argument("--ev-current", type=float, default=16.0, help="what the EV draws at most, A")
    args = parser.parse_args()

    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    evse = OpenEvse(args, master)
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def finish() -> None:
        if not done.done():
            done.set_result(None)

    def on_master() -> None:
        try:
            data = os.read(master, 4096)
        except OSError:
            return
        evse.on_bytes(data)

    stdin_buf = bytearray()

    def on_stdin() -> None:
        data = os.read(sys.stdin.fileno(), 4096)
        if not data:
            finish()
            return
        stdin_buf.extend(data)
        while (nl := stdin_buf.find(b"\n")) >= 0:
            line, stdin_buf[:] = bytes(stdin_buf[:nl]), stdin_buf[nl + 1:]
            if not line.strip():
                continue
            try:
                req = json.loads(line)
                reply = evse.command(req)
            except SystemExit:
                finish()
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
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.02)
            now = time.monotonic()
            evse.evaluate(now - last)
            last = now

    task = asyncio.ensure_future(ticker())
    await done
    task.cancel()


if __name__ == "__main__":
    asyncio.run(main())
