"""A tiny test certificate authority shared by the simulators (never for production).

The simulators need real X.509 certificates (RFC 5280) to exercise the adapters'
chain, key-usage, policy and OCSP checks: BankID's mTLS and user certificates, the
Mobile ID signer certificates, Web eID card certificates. This module holds the
building blocks; each simulator still decides exactly which extensions its
certificates carry, since the adapters' negative tests depend on those details.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPublicKeyTypes

__all__ = [
    "Extension",
    "SigningKey",
    "TestCa",
    "authority_key_id",
    "basic_constraints",
    "ca_key_usage",
    "cert_der_b64",
    "cert_pem",
    "certificate",
    "key_pem",
    "key_usage",
    "subject_key_id",
]

#: An extension value and its criticality.
Extension = tuple[x509.ExtensionType, bool]
SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
HashAlgorithm = hashes.SHA256 | hashes.SHA384 | hashes.SHA512


def key_usage(
    *,
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_encipherment: bool = False,
    key_agreement: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    """RFC 5280 §4.2.1.3 key usage with only the named bits set."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=key_agreement,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def ca_key_usage(*, digital_signature: bool = False) -> x509.KeyUsage:
    """keyCertSign + cRLSign (plus digitalSignature when asked)."""
    return key_usage(digital_signature=digital_signature, key_cert_sign=True, crl_sign=True)


def basic_constraints(
    ca: bool, path_length: int | None = None, *, critical: bool = True
) -> Extension:
    return x509.BasicConstraints(ca=ca, path_length=path_length), critical


def subject_key_id(public_key: PublicKey) -> Extension:
    return x509.SubjectKeyIdentifier.from_public_key(public_key), False


def authority_key_id(issuer: x509.Certificate) -> Extension:
    public = cast(CertificateIssuerPublicKeyTypes, issuer.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(public), False


def certificate(
    subject: x509.Name,
    public_key: PublicKey,
    signer: SigningKey,
    *,
    not_before: datetime,
    not_after: datetime,
    issuer: x509.Name | None = None,
    extensions: Iterable[Extension] = (),
    hash_algorithm: HashAlgorithm | None = None,
) -> x509.Certificate:
    """A certificate with a random serial, signed by ``signer`` (self-issued when no
    ``issuer`` name is given), carrying exactly ``extensions`` in that order."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer if issuer is not None else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for value, critical in extensions:
        builder = builder.add_extension(value, critical=critical)
    return builder.sign(signer, hash_algorithm or hashes.SHA256())


@dataclass(frozen=True, slots=True)
class TestCa:
    """A CA key and its certificate."""

    __test__ = False  # not a pytest test class

    key: SigningKey
    cert: x509.Certificate

    @classmethod
    def create(
        cls,
        subject: x509.Name,
        *,
        not_before: datetime,
        not_after: datetime,
        key: SigningKey | None = None,
        path_length: int | None = 0,
        digital_signature: bool = False,
        with_subject_key_id: bool = True,
        hash_algorithm: HashAlgorithm | None = None,
    ) -> TestCa:
        """A self-signed root: critical basicConstraints (cA) and key usage, plus a
        subject key identifier unless ``with_subject_key_id`` is false. The key
        defaults to a fresh EC P-256 key."""
        key = key if key is not None else ec.generate_private_key(ec.SECP256R1())
        extensions = [
            basic_constraints(True, path_length),
            (ca_key_usage(digital_signature=digital_signature), True),
        ]
        if with_subject_key_id:
            extensions.append(subject_key_id(key.public_key()))
        cert = certificate(
            subject,
            key.public_key(),
            key,
            not_before=not_before,
            not_after=not_after,
            extensions=extensions,
            hash_algorithm=hash_algorithm,
        )
        return cls(key, cert)

    def issue(
        self,
        subject: x509.Name,
        public_key: PublicKey,
        *,
        not_before: datetime,
        not_after: datetime,
        extensions: Iterable[Extension] = (),
        hash_algorithm: HashAlgorithm | None = None,
    ) -> x509.Certificate:
        """A certificate signed by this CA carrying exactly ``extensions``."""
        return certificate(
            subject,
            public_key,
            self.key,
            issuer=self.cert.subject,
            not_before=not_before,
            not_after=not_after,
            extensions=extensions,
            hash_algorithm=hash_algorithm,
        )

    @property
    def pem(self) -> str:
        return cert_pem(self.cert)


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def cert_der_b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def key_pem(key: SigningKey, password: bytes | None = None) -> bytes:
    """PKCS#8 PEM, encrypted when ``password`` is given."""
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
