"""ISO 15118 / DIN 70121 for the station: SLAC start, the iso15118 package's SECC and our
EVSEControllerInterface bridging it to the EVSE state machine and the HAL.

Importing this package is cheap: the iso15118 package (and its JVM) load only when a service
starts (station/iso15118/package.py).
"""
