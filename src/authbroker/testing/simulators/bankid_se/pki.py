"""Test certificates of the BankID simulator: server, RP (with and without access),
user issuer and OCSP responder, generated per simulator (EC P-256)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..testpki import TestCa, authority_key_id, basic_constraints, key_pem, subject_key_id
from .orders import NO_ACCESS_COMMON_NAME, RP_COMMON_NAME


def cn_name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class TestPki:
    """Test certificates, generated per simulator (EC P-256: fast and modern)."""

    def __init__(self, label: str) -> None:
        now = dt.datetime.now(dt.UTC)
        self.not_before = now - dt.timedelta(minutes=5)
        # A year, like a real test CA's leaf certificates: `authbroker providers` must
        # not report the simulator's own certificates as expiring.
        self.not_after = now + dt.timedelta(days=365)
        root = self._ca(f"authbroker simulator {label} Test BankID SSL Root CA")
        self.ca_key, self.ca = root.key, root.cert
        self.server_key, self.server = self._leaf(
            root,
            "127.0.0.1",
            san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
            eku=ExtendedKeyUsageOID.SERVER_AUTH,
        )
        self.rp_key, self.rp = self._leaf(root, RP_COMMON_NAME, eku=ExtendedKeyUsageOID.CLIENT_AUTH)
        self.noaccess_key, self.noaccess = self._leaf(
            root, NO_ACCESS_COMMON_NAME, eku=ExtendedKeyUsageOID.CLIENT_AUTH
        )
        # The user side: an issuer for BankID user certificates and its OCSP responder.
        self.user_ca = self._ca("authbroker simulator BankID user CA (TEST ONLY)")
        self.issuer_key, self.issuer = self.user_ca.key, self.user_ca.cert
        self.ocsp_key, self.ocsp_cert = self._leaf(
            self.user_ca,
            "authbroker simulator OCSP responder (TEST ONLY)",
            eku=ExtendedKeyUsageOID.OCSP_SIGNING,
        )
        self.user_keys: dict[str, tuple[ec.EllipticCurvePrivateKey, x509.Certificate]] = {}

    def _ca(self, cn: str) -> TestCa:
        return TestCa.create(
            cn_name(cn),
            not_before=self.not_before,
            not_after=self.not_after,
            path_length=None,
            digital_signature=True,
        )

    def _leaf(
        self,
        ca: TestCa,
        cn: str,
        *,
        san: list[x509.GeneralName] | None = None,
        eku: x509.ObjectIdentifier | None = None,
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        extensions = [
            basic_constraints(False),
            subject_key_id(key.public_key()),
            authority_key_id(ca.cert),
        ]
        if san:
            extensions.append((x509.SubjectAlternativeName(san), False))
        if eku is not None:
            extensions.append((x509.ExtendedKeyUsage([eku]), False))
        cert = ca.issue(
            cn_name(cn),
            key.public_key(),
            not_before=self.not_before,
            not_after=self.not_after,
            extensions=extensions,
        )
        return key, cert

    def user(self, pn: str, name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        found = self.user_keys.get(pn)
        if found is None:
            found = self.user_keys[pn] = self._leaf(self.user_ca, f"{name} (TEST ONLY)")
        return found

    def write(self, folder: Path, password: bytes) -> dict[str, str]:
        def put(name: str, data: bytes) -> str:
            path = folder / name
            path.write_bytes(data)
            path.chmod(0o600)
            return str(path)

        pem = serialization.Encoding.PEM
        return {
            "ca_file": put("ca.pem", self.ca.public_bytes(pem)),
            "server_cert": put("server.pem", self.server.public_bytes(pem)),
            "server_key": put("server-key.pem", key_pem(self.server_key)),
            "cert_file": put("rp.pem", self.rp.public_bytes(pem)),
            "key_file": put("rp-key.pem", key_pem(self.rp_key, password)),
            "noaccess_cert": put("rp-noaccess.pem", self.noaccess.public_bytes(pem)),
            "noaccess_key": put("rp-noaccess-key.pem", key_pem(self.noaccess_key)),
            "issuer_ca": put("user-issuer.pem", self.issuer.public_bytes(pem)),
        }
