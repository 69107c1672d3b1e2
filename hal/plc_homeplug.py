"""HomePlug Green PHY management messages (MMEs) used by SLAC (ISO 15118-3 Annex A), and a raw
Ethernet link to send and receive them.

Only the fields ISO 15118-3 uses are modelled. Multi-byte HomePlug fields are little-endian
(MMTYPE, MVF length); the rest are byte strings. Frames shorter than 60 bytes are padded, as
Ethernet requires; parsers check lengths and raise MmeError on anything malformed.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import socket
from dataclasses import dataclass

ETH_P_HPAV = 0x88E1
BROADCAST = b"\xff" * 6
MIN_FRAME = 60

# MM base types; | REQ/CNF/IND/RSP
CM_SET_KEY = 0x6008
CM_SLAC_PARM = 0x6064
CM_START_ATTEN_CHAR = 0x6068
CM_ATTEN_CHAR = 0x606C
CM_SLAC_MATCH = 0x607C
CM_MNBC_SOUND = 0x6074
CM_ATTEN_PROFILE = 0x6084
REQ, CNF, IND, RSP = 0, 1, 2, 3

NUM_GROUPS = 58
RUN_ID_LEN = 8


class MmeError(ValueError):
    """A frame that is not a well-formed MME of the type it claims."""


@dataclass(frozen=True)
class Mme:
    dst: bytes
    src: bytes
    mmtype: int
    payload: bytes

    @property
    def base(self) -> int:
        return self.mmtype & ~0x3

    @property
    def kind(self) -> int:
        return self.mmtype & 0x3

    def to_frame(self) -> bytes:
        frame = self.dst + self.src + ETH_P_HPAV.to_bytes(2, "big") + b"\x01" \
            + self.mmtype.to_bytes(2, "little") + b"\x00\x00" + self.payload
        return frame.ljust(MIN_FRAME, b"\x00")

    @classmethod
    def from_frame(cls, frame: bytes) -> "Mme":
        if len(frame) < 19:
            raise MmeError(f"frame of {len(frame)} bytes is shorter than an MME header")
        if int.from_bytes(frame[12:14], "big") != ETH_P_HPAV:
            raise MmeError("not a HomePlug AV frame (EtherType)")
        if frame[14] != 0x01:
            raise MmeError(f"unsupported MM version {frame[14]}")
        return cls(frame[0:6], frame[6:12], int.from_bytes(frame[15:17], "little"), bytes(frame[19:]))


def _need(payload: bytes, n: int, what: str) -> None:
    if len(payload) < n:
        raise MmeError(f"{what}: payload of {len(payload)} bytes, need {n}")


# --- payloads (application type 0 = PEV-EVSE matching, security type 0 = none) ---------------

def slac_parm_req(run_id: bytes) -> bytes:
    return b"\x00\x00" + run_id


def parse_slac_parm_req(p: bytes) -> bytes:
    _need(p, 10, "CM_SLAC_PARM.REQ")
    return p[2:10]


def slac_parm_cnf(ev_mac: bytes, run_id: bytes, num_sounds: int, timeout_100ms: int) -> bytes:
    return BROADCAST + bytes([num_sounds, timeout_100ms, 0x01]) + ev_mac + b"\x00\x00" + run_id


@dataclass(frozen=True)
class SlacParmCnf:
    num_sounds: int
    timeout_100ms: int
    forwarding_sta: bytes
    run_id: bytes


def parse_slac_parm_cnf(p: bytes) -> SlacParmCnf:
    _need(p, 25, "CM_SLAC_PARM.CNF")
    return SlacParmCnf(p[6], p[7], p[9:15], p[17:25])


def start_atten_char_ind(num_sounds: int, timeout_100ms: int, ev_mac: bytes, run_id: bytes) -> bytes:
    return b"\x00\x00" + bytes([num_sounds, timeout_100ms, 0x01]) + ev_mac + run_id


@dataclass(frozen=True)
class StartAttenChar:
    num_sounds: int
    timeout_100ms: int
    forwarding_sta: bytes
    run_id: bytes


def parse_start_atten_char_ind(p: bytes) -> StartAttenChar:
    _need(p, 19, "CM_START_ATTEN_CHAR.IND")
    return StartAttenChar(p[2], p[3], p[5:11], p[11:19])


def mnbc_sound_ind(count_left: int, run_id: bytes) -> bytes:
    return b"\x00\x00" + b"\x00" * 17 + bytes([count_left]) + run_id + b"\x00" * 8 + os.urandom(16)


def parse_mnbc_sound_ind(p: bytes) -> tuple[int, bytes]:
    _need(p, 28, "CM_MNBC_SOUND.IND")
    return p[19], p[20:28]


def atten_profile_ind(ev_mac: bytes, groups: list[int]) -> bytes:
    return ev_mac + bytes([len(groups), 0]) + bytes(groups)


def parse_atten_profile_ind(p: bytes) -> tuple[bytes, list[int]]:
    _need(p, 8, "CM_ATTEN_PROFILE.IND")
    n = p[6]
    _need(p, 8 + n, "CM_ATTEN_PROFILE.IND")
    return p[0:6], list(p[8:8 + n])


def atten_char_ind(ev_mac: bytes, run_id: bytes, num_sounds: int, groups: list[int]) -> bytes:
    return b"\x00\x00" + ev_mac + run_id + b"\x00" * 34 + bytes([num_sounds, len(groups)]) + bytes(groups)


@dataclass(frozen=True)
class AttenChar:
    ev_mac: bytes
    run_id: bytes
    num_sounds: int
    groups: list[int]


def parse_atten_char_ind(p: bytes) -> AttenChar:
    _need(p, 52, "CM_ATTEN_CHAR.IND")
    n = p[51]
    _need(p, 52 + n, "CM_ATTEN_CHAR.IND")
    return AttenChar(p[2:8], p[8:16], p[50], list(p[52:52 + n]))


def atten_char_rsp(ev_mac: bytes, run_id: bytes, result: int = 0) -> bytes:
    return b"\x00\x00" + ev_mac + run_id + b"\x00" * 34 + bytes([result])


def parse_atten_char_rsp(p: bytes) -> tuple[bytes, int]:
    _need(p, 51, "CM_ATTEN_CHAR.RSP")
    return p[8:16], p[50]


def slac_match_req(ev_mac: bytes, evse_mac: bytes, run_id: bytes) -> bytes:
    return b"\x00\x00" + (0x3E).to_bytes(2, "little") + b"\x00" * 17 + ev_mac + b"\x00" * 17 + evse_mac \
        + run_id + b"\x00" * 8


@dataclass(frozen=True)
class SlacMatch:
    ev_mac: bytes
    evse_mac: bytes
    run_id: bytes
    nid: bytes = b""
    nmk: bytes = b""


def parse_slac_match_req(p: bytes) -> SlacMatch:
    _need(p, 58, "CM_SLAC_MATCH.REQ")
    return SlacMatch(p[21:27], p[44:50], p[50:58])


def slac_match_cnf(ev_mac: bytes, evse_mac: bytes, run_id: bytes, nid: bytes, nmk: bytes) -> bytes:
    return b"\x00\x00" + (0x56).to_bytes(2, "little") + b"\x00" * 17 + ev_mac + b"\x00" * 17 + evse_mac \
        + run_id + b"\x00" * 8 + nid + b"\x00" + nmk


def parse_slac_match_cnf(p: bytes) -> SlacMatch:
    _need(p, 90, "CM_SLAC_MATCH.CNF")
    return SlacMatch(p[21:27], p[44:50], p[50:58], p[66:73], p[74:90])


def set_key_req(nid: bytes, nmk: bytes) -> bytes:
    """CM_SET_KEY.REQ: key type NMK, PID 4 (HLE), new EKS 1."""
    return b"\x01" + b"\xaa\xaa\xaa\xaa" + b"\x00" * 4 + b"\x04" + b"\x00\x00" + b"\x00" + b"\x00" + nid \
        + b"\x01" + nmk


def parse_set_key_req(p: bytes) -> tuple[bytes, bytes]:
    _need(p, 38, "CM_SET_KEY.REQ")
    return p[14:21], p[22:38]


def set_key_cnf(result: int = 0) -> bytes:
    return bytes([result]) + b"\x00" * 4 + b"\xaa\xaa\xaa\xaa" + b"\x04\x00\x00\x00\x00"


def parse_set_key_cnf(p: bytes) -> int:
    _need(p, 1, "CM_SET_KEY.CNF")
    return p[0]


def nid_from_nmk(nmk: bytes, security_level: int = 0) -> bytes:
    """NID per HomePlug AV 4.4.3.1: SHA-256 applied 5 times, 52 bits + 2-bit security level."""
    digest = nmk
    for _ in range(5):
        digest = hashlib.sha256(digest).digest()
    nid = bytearray(digest[:7])
    nid[6] = (nid[6] >> 4) | ((security_level & 0x3) << 4)
    return bytes(nid)


def new_nmk() -> bytes:
    return os.urandom(16)


def interface_mac(interface: str) -> bytes:
    """The interface's MAC address from sysfs; OSError if there is no such interface."""
    with open(f"/sys/class/net/{interface}/address") as f:
        return bytes.fromhex(f.read().strip().replace(":", ""))


