"""`[ocpp]` table: where the CSMS is, how the station proves who it is, device-model seed values.

Security profiles (OCPP 2.0.1 part 2, A00): 1 = ws:// + HTTP Basic auth, 2 = wss:// (TLS >= 1.2, the CSMS
certificate checked against `csms_root_ca`) + Basic auth, 3 = wss:// with a client certificate. The URL
scheme must match the profile: the station never falls back to a weaker profile.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Dict, Optional, Union

from pydantic.v1 import BaseModel, Extra, Field, StrictBool, StrictFloat, StrictInt, StrictStr, validator

SeedValue = Union[StrictBool, StrictInt, StrictFloat, StrictStr]


class OcppConfig(BaseModel):
    class Config:
        extra = Extra.forbid
        allow_mutation = False

    #: CSMS endpoint; the station identity is appended as the last path segment (OCPP-J 3.1.1).
    csms_url: str = Field(min_length=5, max_length=512)
    security_profile: int = Field(default=1, ge=1, le=3)
    #: SecurityCtrlr.BasicAuthPassword seed (profiles 1 and 2). A value the CSMS sets later wins.
    basic_auth_password: Optional[str] = Field(default=None, min_length=16, max_length=40)
    #: The same, read from a file (keeps the secret out of the config file). Stripped of whitespace.
    basic_auth_password_file: Optional[Path] = None
    #: PEM file with the CSMS root certificate(s) the server certificate must chain to (profiles 2, 3).
    csms_root_ca: Optional[Path] = None
    #: PEM client certificate chain and its private key (profile 3).
    client_cert: Optional[Path] = None
    client_key: Optional[Path] = None
    #: Largest OCPP-J frame accepted (bytes); larger CALLs get a FormatViolation CALLERROR.
    max_frame_bytes: int = Field(default=65536, ge=4096, le=1048576)
    #: Device-model seeds: "Component.Variable" (or "Component.Variable.Instance") -> value.
    variables: Dict[str, SeedValue] = Field(default_factory=dict)

    @validator("csms_url")
    def _url_scheme(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError("must start with ws:// or wss://")
        return value

    @validator("variables")
    def _known_variables(cls, value: Dict[str, SeedValue]) -> Dict[str, SeedValue]:
        from station.ocpp.dm_catalog import seedable_keys  # late: the catalog imports nothing of ours

        from station.ocpp.device_model import canonical, check_value

        known = seedable_keys()
        unknown = sorted(k for k in value if k not in known)
        if unknown:
            close = difflib.get_close_matches(unknown[0], known, n=1)
            hint = f"did you mean {close[0]}?" if close else "docs/ocpp.md lists the variables"
            raise ValueError(f"unknown device-model variable {unknown[0]}; {hint}")
        for key, seed in value.items():
            problem = check_value(known[key], canonical(seed))
            if problem:
                raise ValueError(f"{key} = {seed!r}: {problem}")
        return value

    # Cross-key rules sit on the later key of each pair so errors name a real key (not __root__).
    @validator("security_profile")
    def _scheme_matches_profile(cls, profile: int, values: dict) -> int:
        url = values.get("csms_url")
        if url is None:
            return profile
        if profile == 1 and url.startswith("wss://"):
            raise ValueError("security_profile 1 uses ws://; for wss:// set security_profile 2 or 3")
        if profile >= 2 and not url.startswith("wss://"):
            raise ValueError(f"security_profile {profile} needs a wss:// csms_url (no fallback to ws://)")
        return profile

    @validator("basic_auth_password_file", always=True)
    def _one_password(cls, path: Optional[Path], values: dict) -> Optional[Path]:
        profile, password = values.get("security_profile"), values.get("basic_auth_password")
        if path is not None and password:
            raise ValueError("set basic_auth_password or basic_auth_password_file, not both")
        if profile in (1, 2) and path is None and not password:
            raise ValueError(f"security_profile {profile} needs basic_auth_password or basic_auth_password_file")
        return path

    @validator("csms_root_ca", always=True)
    def _root_for_tls(cls, path: Optional[Path], values: dict) -> Optional[Path]:
        profile = values.get("security_profile")
        if profile in (2, 3) and path is None:
            raise ValueError(f"security_profile {profile} needs csms_root_ca")
        return path

    @validator("client_key", always=True)
    def _client_certificate(cls, path: Optional[Path], values: dict) -> Optional[Path]:
        if values.get("security_profile") == 3 and (path is None or values.get("client_cert") is None):
            raise ValueError("security_profile 3 needs client_cert and client_key")
        return path
