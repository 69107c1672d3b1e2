"""Serial board drivers: transport (pyserial on the event loop) -> framing -> codec -> Board.

Two protocols: "mcu-cobs" (our compact binary message set in COBS frames with CRC-32, the
Pionix Yeti style) and "openevse-rapi" (the OpenEVSE RAPI text protocol). See
docs/serial-mcu-protocol.md for both, byte for byte.
"""
