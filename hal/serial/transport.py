"""A serial port on the asyncio event loop, with no blocking I/O on the loop.

pyserial opens and configures the port (termios: raw, 8N1, baudrate). For ports with a file
descriptor (UARTs, USB adapters, ptys) the loop watches the fd itself (`add_reader` /
`add_writer`) and reads/writes non-blocking. For pyserial URL ports without an fd (`loop://`,
`socket://`, `rfc2217://`) a reader thread and a writer thread do the blocking calls.

The transport never raises on the receive path: a hang-up (the far end of a pty closed, a USB
adapter unplugged) calls `on_lost(reason)` once, and the owner decides when to reopen.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import os
import queue
import threading
from typing import Callable

import serial

log = logging.getLogger(__name__)

READ_CHUNK = 4096


class SerialTransport:
    def __init__(
        self,
        port: str,
        baudrate: int,
        on_data: Callable[[bytes], None],
        on_lost: Callable[[str], None],
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self._on_data = on_data
        self._on_lost = on_lost
        self._serial: serial.SerialBase | None = None
        self._fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._out = bytearray()  # fd mode: bytes the kernel did not take yet
        self._threads: list[threading.Thread] = []
        self._tx_queue: queue.Queue[bytes | None] = queue.Queue()
        self._closing = False

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    async def open(self) -> None:
        """Open the port; raises OSError / serial.SerialException if it cannot be opened."""
        self._loop = asyncio.get_running_loop()
        # Opening a tty can block briefly (drivers, exclusive lock): keep it off the loop.
        ser = await self._loop.run_in_executor(None, self._open_blocking)
        self._serial, self._closing, self._out = ser, False, bytearray()
        try:
            fd = ser.fileno()
        except (AttributeError, NotImplementedError, OSError, serial.SerialException):
            fd = None
        if isinstance(fd, int):
            self._fd = fd
            os.set_blocking(fd, False)
            self._loop.add_reader(fd, self._read_ready)
        else:
            self._fd = None
            self._start_threads(ser)

    def _open_blocking(self) -> serial.SerialBase:
        # A device path is locked (flock) so a second station process cannot share the board.
        exclusive = True if self.port.startswith("/") else None
        return serial.serial_for_url(
            self.port, baudrate=self.baudrate, timeout=0.1, write_timeout=None, exclusive=exclusive
        )

    def write(self, data: bytes) -> bool:
        """Queue bytes for sending; False if the port is not open (nothing queued)."""
        if self._serial is None or self._closing:
            return False
        if self._fd is None:
            self._tx_queue.put(bytes(data))
            return True
        if self._out:  # keep order: append behind what is already waiting
            self._out += data
            return True
        try:
            sent = os.write(self._fd, data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._lost(f"write failed: {exc}")
            return False
        if sent < len(data):
            self._out += data[sent:]
            assert self._loop is not None
            self._loop.add_writer(self._fd, self._write_ready)
        return True

    async def drain(self, timeout: float = 0.5) -> None:
        """Wait (bounded) until queued bytes have been handed to the kernel."""
        deadline = asyncio.get_running_loop().time() + timeout
        while (self._out or not self._tx_queue.empty()) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.005)

    async def close(self) -> None:
        ser = self._serial
        if ser is None:
            return
        self._detach()
        self._serial = None
        if self._threads:
            self._tx_queue.put(None)
            threads, self._threads = self._threads, []
            loop = asyncio.get_running_loop()
            for thread in threads:
                await loop.run_in_executor(None, thread.join, 1.0)
        # Closing a UART can wait for its output to drain in the kernel: off the loop too.
        await asyncio.get_running_loop().run_in_executor(None, ser.close)

    # --- fd mode -------------------------------------------------------------------------

    def _read_ready(self) -> None:
        assert self._fd is not None
        try:
            data = os.read(self._fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            # EIO on a pty slave means the master side closed: the far end is gone.
            reason = "port hung up" if exc.errno == errno.EIO else f"read failed: {exc}"
            self._lost(reason)
            return
        if not data:
            self._lost("port hung up")
            return
        self._on_data(data)

    def _write_ready(self) -> None:
        assert self._fd is not None and self._loop is not None
        try:
            sent = os.write(self._fd, self._out)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lost(f"write failed: {exc}")
            return
        del self._out[:sent]
        if not self._out:
            self._loop.remove_writer(self._fd)

    # --- thread mode (URL ports without an fd) -------------------------------------------

    def _start_threads(self, ser: serial.SerialBase) -> None:
        self._tx_queue = queue.Queue()
        reader = threading.Thread(target=self._reader_thread, args=(ser,), name=f"serial-rx {self.port}", daemon=True)
        writer = threading.Thread(target=self._writer_thread, args=(ser,), name=f"serial-tx {self.port}", daemon=True)
        self._threads = [reader, writer]
        reader.start()
        writer.start()

    def _reader_thread(self, ser: serial.SerialBase) -> None:
        loop = self._loop
        assert loop is not None
        while not self._closing:
            try:
                data = ser.read(max(1, ser.in_waiting))
            except Exception as exc:  # noqa: BLE001 - any failure ends the port the same way
                if not self._closing:
                    loop.call_soon_threadsafe(self._lost, f"read failed: {exc}")
                return
            if data and not self._closing:
                loop.call_soon_threadsafe(self._deliver, data)

    def _deliver(self, data: bytes) -> None:
        if not self._closing:
            self._on_data(data)

    def _writer_thread(self, ser: serial.SerialBase) -> None:
        loop = self._loop
        assert loop is not None
        while True:
            data = self._tx_queue.get()
            if data is None or self._closing:
                return
            try:
                ser.write(data)
            except Exception as exc:  # noqa: BLE001
                if not self._closing:
                    loop.call_soon_threadsafe(self._lost, f"write failed: {exc}")
                return

    # --- common --------------------------------------------------------------------------

    def _detach(self) -> None:
        self._closing = True
        if self._fd is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
        self._fd = None
        self._out = bytearray()

    def _lost(self, reason: str) -> None:
        if self._serial is None or self._closing:
            return
        ser = self._serial
        self._detach()
        self._serial = None
        if self._threads:
            self._tx_queue.put(None)
            self._threads = []  # daemon threads end on their own once the port is closed
        try:
            ser.close()
        except Exception:  # noqa: BLE001 - the port is gone already
            pass
        log.warning("serial port %s lost: %s", self.port, reason)
        self._on_lost(reason)