def mac_str(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


class RawLink:
    """AF_PACKET socket bound to one interface for EtherType 0x88E1, driven by the event loop.

    Opening needs CAP_NET_RAW (root or the ambient capability in the systemd unit)."""

    def __init__(self, interface: str) -> None:
        self.interface = interface
        self._sock: socket.socket | None = None
        self._queue: asyncio.Queue[Mme] = asyncio.Queue(maxsize=256)
        self.mac = b""
        self.dropped = 0
        self._waiters: dict[int, asyncio.Future[Mme]] = {}

    def open(self) -> None:
        self.mac = interface_mac(self.interface)
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_HPAV))
        try:
            sock.bind((self.interface, ETH_P_HPAV))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    def close(self) -> None:
        if self._sock is not None:
            try:
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            except (RuntimeError, ValueError):
                pass
            self._sock.close()
            self._sock = None

    def _readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                frame = self._sock.recv(1518)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            try:
                mme = Mme.from_frame(frame)
            except MmeError:
                self.dropped += 1
                continue
            if mme.src == self.mac:
                continue  # our own broadcast looped back
            if mme.dst not in (self.mac, BROADCAST):
                continue
            waiter = self._waiters.get(mme.mmtype)
            if waiter is not None and not waiter.done():
                waiter.set_result(mme)
                continue
            try:
                self._queue.put_nowait(mme)
            except asyncio.QueueFull:
                self.dropped += 1

    def send(self, dst: bytes, mmtype: int, payload: bytes) -> None:
        if self._sock is None:
            raise RuntimeError(f"link on {self.interface} is not open")
        self._sock.send(Mme(dst, self.mac, mmtype, payload).to_frame())

    async def receive(self, timeout: float) -> Mme | None:
        """The next MME addressed to us, or None after `timeout` seconds."""
        try:
            return await asyncio.wait_for(self._queue.get(), timeout=max(timeout, 0.0))
        except asyncio.TimeoutError:
            return None

    async def expect(self, mmtype: int, timeout: float) -> Mme | None:
        """The next MME of `mmtype` (taken before the general queue sees it), or None on timeout."""
        waiter: asyncio.Future[Mme] = asyncio.get_running_loop().create_future()
        self._waiters[mmtype] = waiter
        try:
            return await asyncio.wait_for(waiter, timeout=timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            self._waiters.pop(mmtype, None)

    def flush(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
