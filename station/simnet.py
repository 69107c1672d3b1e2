"""Network namespaces and veth pairs for simulated SLAC / ISO 15118 sessions: tests, demo, benchmark (root only).

`veth_pair()`: both ends in this namespace (raw-Ethernet SLAC tests). `ev_namespace()`: the EV's
end in its own network namespace, so the SECC and the EV each have an IPv6 link-local address on
their own side of the wire, as over a real PLC link (loopback does not work for the iso15118 package).
Names carry the pid so parallel runs and other test suites do not collide; everything is removed on exit.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Iterator

_counter = itertools.count()
_probe: str | None | bool = False


def skip_reason() -> str | None:
    """Why namespace tests cannot run here, or None."""
    global _probe
    if _probe is not False:
        return _probe  # type: ignore[return-value]
    if os.geteuid() != 0:
        _probe = "needs root (raw AF_PACKET sockets, ip netns, veth)"
    elif shutil.which("ip") is None:
        _probe = "needs iproute2 (`ip`)"
    else:
        name = f"stprobe{os.getpid()}"
        try:
            _run("ip", "netns", "add", name)
            _run("ip", "netns", "del", name)
            _probe = None
        except subprocess.CalledProcessError as exc:
            _probe = f"`ip netns add` does not work here: {exc.stderr.strip()}"
    return _probe  # type: ignore[return-value]


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def _no_dad(interface: str, netns: str | None = None) -> None:
    prefix = ("ip", "netns", "exec", netns) if netns else ()
    _run(*prefix, "sysctl", "-q", "-w", f"net.ipv6.conf.{interface}.accept_dad=0")


def _wait_link_local(interface: str, netns: str | None = None, timeout: float = 5.0) -> str:
    prefix = ("ip", "-n", netns) if netns else ("ip",)
    deadline = time.monotonic() + timeout
    while True:
        out = _run(*prefix, "-6", "addr", "show", "dev", interface, "scope", "link")
        for line in out.splitlines():
            line = line.strip()
            if line.startswith("inet6 fe80") and "tentative" not in line:
                return line.split()[1].split("/")[0]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{interface} got no IPv6 link-local address within {timeout} s")
        time.sleep(0.05)


@dataclass(frozen=True)
class Wire:
    host_if: str  # the station's (SECC's) end, in this namespace
    ev_if: str  # the EV's end
    netns: str | None  # the EV's namespace (None: same as ours)

    def ev_command(self, *cmd: str) -> list[str]:
        """`cmd` run in the EV's namespace."""
        return (["ip", "netns", "exec", self.netns] if self.netns else []) + list(cmd)


def _names() -> tuple[str, str, str]:
    tag = f"{os.getpid() % 100000}{next(_counter)}"
    return f"se{tag}", f"ev{tag}", f"stev{tag}"


@contextlib.contextmanager
def veth_pair() -> Iterator[Wire]:
    host, ev, _ = _names()
    _run("ip", "link", "add", host, "type", "veth", "peer", "name", ev)
    try:
        for name in (host, ev):
            _run("ip", "link", "set", name, "up")
        yield Wire(host, ev, None)
    finally:
        subprocess.run(["ip", "link", "del", host], capture_output=True)


@contextlib.contextmanager
def ev_namespace() -> Iterator[Wire]:
    host, ev, ns = _names()
    _run("ip", "netns", "add", ns)
    try:
        _run("ip", "link", "add", host, "type", "veth", "peer", "name", ev)
        _run("ip", "link", "set", ev, "netns", ns)
        _no_dad(host)
        _no_dad(ev, ns)
        _run("ip", "link", "set", host, "up")
        _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "-n", ns, "link", "set", ev, "up")
        _wait_link_local(host)
        _wait_link_local(ev, ns)
        yield Wire(host, ev, ns)
    finally:
        subprocess.run(["ip", "link", "del", host], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
