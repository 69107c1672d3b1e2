"""Security profiles 1-3 (OCPP 2.0.1 part 2, A00): TLS context and HTTP Basic credentials.

No fallback: the TLS context trusts only the configured CSMS root (not the system store), requires
TLS 1.2 or later and checks the host name; profile 3 presents the client certificate and sends no
password. A profile's missing file is an error, never a reason to connect with less.
"""
from __future__ import annotations

import base64
import ssl
from pathlib import Path

from station.ocpp.config import OcppConfig


class SecurityConfigError(RuntimeError):
    """The configured profile cannot be set up (missing or unreadable certificate/key file)."""


def ssl_context(config: OcppConfig) -> ssl.SSLContext | None:
    if config.security_profile == 1:
        return None
    assert config.csms_root_ca is not None  # enforced by OcppConfig
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname and CERT_REQUIRED by default
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(cafile=str(config.csms_root_ca))
        if config.security_profile == 3:
            assert config.client_cert is not None and config.client_key is not None
            context.load_cert_chain(str(config.client_cert), str(config.client_key))
    except (OSError, ssl.SSLError) as exc:
        raise SecurityConfigError(f"security profile {config.security_profile}: {exc}") from exc
    return context


def read_password(config: OcppConfig) -> str | None:
    """The configured BasicAuthPassword seed (blocking file read: call from a thread or at start-up)."""
    if config.basic_auth_password_file is not None:
        try:
            text = Path(config.basic_auth_password_file).read_text().strip()
        except OSError as exc:
            raise SecurityConfigError(f"basic_auth_password_file: {exc}") from exc
        if not 16 <= len(text) <= 40:
            raise SecurityConfigError("basic_auth_password_file: the password must be 16-40 characters")
        return text
    return config.basic_auth_password


def basic_auth(identity: str, password: str) -> str:
    token = base64.b64encode(f"{identity}:{password}".encode()).decode()
    return f"Basic {token}"


def endpoint(csms_url: str, identity: str) -> str:
    """OCPP-J: the station identity is the last path segment of the URL."""
    return f"{csms_url.rstrip('/')}/{identity}"
