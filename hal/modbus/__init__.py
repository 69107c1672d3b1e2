"""Modbus meters (pymodbus 3.x, RTU or TCP): register maps are data (profiles/meters/*.toml),
`register_map.py` loads and decodes them, `link.py` is the only module that calls pymodbus,
`meter.py` is the Meter driver "modbus" with stale-value detection and OCMF pass-through.
See docs/meters.md.
"""
