"""CAN drivers: bus access (python-can, chosen from settings) -> cyclic poller -> codec -> driver.

`bus.py` opens one python-can bus per (interface, channel) and fans frames out to every driver
that subscribed (a DC power-supply driver and a CAN control-pilot board can share `can0`);
`poller.py` is the cyclic sender every CAN device needs (power modules switch off without it);
`infy_codec.py` is the Infypower-style 29-bit module protocol and `infy_supply.py` the
PowerSupply driver on top of it. `infy_sim.py` is a module simulator for the virtual bus.
See docs/can-power-modules.md.
"""
