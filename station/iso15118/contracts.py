"""The Plug & Charge boundary: where contract certificates go once OCPP can check them.

The SECC hands a contract (eMAID, certificate chain, OCSP hash data) to a `ContractAuthority`
and never decides itself. Until the OCPP issue provides one (Authorize with
iso15118CertificateHashData, Get15118EVCertificate, GetCertificateStatus), `NoPlugAndCharge`
rejects every contract, and config refuses auth_modes = ["PnC"].
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol


@dataclass(frozen=True)
class ContractRequest:
    evse_id: int
    emaid: Optional[str]
    certificate_chain: Optional[bytes]
    hash_data: Optional[list[dict[str, str]]]


class ContractAuthority(Protocol):
    async def authorize(self, request: ContractRequest) -> bool:
        """True: contract accepted (OCPP Authorize with certificate hash data said Accepted)."""

    async def ev_certificate(self, evse_id: int, exi_request_b64: str, namespace: str) -> str:
        """Base64 EXI CertificateInstallationRes/UpdateRes from the backend (Get15118EVCertificate)."""


class NoPlugAndCharge:
    async def authorize(self, request: ContractRequest) -> bool:
        return False

    async def ev_certificate(self, evse_id: int, exi_request_b64: str, namespace: str) -> str:
        raise NotImplementedError("certificate installation needs the OCPP certificate services")
