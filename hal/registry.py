"""Drivers chosen by name from config, like python-can's interfaces.

Built-in drivers are listed here; third-party packages add their own through the entry-point
groups `station.hal.<kind>` (e.g. `station.hal.board`), without touching this package.
Modules are imported only when a driver is used, so an unused driver's dependencies
(pyserial, python-can, pymodbus) need not be installed.
"""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

KINDS = ("board", "meter", "token_reader", "power_supply", "isolation_monitor", "plc_modem")

BUILTIN: dict[str, dict[str, str]] = {
    "board": {
        "sim": "hal.sim.board:SimBoard",
        "mcu-cobs": "hal.serial.mcu_board:McuBoard",
        "openevse-rapi": "hal.serial.rapi_board:RapiBoard",
    },
    "meter": {
        "sim": "hal.sim.meter:SimMeter",
        "modbus": "hal.modbus.meter:ModbusMeter",
    },
    "token_reader": {
        "sim": "hal.sim.token_reader:SimTokenReader",
        "none": "hal.sim.token_reader:NoTokenReader",
    },
    "power_supply": {
        "infy-can": "hal.can.infy_supply:InfyPowerSupply",
        "sim": "hal.sim.power_supply:SimPowerSupply",
    },
    "isolation_monitor": {
        "sim": "hal.sim.isolation:SimIsolationMonitor",
    },
    "plc_modem": {
        "sim": "hal.plc_sim:SimPlcModem",
        "homeplug": "hal.plc_raw:HomePlugModem",
    },
}


class DriverNotFound(LookupError):
    def __init__(self, kind: str, name: str, available: list[str]) -> None:
        self.kind, self.name, self.available = kind, name, available
        super().__init__(f"no {kind} driver named {name!r} (available: {', '.join(available) or 'none'})")


def _plugins(kind: str) -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=f"station.hal.{kind}")}


def available(kind: str) -> list[str]:
    return sorted(set(BUILTIN.get(kind, {})) | set(_plugins(kind)))


def load(kind: str, name: str) -> type:
    """The driver class registered for `kind` under `name`."""
    if kind not in KINDS:
        raise ValueError(f"unknown driver kind {kind!r}")
    target = BUILTIN.get(kind, {}).get(name)
    if target is not None:
        module_name, _, attr = target.partition(":")
        return getattr(importlib.import_module(module_name), attr)
    plugin = _plugins(kind).get(name)
    if plugin is not None:
        return plugin.load()
    raise DriverNotFound(kind, name, available(kind))
