"""Logging set-up: journald-friendly under systemd, short aligned lines on a terminal.

Under systemd our stderr is a stream to journald, which adds its own timestamp and reads a
"<N>" syslog-priority prefix on each line; so there each line is "<N>name: message". Anywhere
else: "2026-11-21 06:00:00.123 INFO    evse1  message". Logger names lose a leading "station."
(ours), so `logging.getLogger("station.evse1")` shows as "evse1".
"""
from __future__ import annotations

import logging
import os
import sys
import time
from typing import TextIO

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

# Third-party loggers and the least severe level they may show (transitions logs every state
# change at INFO; websockets logs every frame at DEBUG; the ocpp package every frame at INFO).
_QUIET = {"transitions": logging.WARNING, "websockets": logging.INFO, "ocpp": logging.WARNING}
#: Quiet loggers that show everything in debug mode (frames are what one debugs with).
_DEBUG_VERBOSE = {"transitions", "ocpp"}

_OWN_PREFIX = "station."
_MARK = "_station_log_handler"  # attribute on the handler we install, for idempotence
_INDENT = "    "


def short_name(name: str) -> str:
    return name[len(_OWN_PREFIX):] if name.startswith(_OWN_PREFIX) else name


def syslog_priority(levelno: int) -> int:
    """Python level -> syslog priority (RFC 5424: 2 crit, 3 err, 4 warning, 6 info, 7 debug)."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


def _body(formatter: logging.Formatter, record: logging.LogRecord) -> list[str]:
    """Message lines, then traceback / stack lines indented under them."""
    lines = record.getMessage().splitlines() or [""]
    extra: list[str] = []
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    if record.exc_text:
        extra += record.exc_text.splitlines()
    if record.stack_info:
        extra += formatter.formatStack(record.stack_info).splitlines()
    return [lines[0]] + [_INDENT + line for line in lines[1:] + extra]


class JournalFormatter(logging.Formatter):
    """ "<N>name: message"; every line of a multi-line record gets the prefix, because journald
    stores each line as its own entry and would otherwise file tracebacks at the default level."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        first, *rest = _body(self, record)
        out = [f"{prefix}{short_name(record.name)}: {first}"]
        out += [prefix + line for line in rest]
        return "\n".join(out)


class TerminalFormatter(logging.Formatter):
    """ "2026-11-21 06:00:00.123 INFO    evse1  message", local time, name column widening to
    the longest name seen (up to a cap) so messages line up."""

    NAME_MIN, NAME_MAX = 5, 20

    def __init__(self) -> None:
        super().__init__()
        self._name_width = self.NAME_MIN

    def format(self, record: logging.LogRecord) -> str:
        name = short_name(record.name)
        self._name_width = min(self.NAME_MAX, max(self._name_width, len(name)))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        head = f"{stamp}.{int(record.msecs):03d} {record.levelname:<7} {name:<{self._name_width}}  "
        first, *rest = _body(self, record)
        return "\n".join([head + first, *rest])


def stream_is_journal(stream: TextIO) -> bool:
    """True if `stream` is the journald stream systemd gave us: $JOURNAL_STREAM is "DEV:INODE" of
    that stream (sd-daemon(3)); checking it, not just its presence, keeps a shell started from
    the service or a redirected stderr on the plain format."""
    value = os.environ.get("JOURNAL_STREAM", "")
    dev, sep, ino = value.partition(":")
    if not sep:
        return False
    try:
        expected = (int(dev), int(ino))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        # Not numbers, or a stream without a real file descriptor (pytest capture, StringIO).
        return False
    return (st.st_dev, st.st_ino) == expected


def setup_logging(level: str = "info", stream: TextIO | None = None) -> logging.Handler:
    """Configure the root logger once: replaces the handler a previous call installed rather than
    adding a second. `level` is one of debug, info, warning, error (any case). Returns the handler."""
    levelno = LEVELS.get(level.lower()) if isinstance(level, str) else None
    if levelno is None:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, got {level!r}")
    stream = stream if stream is not None else sys.stderr

    handler = logging.StreamHandler(stream)
    handler.setFormatter(JournalFormatter() if stream_is_journal(stream) else TerminalFormatter())
    setattr(handler, _MARK, True)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(levelno)

    for name, floor in _QUIET.items():
        # Only in debug mode does transitions speak below WARNING; websockets never goes below
        # INFO. Never *lower* than the chosen level: a child's own level lets records through.
        quiet = levelno if (name in _DEBUG_VERBOSE and levelno == logging.DEBUG) else max(floor, levelno)
        logging.getLogger(name).setLevel(quiet)

    logging.captureWarnings(True)  # Python warnings (deprecations etc.) go to the same place.
    return handler
