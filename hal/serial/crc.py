"""CRC-32 (IEEE 802.3, the zlib polynomial) appended little-endian to a payload, as the Yeti
family frames do. zlib does the arithmetic; this module only fixes the byte order."""
from __future__ import annotations

import zlib

CRC_LEN = 4


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def append_crc(payload: bytes) -> bytes:
    return payload + crc32(payload).to_bytes(CRC_LEN, "little")


def strip_crc(frame: bytes) -> bytes | None:
    """The payload of `frame` if its trailing CRC-32 matches, else None."""
    if len(frame) < CRC_LEN:
        return None
    payload, tail = frame[:-CRC_LEN], frame[-CRC_LEN:]
    return payload if crc32(payload) == int.from_bytes(tail, "little") else None
