"""A simulated Modbus meter: a pymodbus server (TCP on loopback, or RTU on a serial port / pty)
serving whatever a register map describes, from values a test or demo sets.

Live by default: every read moves the voltages a little and integrates energy from power, as a
real meter's registers do. `frozen` serves the same registers forever (a hung meter firmware),
`silent` answers nothing, `ocmf` serves a signed dataset; writing a request code to the map's
request register makes the meter "sign" a new dataset via `sign(context_code) -> bytes`.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable

from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from hal.modbus import register_map as rm


class SimModbusMeter:
    def __init__(self, regmap: rm.RegisterMap, values: dict[str, float], unit_id: int = 1) -> None:
        self.map, self.values, self.unit_id = regmap, dict(values), unit_id
        self.frozen = False
        self.silent = False
        self.ocmf: bytes | None = None
        self.public_key: bytes | None = None
        self.sign: Callable[[int], bytes] | None = None
        self.sign_delay_reads = 1  # reads of the length register that still see 0 after a request
        self.requests: list[int] = []
        self.reads = 0
        self._pending_reads = 0
        self._frozen_words: dict[int, int] | None = None
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    # --- what the registers hold ---------------------------------------------------------

    def words(self, signing: bool = False) -> dict[int, int]:
        out: dict[int, int] = {}
        for name, reg in self.map.registers.items():
            if name in self.values:
                for i, w in enumerate(rm.encode_value(reg, self.values[name], self.map.word_order)):
                    out[reg.address + i] = w
        ocmf = self.map.ocmf
        if ocmf is not None:
            data = self.ocmf if (self.ocmf is not None and not signing) else b""
            out[ocmf.length_address] = len(data)
            out.update({ocmf.data_address + i: w for i, w in enumerate(rm.text_registers(data))})
            if ocmf.public_key_address is not None and self.public_key is not None:
                assert ocmf.public_key_length_address is not None
                out[ocmf.public_key_length_address] = len(self.public_key)
                out.update({ocmf.public_key_address + i: w for i, w in enumerate(rm.text_registers(self.public_key))})
        return out

    def _step(self) -> None:
        """A live meter: voltages jitter in the last digits, energy grows with power."""
        self.reads += 1
        for name in list(self.values):
            if name.startswith("voltage"):
                self.values[name] += 0.01 if self.reads % 2 else -0.01
        self.values["energy_import"] = self.values.get("energy_import", 0.0) + max(0.0, self.values.get("power", 0.0)) * 0.5 / 3600

    def _size(self) -> int:
        top = max(r.address + r.count for r in self.map.registers.values())
        if self.map.ocmf is not None:
            o = self.map.ocmf
            top = max(top, o.length_address + 1, o.data_address + (o.max_bytes + 1) // 2,
                      (o.request_address or 0) + 1, (o.public_key_length_address or 0) + 1,
                      (o.public_key_address or 0) + 500)
        return top + 1

    async def _action(self, function_code: int, start: int, address: int, count: int,
                      registers: list[int], set_values: Any) -> None:
        if self.silent:
            await asyncio.sleep(3600)
        ocmf = self.map.ocmf
        if set_values is not None:
            if ocmf is not None and address == ocmf.request_address and self.sign is not None:
                code = int(set_values[0])
                self.requests.append(code)
                self.ocmf = self.sign(code)
                self._pending_reads = self.sign_delay_reads
            return None
        if ocmf is not None and address == ocmf.length_address and self._pending_reads:
            self._pending_reads -= 1
            words = self.words(signing=True)  # still signing: length 0
        else:
            if not self.frozen:
                self._step()
            if self.frozen and self._frozen_words is not None:
                words = self._frozen_words
            else:
                words = self.words()
                if self.frozen:
                    self._frozen_words = words
        for i in range(count):
            registers[address - start + i] = words.get(address + i, 0)
        return None

    def _device(self) -> SimDevice:
        return SimDevice(id=self.unit_id, simdata=[SimData(0, count=self._size(), datatype=DataType.REGISTERS)],
                         action=self._action)

    # --- serving -------------------------------------------------------------------------

    async def serve_tcp(self, host: str = "127.0.0.1") -> int:
        """Serve on an ephemeral port; returns the port."""
        self._server = ModbusTcpServer(self._device(), address=(host, 0))
        self._task = asyncio.get_running_loop().create_task(self._server.serve_forever())
        for _ in range(200):
            transport = getattr(self._server, "transport", None)
            if transport is not None and getattr(transport, "sockets", None):
                return int(transport.sockets[0].getsockname()[1])
            await asyncio.sleep(0.01)
        raise RuntimeError("simulated Modbus TCP server did not start")

    async def serve_rtu(self, port: str, baudrate: int = 9600) -> None:
        self._server = ModbusSerialServer(self._device(), port=port, baudrate=baudrate)
        self._task = asyncio.get_running_loop().create_task(self._server.serve_forever())
        await asyncio.sleep(0.1)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        self._server = self._task = None
