"""Bit-packed EXI streams: MSB-first n-bit fields and EXI unsigned integers."""

from __future__ import annotations

from .errors import EXICodecError


class BitWriter:
    """Whole bytes go to a bytearray; at most a few pending bits stay in a small int."""

    __slots__ = ("buf", "acc", "n")

    def __init__(self):
        self.buf = bytearray()
        self.acc = 0  # pending bits, fewer than 32 between calls
        self.n = 0

    def bits(self, value: int, width: int) -> None:
        acc = (self.acc << width) | value
        n = self.n + width
        if n >= 32:
            extra = n & 7
            self.buf += (acc >> extra).to_bytes(n >> 3, "big")
            acc &= (1 << extra) - 1
            n = extra
        self.acc = acc
        self.n = n

    def uint(self, value: int) -> None:
        if value < 128:
            self.bits(value, 8)
            return
        out = 0
        count = 0
        while True:
            low = value & 0x7F
            value >>= 7
            out = (out << 8) | (low | 0x80 if value else low)
            count += 1
            if not value:
                break
        self.bits(out, 8 * count)

    def raw(self, data: bytes) -> None:
        if not self.n:
            self.buf += data
        else:
            self.bits(int.from_bytes(data, "big"), 8 * len(data))

    def getvalue(self) -> bytes:
        pad = -self.n % 8
        tail = (self.acc << pad).to_bytes((self.n + pad) // 8, "big")
        return bytes(self.buf) + tail


class BitReader:
    """Reads from the bytes directly, so each read costs O(width), whatever the stream length."""

    __slots__ = ("data", "total", "pos")

    def __init__(self, data: bytes):
        self.data = data
        self.total = 8 * len(data)
        self.pos = 0

    def peek(self, width: int) -> int:
        """The next `width` bits as an integer, without consuming them."""
        pos = self.pos
        end = pos + width
        if end > self.total:
            raise EXICodecError(f"stream truncated: need {width} bits, {self.total - pos} left", pos)
        last = (end + 7) >> 3
        chunk = int.from_bytes(self.data[pos >> 3:last], "big")
        return (chunk >> ((last << 3) - end)) & ((1 << width) - 1)

    def bits(self, width: int) -> int:
        value = self.peek(width)
        self.pos += width
        return value

    def uint(self, max_bits: int = 0) -> int:
        """EXI unsigned integer; max_bits > 0 bounds the value (a corrupt stream cannot make it huge)."""
        start = self.pos
        result = 0
        shift = 0
        while True:
            octet = self.bits(8)
            result |= (octet & 0x7F) << shift
            shift += 7
            if not octet & 0x80:
                return result
            if max_bits and shift >= max_bits + 7:
                raise EXICodecError(f"unsigned integer longer than {max_bits} bits", start)

    def remaining(self) -> int:
        return self.total - self.pos

    def raw(self, count: int) -> bytes:
        if 8 * count > self.total - self.pos:
            raise EXICodecError(f"stream truncated: {count} bytes announced, {(self.total - self.pos) // 8} left",
                                self.pos)
        if not self.pos & 7:  # byte-aligned: a plain slice
            start = self.pos >> 3
            self.pos += 8 * count
            return bytes(self.data[start:start + count])
        return self.bits(8 * count).to_bytes(count, "big")
