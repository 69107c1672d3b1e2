"""The one module that talks to pymodbus (3.x; its API moves between minor versions, so every
call is here): one client per TCP endpoint or RS-485 port, shared by the meters on it, one
request at a time (RTU is half duplex; gateways dislike parallel requests too).

Every failure (no connection, timeout, exception response, short answer) is a ModbusLinkError
with a plain reason; the client is closed after a transport failure so the next request
reconnects instead of waiting for pymodbus's own back-off.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException, ModbusIOException

from hal.driver import DriverContext

log = logging.getLogger(__name__)

EXCEPTION_NAMES = {1: "illegal function", 2: "illegal data address", 3: "illegal data value",
                   4: "server device failure", 5: "acknowledge", 6: "server device busy",
                   10: "gateway path unavailable", 11: "gateway target device failed to respond"}


class ModbusLinkError(Exception):
    pass


@dataclass(frozen=True)
class Endpoint:
    transport: str  # "tcp" | "rtu"
    host: str = ""
    port: int = 502
    serial_port: str = ""
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1
    timeout_s: float = 1.0
    retries: int = 1

    @property
    def key(self) -> str:
        where = f"{self.host}:{self.port}" if self.transport == "tcp" else self.serial_port
        return f"modbus:{self.transport}:{where}"

    def describe(self) -> str:
        return f"{self.host}:{self.port}" if self.transport == "tcp" else f"{self.serial_port} ({self.baudrate} baud)"


class ModbusLink:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._client: Any = None
        self._lock = asyncio.Lock()
        self.requests = 0
        self.failures = 0
        self.users = 0

    @staticmethod
    def of(context: DriverContext, endpoint: Endpoint) -> "ModbusLink":
        link = context.resource(endpoint.key, lambda: ModbusLink(endpoint))
        if link.endpoint != endpoint:
            raise ValueError(f"Modbus {endpoint.describe()}: meters on the same line must use the same "
                             "line settings (baudrate, parity, stopbits, timeout_s, retries)")
        return link

    def _make_client(self) -> Any:
        e = self.endpoint
        # reconnect_delay=0: no background reconnects; we reconnect on the next request.
        if e.transport == "tcp":
            return AsyncModbusTcpClient(e.host, port=e.port, timeout=e.timeout_s, retries=e.retries, reconnect_delay=0)
        return AsyncModbusSerialClient(e.serial_port, baudrate=e.baudrate, parity=e.parity, stopbits=e.stopbits,
                                       bytesize=8, timeout=e.timeout_s, retries=e.retries, reconnect_delay=0)

    async def read(self, table: str, address: int, count: int, unit: int) -> list[int]:
        async with self._lock:
            client = await self._connected()
            call = client.read_input_registers if table == "input" else client.read_holding_registers
            response = await self._request(call(address, count=count, device_id=unit),
                                           f"read {table} registers {address}..{address + count - 1}")
            registers = list(getattr(response, "registers", []) or [])
            if len(registers) != count:
                self.failures += 1
                raise ModbusLinkError(f"asked for {count} registers at {address}, got {len(registers)}")
            return registers

    async def write(self, address: int, value: int, unit: int) -> None:
        async with self._lock:
            client = await self._connected()
            await self._request(client.write_register(address, value, device_id=unit),
                                f"write holding register {address}")

    def retain(self) -> None:
        self.users += 1

    async def release(self) -> None:
        """One meter less on this line; the last one closes the connection."""
        self.users = max(0, self.users - 1)
        if self.users == 0:
            async with self._lock:
                self._drop()

    async def _connected(self) -> Any:
        if self._client is None:
            self._client = self._make_client()
        if not self._client.connected:
            try:
                ok = await asyncio.wait_for(self._client.connect(), self.endpoint.timeout_s + 1.0)
            except (asyncio.TimeoutError, OSError, ModbusException) as exc:
                ok = False
                log.debug("Modbus connect to %s failed: %s", self.endpoint.describe(), exc)
            if not ok:
                self.failures += 1
                self._drop()
                raise ModbusLinkError(f"cannot connect to {self.endpoint.describe()}")
        return self._client

    async def _request(self, call: Any, what: str) -> Any:
        self.requests += 1
        e = self.endpoint
        bound = e.timeout_s * (e.retries + 1) + 1.0  # pymodbus's own timeouts, plus margin
        try:
            response = await asyncio.wait_for(call, bound)
        except (asyncio.TimeoutError, ModbusException, OSError) as exc:
            self.failures += 1
            self._drop()
            if isinstance(exc, (asyncio.TimeoutError, ModbusIOException)):
                reason = f"no answer (timeout {e.timeout_s:g} s, {e.retries} retries)"
            else:
                reason = f"{type(exc).__name__}: {exc}"
            raise ModbusLinkError(f"{what}: {reason}") from None
        if response.isError():
            self.failures += 1
            code = getattr(response, "exception_code", None)
            raise ModbusLinkError(f"{what}: exception {code} ({EXCEPTION_NAMES.get(code, 'unknown')})")
        return response

    def _drop(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001 - closing a broken client must not raise
                pass
        self._client = None
