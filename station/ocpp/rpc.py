"""The OCPP-J RPC layer around `ocpp.v201.ChargePoint`, closing the package's gaps (OCPP-J 2.0.1 part 4):

- malformed frames get the CALLERROR the spec asks for, with id "-1" when the id cannot be read; a
  malformed CALLRESULT/CALLERROR gets the spec's silence (it is never answered);
- NotImplemented (action not known) and NotSupported (known, no handler) the spec's way round;
- date-time fields validated; frames over `max_frame_bytes` refused with FormatViolation;
- each CALL runs in its own task, so the receive loop keeps reading CALLRESULTs while a handler works
  (a handler that queued an outgoing CALL cannot deadlock the connection);
- a message id already being processed is not executed again; a repeat of a recently answered id gets
  the same answer again without executing the action twice.

Outgoing CALLs do not go through here directly: see outbox.Outbox (queue, one in flight, MessageTimeout).
"""
from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import re
from collections import OrderedDict
from typing import Any, Callable

from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallError, CallResult, MessageType
from ocpp.v201 import ChargePoint
from ocpp.v201.enums import Action

from station.ocpp.datetime_check import bad_datetimes

log = logging.getLogger("station.ocpp.rpc")
MAX_ID = 36
MAX_DESCRIPTION = 255
KNOWN_ACTIONS = frozenset(a.value for a in Action)
_ID_PREFIX = re.compile(rb'^\s*\[\s*2\s*,\s*"([^"\\]{1,36})"')
_KIND_PREFIX = re.compile(rb'^\s*\[\s*([0-9])')
_answering: contextvars.ContextVar[str | None] = contextvars.ContextVar("answering", default=None)

#: What a gate says about an incoming CALL: None = go ahead, an OCPPError = answer with that CALLERROR,
#: a call_result dataclass = answer with that result without running the handler.
GateAnswer = Any
Gate = Callable[[str, dict[str, Any]], GateAnswer]
#: Extra checks on a CALL before its handler runs: (payload, frame bytes) -> an OCPPError or None.
PreCheck = Callable[[dict[str, Any], int], "OCPPError | None"]


def answering() -> str | None:
    """The id of the CSMS CALL whose handler is running in this task, if any."""
    return _answering.get()


class RpcError(OCPPError):
    def __init__(self, code: str, description: str, details: dict[str, Any] | None = None) -> None:
        self.code, self.description, self.details = code, description, details or {}


def call_error(unique_id: str, code: str, description: str, details: dict[str, Any] | None = None) -> str:
    return json.dumps([MessageType.CallError, unique_id, code, description[:MAX_DESCRIPTION], details or {}],
                      separators=(",", ":"))


