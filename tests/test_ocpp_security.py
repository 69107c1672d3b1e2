"""Security profiles 2 and 3 over real TLS on loopback, with certificates made here (`cryptography`):
the CSMS certificate is checked against the configured root only, expired certificates are refused,
profile 3 presents the client certificate, and a profile never falls back to a weaker one."""
from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic.v1 import ValidationError

from station.ocpp.security import ssl_context
from tests.ocpp_support import PASSWORD, DevCsms, OcppStation, eventually, ready, station_config

NOW = dt.datetime.now(dt.timezone.utc)


class Pki:
    def __init__(self, root: Path) -> None:
        self.root = root

    def key(self) -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def ca(self, name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey, Path]:
        key = self.key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(days=1))
                .not_valid_after(NOW + dt.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        path = self.root / f"{name}.pem"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cert, key, path

    def leaf(self, name: str, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey, Path], *, server: bool,
             expired: bool = False) -> tuple[Path, Path]:
        ca_cert, ca_key, _ = ca
        key = self.key()
        start, end = (NOW - dt.timedelta(days=10), NOW - dt.timedelta(days=1)) if expired else \
            (NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=10))
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                   .issuer_name(ca_cert.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        cert_path, key_path = self.root / f"{name}.crt", self.root / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return cert_path, key_path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pki")
    pki = Pki(root)
    csms_ca, other_ca, station_ca = pki.ca("csms-root"), pki.ca("other-root"), pki.ca("station-root")
    server_cert, server_key = pki.leaf("csms", csms_ca, server=True)
    old_cert, old_key = pki.leaf("csms-expired", csms_ca, server=True, expired=True)
    client_cert, client_key = pki.leaf("TEST-1", station_ca, server=False)
    rogue_cert, rogue_key = pki.leaf("TEST-1-rogue", other_ca, server=False)
    return {"csms_root": csms_ca[2], "other_root": other_ca[2], "station_root": station_ca[2],
            "server_cert": server_cert, "server_key": server_key, "expired_cert": old_cert, "expired_key": old_key,
            "client_cert": client_cert, "client_key": client_key, "rogue_cert": rogue_cert, "rogue_key": rogue_key}


def server_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)
    return context


async def test_profile_2_tls_checked_against_csms_root(tmp_path: Path, pki: dict[str, Path]) -> None:
    csms = await DevCsms(port=0, verbose=False, ssl=server_context(pki["server_cert"], pki["server_key"])).start()
    try:
        cfg = station_config(tmp_path, csms.url, security_profile=2, csms_root_ca=str(pki["csms_root"]))
        async with OcppStation(cfg, tmp_path) as st:
            cp = await ready(csms)
            assert cp.ws.request.headers["Authorization"].startswith("Basic ")  # profile 2 keeps Basic auth
            tls = st.svc.link._ws.transport.get_extra_info("ssl_object")
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            assert st.svc.dm.value("SecurityCtrlr", "SecurityProfile") == "2"
    finally:
        await csms.stop()


@pytest.mark.parametrize("cert, key, root", [
    ("server_cert", "server_key", "other_root"),  # a certificate from a CA we were not told to trust
    ("expired_cert", "expired_key", "csms_root"),  # our CA, but expired
])
async def test_profile_2_refuses_untrusted_or_expired_csms(tmp_path: Path, pki: dict[str, Path], cert: str,
                                                           key: str, root: str) -> None:
    csms = await DevCsms(port=0, verbose=False, ssl=server_context(pki[cert], pki[key])).start()
    try:
        cfg = station_config(tmp_path, csms.url, security_profile=2, csms_root_ca=str(pki[root]))
        async with OcppStation(cfg, tmp_path) as st:
            await eventually(lambda: st.svc.link.attempts >= 2, what="retries")
            assert not csms.connections and not st.svc.connected
            assert "CERTIFICATE_VERIFY_FAILED" in (st.svc.link.last_error or "")
            if cert == "expired_cert":
                assert "expired" in st.svc.link.last_error
    finally:
        await csms.stop()


async def test_profile_3_presents_the_client_certificate(tmp_path: Path, pki: dict[str, Path]) -> None:
    context = server_context(pki["server_cert"], pki["server_key"], client_ca=pki["station_root"])
    csms = await DevCsms(port=0, verbose=False, ssl=context, default_password=None).start()
    try:
        cfg = station_config(tmp_path, csms.url, security_profile=3, csms_root_ca=str(pki["csms_root"]),
                             client_cert=str(pki["client_cert"]), client_key=str(pki["client_key"]),
                             basic_auth_password=None)
        async with OcppStation(cfg, tmp_path):
            cp = await ready(csms)
            assert "Authorization" not in cp.ws.request.headers  # profile 3: the certificate is the credential
            subject = dict(x[0] for x in csms.peer_certs[0]["subject"])
            assert subject["commonName"] == "TEST-1"
    finally:
        await csms.stop()


async def test_profile_3_client_certificate_from_another_ca_is_refused(tmp_path: Path, pki: dict[str, Path]) -> None:
    context = server_context(pki["server_cert"], pki["server_key"], client_ca=pki["station_root"])
    csms = await DevCsms(port=0, verbose=False, ssl=context, default_password=None).start()
    try:
        cfg = station_config(tmp_path, csms.url, security_profile=3, csms_root_ca=str(pki["csms_root"]),
                             client_cert=str(pki["rogue_cert"]), client_key=str(pki["rogue_key"]),
                             basic_auth_password=None)
        async with OcppStation(cfg, tmp_path) as st:
            await eventually(lambda: st.svc.link.attempts >= 2, what="retries")
            assert not csms.connections and not st.svc.connected
    finally:
        await csms.stop()


def test_no_fallback_to_a_weaker_profile(tmp_path: Path, pki: dict[str, Path]) -> None:
    with pytest.raises(ValidationError, match="needs a wss://"):
        station_config(tmp_path, "ws://127.0.0.1:1", security_profile=2, csms_root_ca=str(pki["csms_root"]))
    with pytest.raises(ValidationError, match="needs csms_root_ca"):
        station_config(tmp_path, "wss://127.0.0.1:1", security_profile=2)
    with pytest.raises(ValidationError, match="client_cert"):
        station_config(tmp_path, "wss://127.0.0.1:1", security_profile=3, csms_root_ca=str(pki["csms_root"]))
    with pytest.raises(ValidationError, match="uses ws://"):
        station_config(tmp_path, "wss://127.0.0.1:1", security_profile=1)
    cfg = station_config(tmp_path, "wss://127.0.0.1:1", security_profile=2, csms_root_ca=str(pki["csms_root"]))
    context = ssl_context(cfg.ocpp)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2 and context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert len(context.get_ca_certs()) == 1  # only the configured root, not the system store


def test_password_from_a_file(tmp_path: Path) -> None:
    from station.ocpp.security import read_password

    secret = tmp_path / "secret"
    secret.write_text(PASSWORD + "\n")
    cfg = station_config(tmp_path, "ws://127.0.0.1:1", basic_auth_password=None, basic_auth_password_file=str(secret))
    assert read_password(cfg.ocpp) == PASSWORD
