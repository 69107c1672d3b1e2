"""The simulated world shared by all sim drivers of one station, and its control commands.

One SimWorld per station (`context.resource("sim.world", ...)`): a SimPort per EVSE, the sim
token readers, and `control_handlers()` for the local control endpoint (`station sim ...`).
Handlers raise ValueError with a message naming the bad value and what is allowed.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable

from hal.clock import Clock
from hal.driver import DriverContext
from hal.sim.ev import DEFAULT_PROFILE, PROFILES, profile
from hal.sim.port import EV_ACTIONS, FAULTS, SimPort
from hal.token_reader import TokenPresented

WORLD_KEY = "sim.world"

#: OCPP 2.0.1 IdTokenEnumType values.
TOKEN_TYPES = ("Central", "eMAID", "ISO14443", "ISO15693", "KeyCode", "Local", "MacAddress", "NoAuthorization")

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


class SimWorld:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.ports: dict[int, SimPort] = {}
        self._token_sinks: list[Callable[[TokenPresented], None]] = []

    @staticmethod
    def of(context: DriverContext) -> "SimWorld":
        return context.resource(WORLD_KEY, lambda: SimWorld(context.clock))

    # --- wiring (drivers) ---
    def ensure_port(self, evse_id: int) -> SimPort:
        if evse_id not in self.ports:
            self.ports[evse_id] = SimPort(evse_id, self.clock)
        return self.ports[evse_id]

    def port(self, evse_id: Any) -> SimPort:
        if isinstance(evse_id, bool) or not isinstance(evse_id, int):
            raise ValueError(f"evse must be an integer EVSE id, got {evse_id!r}")
        try:
            return self.ports[evse_id]
        except KeyError:
            known = ", ".join(str(i) for i in sorted(self.ports)) or "none"
            raise ValueError(f"no simulated EVSE {evse_id}; simulated EVSEs: {known}") from None

    def add_token_sink(self, sink: Callable[[TokenPresented], None]) -> None:
        self._token_sinks.append(sink)

    def remove_token_sink(self, sink: Callable[[TokenPresented], None]) -> None:
        if sink in self._token_sinks:
            self._token_sinks.remove(sink)

    # --- world actions ---
    def present_token(self, id_token: str, evse_id: int | None = None, token_type: str = "ISO14443") -> None:
        if not isinstance(id_token, str) or not 1 <= len(id_token) <= 36:
            raise ValueError(f"id_token must be a string of 1..36 characters, got {id_token!r}")
        if token_type not in TOKEN_TYPES:
            raise ValueError(f"unknown token type {token_type!r}; allowed: {', '.join(TOKEN_TYPES)}")
        if evse_id is not None:
            self.port(evse_id)
        if not self._token_sinks:
            raise ValueError('no simulated token reader is running; set [token_reader] driver = "sim"')
        for sink in list(self._token_sinks):
            sink(TokenPresented(id_token, token_type, evse_id))

    def control_handlers(self) -> dict[str, Handler]:
        return {
            "sim.plug": self._cmd_plug,
            "sim.unplug": self._cmd_unplug,
            "sim.token": self._cmd_token,
            "sim.fault": self._cmd_fault,
            "sim.ev": self._cmd_ev,
            "sim.bay": self._cmd_bay,
            "sim.state": self._cmd_state,
            "sim.profiles": self._cmd_profiles,
        }

    async def _cmd_plug(self, args: dict[str, Any]) -> dict[str, Any]:
        _check_args("sim.plug", args, required=("evse",), optional=("profile", "options"))
        port = self.port(args["evse"])
        options = args.get("options") or {}
        if not isinstance(options, dict):
            raise ValueError(f"sim.plug: options must be an object, got {options!r}")
        name = args.get("profile") or DEFAULT_PROFILE
        if not isinstance(name, str):
            raise ValueError(f"sim.plug: profile must be a string, got {name!r}")
        ev_profile = profile(name).with_options(options)
        port.plug(ev_profile)
        return port.state()

    async def _cmd_unplug(self, args: dict[str, Any]) -> dict[str, Any]:
        _check_args("sim.unplug", args, required=("evse",))
        port = self.port(args["evse"])
        port.unplug()
        return port.state()

    async def _cmd_token(self, args: dict[str, Any]) -> dict[str, Any]:
        _check_args("sim.token", args, required=("id_token",), optional=("evse", "token_type"))
        evse, token_type = args.get("evse"), args.get("token_type") or "ISO14443"
        self.present_token(args["id_token"], evse, token_type)
        return {"id_token": args["id_token"], "token_type": token_type, "evse": evse}

    async def _cmd_fault(self, args: dict[str, Any]) -> dict[str, Any]:
        _check_args("sim.fault", args, required=("evse", "fault"), optional=("active",))
        port = self.port(args["evse"])
        active = args.get("active", True)
        if not isinstance(active, bool):
            raise ValueError(f"sim.fault: active must be true or false, got {active!r}")
        port.set_fault(args["fault"], active)
        return port.state()

    async def _cmd_ev(self, args: dict[str, Any]) -> dict[str, Any]:
        _check_args("sim.ev", args, required=("evse", "action"))
        port = self.port(args["evse"])
        port.ev_action(args["action"])
        return port.state()

    async def _cmd_bay(self, args: dict[str, Any]) -> dict[str, Any]:
        _check_args("sim.bay", args, required=("evse", "occupied"))
        if not isinstance(args["occupied"], bool):
            raise ValueError(f"sim.bay: occupied must be true or false, got {args['occupied']!r}")
        port = self.port(args["evse"])
        port.set_bay(args["occupied"])
        return port.state()

    async def _cmd_state(self, args: dict[str, Any]) -> dict[str, Any] | list[dict[str, Any]]:
        _check_args("sim.state", args, optional=("evse",))
        if args.get("evse") is not None:
            return self.port(args["evse"]).state()
        return [self.ports[i].state() for i in sorted(self.ports)]

    async def _cmd_profiles(self, args: dict[str, Any]) -> dict[str, Any]:
        _check_args("sim.profiles", args)
        return {
            "profiles": [p.dict() for p in PROFILES.values()],
            "default": DEFAULT_PROFILE,
            "faults": FAULTS,
            "ev_actions": list(EV_ACTIONS),
            "token_types": list(TOKEN_TYPES),
        }


def _check_args(cmd: str, args: dict[str, Any], required: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> None:
    unknown = sorted(set(args) - set(required) - set(optional))
    if unknown:
        allowed = ", ".join(required + optional) or "none"
        raise ValueError(f"{cmd}: unknown argument(s) {', '.join(unknown)}; allowed: {allowed}")
    missing = [name for name in required if args.get(name) is None]
    if missing:
        raise ValueError(f"{cmd}: missing argument(s) {', '.join(missing)}")
