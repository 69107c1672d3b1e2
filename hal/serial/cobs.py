"""Consistent Overhead Byte Stuffing: removes every 0x00 from a frame so 0x00 can delimit frames.

After any garbage the receiver is back in step at the next 0x00, which is why the Yeti family
(and we) use it on a UART.
"""
from __future__ import annotations

from typing import Callable


class CobsError(ValueError):
    pass


def encode(data: bytes) -> bytes:
    out = bytearray(b"\x00")
    code_at, code = 0, 1
    for byte in data:
        if byte == 0:
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
            continue
        out.append(byte)
        code += 1
        if code == 0xFF:  # a full block of 254 non-zero bytes has no implied zero after it
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
    out[code_at] = code
    return bytes(out)


def decode(data: bytes) -> bytes:
    """Inverse of `encode` (without the 0x00 delimiter); CobsError on a malformed block."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise CobsError("zero byte inside a COBS frame")
        end = i + code
        if end > n:
            raise CobsError("COBS block runs past the end of the frame")
        block = data[i + 1:end]
        if 0 in block:
            raise CobsError("zero byte inside a COBS frame")
        out += block
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


class FrameDecoder:
    """Splits a byte stream at 0x00 into COBS-decoded, CRC-checked payloads.

    Never raises on bad input: each bad frame is counted under a reason and dropped, and the
    decoder resynchronises at the next delimiter.
    """

    def __init__(
        self, max_encoded: int, check: Callable[[bytes], bytes | None], count: Callable[[str], None]
    ) -> None:
        self._max = max_encoded
        self._check = check  # CRC check: frame -> payload or None
        self._count = count  # count(reason) for every dropped frame
        self._buf = bytearray()
        self._overflow = False

    def feed(self, data: bytes) -> list[bytes]:
        parts = data.split(b"\x00")
        payloads: list[bytes] = []
        for part in parts[:-1]:  # each one ends at a delimiter
            if self._overflow:
                self._overflow = False
                self._buf.clear()
                self._count("oversize")
                continue
            if self._buf:
                self._buf += part
                frame = bytes(self._buf)
                self._buf.clear()
            else:
                frame = part
            if not frame:
                continue  # back-to-back delimiters: idle line, not an error
            if len(frame) > self._max:
                self._count("oversize")
                continue
            payload = self._unpack(frame)
            if payload is not None:
                payloads.append(payload)
        tail = parts[-1]
        if tail and not self._overflow:
            self._buf += tail
            if len(self._buf) > self._max:  # no delimiter in sight: drop until the next one
                self._buf.clear()
                self._overflow = True
        return payloads

    def _unpack(self, frame: bytes) -> bytes | None:
        try:
            raw = decode(frame)
        except CobsError:
            self._count("bad_cobs")
            return None
        if len(raw) < 5:  # type byte + CRC-32 at least
            self._count("runt")
            return None
        payload = self._check(raw)
        if payload is None:
            self._count("bad_crc")
        return payload