class RobustChargePoint(ChargePoint):
    """The station's side of one OCPP-J connection. Subclasses add `@on` handlers."""

    def __init__(self, station_id: str, connection: Any, *, max_frame_bytes: int = 65536,
                 response_timeout: float = 30, answered_cache: int = 64) -> None:
        super().__init__(station_id, connection, response_timeout=response_timeout)
        self.max_frame_bytes = max_frame_bytes
        self.gate: Gate = lambda action, payload: None
        self.prechecks: dict[str, PreCheck] = {}
        self._in_progress: set[str] = set()
        self._answered: OrderedDict[str, str] = OrderedDict()
        self._answered_cache = answered_cache
        self._tasks: set[asyncio.Task[None]] = set()
        self._deferred: dict[str, list[Callable[[], None]]] = {}
        self.counters = {"frames": 0, "calls": 0, "call_errors_sent": 0, "duplicates": 0, "ignored": 0}

    async def start(self) -> None:
        """Read frames until the connection closes (ConnectionClosed propagates to the transport)."""
        try:
            while True:
                await self.route_message(await self._connection.recv())
        finally:
            for task in list(self._tasks):
                task.cancel()

    # ----------------------------------------------------------------- framing
    async def route_message(self, raw_msg: str | bytes) -> None:
        self.counters["frames"] += 1
        size = len(raw_msg)
        if size > self.max_frame_bytes:
            head = raw_msg[:64].encode(errors="replace") if isinstance(raw_msg, str) else bytes(raw_msg[:64])
            kind = _KIND_PREFIX.match(head)
            if kind is not None and kind.group(1) in (b"3", b"4"):
                self.counters["ignored"] += 1  # an oversize response is dropped, never answered
                return
            match = _ID_PREFIX.match(head) if kind is not None and kind.group(1) == b"2" else None
            return await self._reply_error(match.group(1).decode() if match else "-1", "FormatViolation",
                                           f"frame of {size} bytes exceeds the limit of {self.max_frame_bytes}")
        try:
            frame = json.loads(raw_msg)
        except (ValueError, UnicodeDecodeError):
            return await self._reply_error("-1", "RpcFrameworkError", "frame is not valid JSON")
        if not isinstance(frame, list) or not frame:
            return await self._reply_error("-1", "RpcFrameworkError", "frame is not a non-empty JSON array")
        kind = frame[0]
        unique_id = frame[1] if len(frame) > 1 else None
        readable = isinstance(unique_id, str) and 0 < len(unique_id) <= MAX_ID
        if kind not in (MessageType.Call, MessageType.CallResult, MessageType.CallError) or isinstance(kind, bool):
            return await self._reply_error(unique_id if readable else "-1", "MessageTypeNotSupported",
                                           f"message type {kind!r} is not 2, 3 or 4")
        if kind != MessageType.Call:
            return self._on_response(kind, frame, readable)
        if not readable:
            return await self._reply_error("-1", "RpcFrameworkError",
                                           f"message id must be a string of 1-{MAX_ID} characters")
        if len(frame) != 4 or not isinstance(frame[2], str):
            return await self._reply_error(unique_id, "RpcFrameworkError",
                                           "CALL must be [2, messageId, action, payload]")
        if not isinstance(frame[3], dict):
            return await self._reply_error(unique_id, "FormatViolation", "CALL payload must be a JSON object")
        if unique_id in self._in_progress:
            self.counters["duplicates"] += 1
            log.warning("CALL %s is already being processed; not executing it twice", unique_id)
            return
        if unique_id in self._answered:
            self.counters["duplicates"] += 1
            log.warning("CALL %s repeated; sending the earlier answer again", unique_id)
            return await self._send(self._answered[unique_id])
        self.counters["calls"] += 1
        self._in_progress.add(unique_id)
        task = asyncio.create_task(self._serve_call(Call(unique_id, frame[2], frame[3]), size))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_response(self, kind: int, frame: list[Any], readable: bool) -> None:
        # Never answered, whatever is wrong with it (OCPP-J: no reply to a CALLRESULT/CALLERROR).
        try:
            if not readable:
                raise ValueError("unreadable id")
            if kind == MessageType.CallResult and len(frame) == 3 and isinstance(frame[2], dict):
                self._response_queue.put_nowait(CallResult(frame[1], frame[2]))
                return
            if kind == MessageType.CallError and len(frame) == 5 and isinstance(frame[2], str):
                self._response_queue.put_nowait(CallError(*frame[1:]))
                return
            raise ValueError("bad shape")
        except (ValueError, TypeError):
            self.counters["ignored"] += 1
            log.warning("ignoring malformed response frame %.200r", frame)

    # ----------------------------------------------------------------- one CALL
    async def _serve_call(self, msg: Call, size: int) -> None:
        token = _answering.set(msg.unique_id)
        try:
            await self._dispatch(msg, size)
        except OCPPError as error:
            await self._reply_error(msg.unique_id, error.code, error.description, _details(error))
        except Exception:  # noqa: BLE001 - an answer is owed whatever happened
            log.exception("CALL %s %s failed", msg.unique_id, msg.action)
            await self._reply_error(msg.unique_id, "InternalError", "internal error")
        finally:
            _answering.reset(token)
            self._in_progress.discard(msg.unique_id)
            for action in self._deferred.pop(msg.unique_id, []):
                action()

    def after_answer(self, action: Callable[[], None]) -> None:
        """Run `action` once the CALL being handled now has been answered (now, outside a handler)."""
        answering = _answering.get()
        if answering is None or answering not in self._in_progress:
            action()
        else:
            self._deferred.setdefault(answering, []).append(action)

    async def _dispatch(self, msg: Call, size: int) -> None:
        answer = self.gate(msg.action, msg.payload)  # boot state rules come before everything else
        if isinstance(answer, OCPPError):
            raise answer
        if answer is not None:
            return await self._send(msg.create_call_result(_camel(answer)).to_json())
        if msg.action not in self.route_map or "_on_action" not in self.route_map[msg.action]:
            if msg.action in KNOWN_ACTIONS:
                raise RpcError("NotSupported", f"{msg.action} is not supported by this station")
            raise RpcError("NotImplemented", f"unknown action {msg.action[:100]!r}")
        bad = bad_datetimes(msg.action, msg.payload)
        if bad:
            raise RpcError("FormatViolation", f"not an RFC 3339 date-time: {', '.join(bad)[:200]}")
        check = self.prechecks.get(msg.action)
        if check is not None:
            problem = check(msg.payload, size)
            if problem is not None:
                raise problem
        await self._handle_call(msg)

    async def _reply_error(self, unique_id: str, code: str, description: str,
                           details: dict[str, Any] | None = None) -> None:
        self.counters["call_errors_sent"] += 1
        log.warning("CALLERROR %s %s: %s", unique_id, code, description)
        await self._send(call_error(unique_id, code, description, details))

    async def _send(self, message: str) -> None:
        answering = _answering.get()
        if answering is not None:
            self._answered[answering] = message
            if len(self._answered) > self._answered_cache:
                self._answered.popitem(last=False)
        await self._connection.send(message)


def _details(error: OCPPError) -> dict[str, Any]:
    details = error.details if isinstance(error.details, dict) else {}
    try:
        text = json.dumps(details)
    except (TypeError, ValueError):
        return {}
    return details if len(text) < 1000 else {}


def _camel(result: Any) -> dict[str, Any]:
    from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case

    return snake_to_camel_case(remove_nones(serialize_as_dict(result)))
