"""The simulated EV's communication side as its own process: scripts/sim_hlc_ev.py (the EV's SLAC and the
iso15118 package's EVCC) in the EV's network namespace, reporting JSON events on stdout. Used by the
demo, the SECC tests and the SECC benchmark."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from station.simnet import Wire

REPO = Path(__file__).resolve().parent.parent
EV_SCRIPT = REPO / "scripts" / "sim_hlc_ev.py"


class EvProcess:
    """scripts/sim_hlc_ev.py in the EV's namespace; JSON events from its stdout."""

    def __init__(self, wire: Wire, *args: str) -> None:
        self.wire = wire
        self.args = args
        self.proc: asyncio.subprocess.Process | None = None
        self.events: list[dict[str, Any]] = []
        self._new = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> "EvProcess":
        cmd = self.wire.ev_command(sys.executable, str(EV_SCRIPT), "--iface", self.wire.ev_if, *self.args)
        self.proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            cwd=str(REPO), env={**os.environ, "PYTHONPATH": str(REPO)})
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                continue
            self._new.set()

    async def wait_for(self, name: str, timeout: float) -> dict[str, Any]:
        async def find() -> dict[str, Any]:
            while True:
                for event in self.events:
                    if event["event"] == name:
                        return event
                if self.proc is not None and self.proc.returncode is not None and self._reader and self._reader.done():
                    raise AssertionError(f"EV exited ({self.proc.returncode}) before {name!r}: {self.events}; "
                                         f"stderr: {await self.stderr()}")
                self._new.clear()
                await self._new.wait()
        try:
            return await asyncio.wait_for(find(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"no {name!r} from the EV within {timeout} s; got {self.events}") from None

    def go(self) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")

    def freeze(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    async def stderr(self) -> str:
        if self.proc is None or self.proc.stderr is None:
            return ""
        try:
            data = await asyncio.wait_for(self.proc.stderr.read(), 2.0)
        except asyncio.TimeoutError:
            return "(stderr still open)"
        return data.decode(errors="replace")[-3000:]

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            try:
                self.proc.send_signal(signal.SIGCONT)
                self.proc.kill()
            except ProcessLookupError:
                pass
            await self.proc.wait()
        if self._reader is not None:
            self._reader.cancel()
