"""The iso15118 package's SECC Config built from ours (never from its `.env`)."""
from __future__ import annotations

from iso15118.secc.secc_settings import Config
from iso15118.shared.settings import SHARED_CWD, SettingKey, shared_settings
from iso15118.shared.utils import load_requested_auth_modes, load_requested_protocols

from station.iso15118.config import Iso15118Config


def apply_shared_settings(pki_path: object = None, tls_1_3: bool = False) -> None:
    """The package's process-wide settings (normally read from `.env`); message logging off."""
    shared_settings.update({
        SettingKey.PKI_PATH: f"{pki_path}/" if pki_path else SHARED_CWD + "/pki/",
        SettingKey.MESSAGE_LOG_JSON: False,
        SettingKey.MESSAGE_LOG_EXI: False,
        SettingKey.ENABLE_TLS_1_3: tls_1_3,
    })


def secc_config(cfg: Iso15118Config, interface: str) -> Config:
    # Process-wide in the package; the service checks every EVSE asks for the same PKI path.
    apply_shared_settings(cfg.tls.pki_path, cfg.tls.tls_1_3)
    config = Config()
    config.iface = interface
    config.log_level = cfg.log_level.upper()
    config.enforce_tls = cfg.tls.enforce
    config.free_charging_service = False
    config.free_cert_install_service = False
    config.allow_cert_install_service = False  # Plug & Charge comes with the OCPP certificate services
    config.use_cpo_backend = False
    config.supported_protocols = load_requested_protocols(list(cfg.protocols))
    config.supported_auth_options = load_requested_auth_modes(list(cfg.auth_modes))
    config.standby_allowed = False
    return config
