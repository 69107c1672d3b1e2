"""Test helpers for the serial board drivers: run a board simulator (scripts/sim_*_board.py) as its
own process behind a pty and talk to it over its stdin/stdout JSON-lines side channel; wait
for board events."""
from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any, Callable

from hal.board import Board, BoardEvent

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


class SimProcess:
    def __init__(self, proc: asyncio.subprocess.Process, pty: str) -> None:
        self.proc = proc
        self.pty = pty
        self._seq = 0

    @classmethod
    async def start(cls, script: str, *args: str) -> "SimProcess":
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(SCRIPTS / script), *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 10)
        ready = json.loads(line)
        assert ready["event"] == "ready", ready
        return cls(proc, ready["pty"])

    async def cmd(self, cmd: str, **fields: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._seq += 1
        self.proc.stdin.write((json.dumps({"cmd": cmd, "id": self._seq, **fields}) + "\n").encode())
        await self.proc.stdin.drain()
        reply = json.loads(await asyncio.wait_for(self.proc.stdout.readline(), 5))
        assert reply.get("id") == self._seq and reply["ok"], reply
        return reply

    async def status(self) -> dict[str, Any]:
        return (await self.cmd("status"))["status"]

    async def wait_status(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 3.0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            status = await self.status()
            if pred(status):
                return status
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"simulator never reached the expected state: {status}")
            await asyncio.sleep(0.02)

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()

    async def close(self) -> None:
        self.kill()
        await self.proc.wait()


class EventRecorder:
    """Collects every event a board emits, and waits for particular ones."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.events: list[BoardEvent] = []
        self._cursor = 0  # wait_for looks at events from here on

    def drain(self) -> list[BoardEvent]:
        """Events emitted so far that were not yet collected."""
        new = []
        while (ev := self.board.next_event_nowait()) is not None:
            new.append(ev)
        self.events += new
        return new

    def skip(self) -> None:
        """Make wait_for look only at events emitted from now on."""
        self.drain()
        self._cursor = len(self.events)

    async def wait_for(self, pred: Callable[[BoardEvent], bool], timeout: float = 3.0) -> BoardEvent:
        """The first event after the last one matched that satisfies `pred`."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            self.drain()
            for i in range(self._cursor, len(self.events)):
                if pred(self.events[i]):
                    self._cursor = i + 1
                    return self.events[i]
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no matching event within {timeout} s; got {self.events[self._cursor:]}")
            await asyncio.sleep(0.005)
