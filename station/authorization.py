"""Who may charge, until OCPP decides: free vend or a local token list, and which EVSE a token is for."""
from __future__ import annotations

import logging
from typing import Iterable

from hal.token_reader import TokenPresented
from station.config_model import AuthorizationConfig
from station.evse import Evse

log = logging.getLogger("auth")


class LocalAuthorizer:
    def __init__(self, config: AuthorizationConfig) -> None:
        self.free = config.mode == "free"
        self.tokens = frozenset(config.tokens)

    def accepts(self, id_token: str) -> bool:
        return self.free or id_token in self.tokens


def route_token(token: TokenPresented, evses: Iterable[Evse], authorizer: LocalAuthorizer) -> str:
    """Apply a presented token; returns what happened (for logs and the control endpoint).

    The same token on an EVSE it authorized stops that session; otherwise an accepted token
    authorizes the EVSE it was read at, else the EV waiting for authorization, else the next
    plug-in (authorization first, cable second)."""
    candidates = [e for e in evses if token.evse_id is None or e.id == token.evse_id]
    for evse in candidates:
        if evse.authorized and evse.session is not None and evse.session.id_token == token.id_token:
            evse.deauthorize("StopAuthorized")
            return f"stop on EVSE {evse.id}"
    if not authorizer.accepts(token.id_token):
        log.warning("token %s rejected (not in the local list)", token.id_token)
        return "rejected"
    waiting = [e for e in candidates if e.ev_present and not e.authorized and e.enabled]
    idle = [e for e in candidates if not e.ev_present and e.session is None and e.enabled]
    target = (waiting or idle or [None])[0]
    if target is None:
        log.warning("token %s accepted but no EVSE can take it", token.id_token)
        return "no EVSE available"
    target.authorize(token.id_token, token.token_type)
    return f"authorized EVSE {target.id}"
