"""Build hal drivers from their config tables (driver name + settings)."""
from __future__ import annotations

from typing import Any

from hal import registry
from hal.driver import DriverContext
from station.config_model import DriverConfig


def build(kind: str, config: DriverConfig, context: DriverContext) -> Any:
    """The driver instance for `config`. Settings were validated when the config was loaded;
    parse_obj here only fills defaults (and still refuses bad values if called without that)."""
    cls = registry.load(kind, config.driver)
    settings = cls.Settings.parse_obj(config.driver_settings())
    return cls(settings, context)
