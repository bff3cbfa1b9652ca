"""Web eID authentication tokens: strict parsing, origin checks and signature checks.

Pure functions over the token a browser extension returns (Web eID 4b.1, 4b.5):
no I/O, every failure a typed :mod:`authbroker.errors` exception.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ...errors import (
    ConfigError,
    InvalidInput,
    InvalidSignature,
    UntrustedCertificate,
)

#: Nonce lifetime; the Web eID libraries' default and recommendation (4b.3).
NONCE_TTL = 300.0
#: 32 random bytes = 256 bits, base64 = 44 characters (4b.3; EID-01).
NONCE_BYTES = 32
#: Token string length accepted by the reference parser (4b.3).
MIN_TOKEN_CHARS = 100
DEFAULT_MAX_TOKEN_CHARS = 10_000
#: web-eid:1.1 may carry a few intermediate / signing certificates; bounded.
MAX_EXTRA_CERTS = 4
MAX_SIGNATURE_BYTES = 1024
REPLAY_KEY = "webeid:nonce:"

#: JWS algorithm -> (key type, hash, padding) (RFC 7518 3.1; Web eID 4b.1/4b.2).
ALGORITHMS: Mapping[str, tuple[str, type[hashes.HashAlgorithm]]] = {
    "ES256": ("ec", hashes.SHA256),
    "ES384": ("ec", hashes.SHA384),
    "ES512": ("ec", hashes.SHA512),
    "PS256": ("pss", hashes.SHA256),
    "PS384": ("pss", hashes.SHA384),
    "PS512": ("pss", hashes.SHA512),
    "RS256": ("rsa", hashes.SHA256),
    "RS384": ("rsa", hashes.SHA384),
    "RS512": ("rsa", hashes.SHA512),
}
#: ES* pairs a hash with one curve (RFC 7518 3.4).
_EC_CURVES: Mapping[str, str] = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
MIN_RSA_BITS = 2048

#: Estonian Mobile-ID policy OIDs, disallowed by default (4b.4 #3; EID-04).
MOBILE_ID_POLICIES: tuple[str, ...] = (
    "1.3.6.1.4.1.10015.1.3",
    "1.3.6.1.4.1.10015.1.3.1",
    "1.3.6.1.4.1.10015.1.3.2",
    "1.3.6.1.4.1.10015.1.3.3",
)

#: Every 1.x format, as the reference validator's AuthTokenVersion1Validator
#: (``^web-eid:1(?:\.\d+)?$``, https://github.com/web-eid/web-eid-authtoken-validation-java
#: src/main/java/eu/webeid/security/validator/versionvalidators/): minor versions are
#: backwards compatible. ASCII digits only (Python's ``\d`` would admit any Unicode
#: digit; Java's does not), bounded length.
_FORMAT_1X = re.compile(r"web-eid:1(\.[0-9]{1,4})?")
#: Exactly these two are 1.0 and must not carry the 1.1 fields (``isExactV10Format``).
#: Certificate policies that mark a certificate as *not* an ID card's, refused always
#: (an OID equal to an arc or under it), whatever ``disallowed_policies`` says: a site
#: that asked for a card must be answered by a card, and a trusted CA list shared with
#: other means (SK issues Mobile-ID and Smart-ID under the same roots) does not keep
#: them out. The reference validator refuses the SK Mobile-ID policies
#: (web-eid-authtoken-validation-java ``SubjectCertificatePolicies``,
#: https://github.com/web-eid/web-eid-authtoken-validation-java); Smart-ID policies
#: are ``1.3.6.1.4.1.10015.17.1`` (non-qualified) and ``.17.2`` (qualified)
#: (https://github.com/SK-EID/smart-id-java-client, certificate purpose validators);
#: SK's Mobile-ID certificates since 2022 carry ``1.3.6.1.4.1.10015.18.1``
#: (https://www.skidsolutions.eu/resources/profiles/, "Certificate and OCSP Profile for
#: Mobile-ID" v2.3). ID-card authentication certificates carry e.g.
#: ``1.3.6.1.4.1.51361.1.2.1`` (ESTEID2018) and are not affected.
NON_CARD_POLICY_ARCS: tuple[str, ...] = (
    "1.3.6.1.4.1.10015.1.3",  # SK Mobile-ID (ESTEID-SK 2015) and .1-.3
    "1.3.6.1.4.1.10015.17",  # SK Smart-ID (.17.1, .17.2, ...)
    "1.3.6.1.4.1.10015.18.1",  # SK Mobile-ID since 2022
)

_FORMAT_10 = re.compile(r"web-eid:1(\.0)?")
_FORMAT_11 = re.compile(r"web-eid:1\.1")
_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_CRYPTO_ALGS = frozenset({"ECC", "RSA"})
_HASH_FUNCS = frozenset(
    {"SHA-224", "SHA-256", "SHA-384", "SHA-512", "SHA3-224", "SHA3-256", "SHA3-384", "SHA3-512"}
)
_PADDINGS = frozenset({"NONE", "PKCS1.5", "PSS"})
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})


# --- token parsing (Web eID 4b.1, 4b.5; EID-02) ---------------------------------------


@dataclass(frozen=True, slots=True)
class SigningCertificate:
    """A web-eid:1.1 signing certificate entry (not covered by the token signature)."""

    certificate: bytes = field(repr=False)
    intermediates: tuple[bytes, ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class WebEidToken:
    """A syntactically valid token; nothing in it is trusted yet."""

    format: str
    algorithm: str
    certificate: bytes = field(repr=False)
    signature: bytes = field(repr=False)
    app_version: str = ""
    intermediates: tuple[bytes, ...] = field(default=(), repr=False)
    signing_certificates: tuple[SigningCertificate, ...] = field(default=(), repr=False)

    @property
    def version(self) -> str:
        return "1.1" if _FORMAT_11.fullmatch(self.format) else "1.0"


def _bad(message: str, code: str = "token_invalid") -> InvalidInput:
    return InvalidInput(f"Web eID token: {message}", code=code)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _bad("duplicate field", "token_json")
        out[key] = value
    return out


def _reject_constant(_: str) -> Any:
    raise _bad("not valid JSON", "token_json")


def _b64(value: object, what: str, *, max_bytes: int = 16_384) -> bytes:
    """Strict standard base64 (padding required, no whitespace)."""
    if not isinstance(value, str) or not value:
        raise _bad(f"'{what}' must be a non-empty string", "token_field")
    if len(value) % 4 or not _B64.fullmatch(value):
        raise _bad(f"'{what}' is not valid base64", "token_base64")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _bad(f"'{what}' is not valid base64", "token_base64") from exc
    if not raw or len(raw) > max_bytes:
        raise _bad(f"'{what}' has an unacceptable size", "token_size")
    return raw


def _b64_list(value: object, what: str) -> tuple[bytes, ...]:
    if not isinstance(value, list) or len(value) > MAX_EXTRA_CERTS:
        raise _bad(f"'{what}' must be a short list", "token_field")
    return tuple(_b64(v, what) for v in value)


def _signing_certificates(value: object) -> tuple[SigningCertificate, ...]:
    if not isinstance(value, list) or not value or len(value) > MAX_EXTRA_CERTS:
        raise _bad("'unverifiedSigningCertificates' must be a short non-empty list", "token_field")
    out: list[SigningCertificate] = []
    for entry in value:
        if not isinstance(entry, dict):
            raise _bad("signing certificate entry must be an object", "token_field")
        cert = _b64(entry.get("certificate"), "certificate")
        inter = entry.get("intermediateCertificates", [])
        algs = entry.get("supportedSignatureAlgorithms")
        if not isinstance(algs, list) or not algs or len(algs) > 32:
            raise _bad("'supportedSignatureAlgorithms' must be a non-empty list", "token_field")
        for alg in algs:
            if (
                not isinstance(alg, dict)
                or alg.get("cryptoAlgorithm") not in _CRYPTO_ALGS
                or alg.get("hashFunction") not in _HASH_FUNCS
                or alg.get("paddingScheme") not in _PADDINGS
            ):
                raise _bad("unsupported signature algorithm entry", "token_field")
        out.append(SigningCertificate(cert, _b64_list(inter, "intermediateCertificates")))
    return tuple(out)


def parse_token(text: object, *, max_chars: int = DEFAULT_MAX_TOKEN_CHARS) -> WebEidToken:
    """Parse and shape-check a token string; raise :class:`InvalidInput` otherwise."""
    if not isinstance(text, str) or not text:
        raise _bad("missing", "token_missing")
    if not MIN_TOKEN_CHARS <= len(text) <= max_chars:
        raise _bad("unacceptable length", "token_size")
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise _bad("not valid JSON", "token_json") from exc
    if not isinstance(obj, dict):
        raise _bad("not a JSON object", "token_json")

    fmt = obj.get("format")
    if not isinstance(fmt, str):
        raise _bad("'format' is missing", "token_format")
    if not _FORMAT_1X.fullmatch(fmt):
        raise _bad("unsupported format", "token_format")
    is_11 = bool(_FORMAT_11.fullmatch(fmt))

    algorithm = obj.get("algorithm")
    if not isinstance(algorithm, str) or not algorithm:
        raise _bad("'algorithm' is missing", "token_field")
    if algorithm not in ALGORITHMS:
        raise _bad("unsupported algorithm", "unsupported_algorithm")
    certificate = _b64(obj.get("unverifiedCertificate"), "unverifiedCertificate")
    signature = _b64(obj.get("signature"), "signature", max_bytes=MAX_SIGNATURE_BYTES)
    app_version = obj.get("appVersion", "")
    if not isinstance(app_version, str) or len(app_version) > 512:
        raise _bad("'appVersion' must be a string", "token_field")

    has_inter = "unverifiedIntermediateCertificates" in obj
    has_signing = "unverifiedSigningCertificates" in obj
    intermediates: tuple[bytes, ...] = ()
    signing: tuple[SigningCertificate, ...] = ()
    if _FORMAT_10.fullmatch(fmt):
        # 1.0 tokens must not carry the 1.1 fields (4b.5).
        if has_inter or has_signing:
            raise _bad("web-eid:1.0 token with web-eid:1.1 fields", "token_format")
    elif is_11:
        if has_inter:
            intermediates = _b64_list(
                obj["unverifiedIntermediateCertificates"], "unverifiedIntermediateCertificates"
            )
        # Signing certificates are required unless intermediates are present (4b.5).
        if has_signing:
            signing = _signing_certificates(obj["unverifiedSigningCertificates"])
        elif not has_inter:
            raise _bad("'unverifiedSigningCertificates' is missing", "token_field")
    # Any other 1.x (1.2, ...): validated as 1.0, exactly like the reference's
    # version-1 validator; fields it does not know are ignored and never used.
    return WebEidToken(
        format=fmt,
        algorithm=algorithm,
        certificate=certificate,
        signature=signature,
        app_version=app_version,
        intermediates=intermediates,
        signing_certificates=signing,
    )


# --- helpers ---------------------------------------------------------------------------


def check_origin(origin: str, *, allow_http_loopback: bool = False) -> str:
    """``https://host[:port]`` without path, query or trailing slash (4b.2; EID-03)."""
    if not isinstance(origin, str) or not origin or len(origin) > 255:
        raise ConfigError("origin is missing or too long", key="origin")
    parts = urlsplit(origin)
    try:
        _ = parts.port
    except ValueError:
        raise ConfigError("origin has an invalid port", key="origin") from None
    ok_scheme = parts.scheme == "https" or (
        allow_http_loopback and parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS
    )
    if (
        not ok_scheme
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
        or origin != f"{parts.scheme}://{parts.netloc}"
        or any(c.isspace() for c in origin)
    ):
        raise ConfigError(
            "origin must be https://host[:port] without path or trailing slash", key="origin"
        )
    return origin


def _at(now: float) -> datetime:
    try:
        return datetime.fromtimestamp(now, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise InvalidInput("validation time out of range", code="clock") from exc


def _name_attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    if not values:
        return None
    value = values[0].value
    return value if isinstance(value, str) else None


def _oid_set(values: object) -> frozenset[str]:
    if values is None:
        return frozenset()
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
        raise ConfigError("must be a list of OID strings")
    for v in values:
        if not re.fullmatch(r"[0-2](\.[0-9]+)+", v):
            raise ConfigError(f"'{v}' is not an OID")
    return frozenset(values)


def _aki(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(
            x509.AuthorityKeyIdentifier
        ).value.key_identifier
    except x509.ExtensionNotFound:
        return None


def verify_token_signature(
    cert: x509.Certificate, algorithm: str, signature: bytes, origin: str, nonce: str
) -> None:
    """Verify the signature over ``H(origin) || H(nonce)`` (Web eID 4b.2).

    The key type must fit the algorithm (EID-02): ES* with the matching EC curve
    (RFC 7518 3.4, raw R||S encoding), RS*/PS* with RSA of at least 2048 bits
    (PSS: MGF1 with the same hash, salt length = digest length).
    """
    kind, hash_cls = ALGORITHMS[algorithm]
    hash_alg = hash_cls()

    def digest(value: str) -> bytes:
        h = hashes.Hash(hash_cls())
        h.update(value.encode("utf-8"))
        return h.finalize()

    data = digest(origin) + digest(nonce)
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidInput("certificate key cannot be decoded", code="cert_decode") from exc
    try:
        if kind == "ec":
            if (
                not isinstance(key, ec.EllipticCurvePublicKey)
                or key.curve.name != _EC_CURVES[algorithm]
            ):
                raise _bad("algorithm does not fit the certificate key", "algorithm_key_mismatch")
            size = (key.curve.key_size + 7) // 8
            if len(signature) != 2 * size:
                raise InvalidSignature("token signature is invalid", code="bad_signature")
            r = int.from_bytes(signature[:size], "big")
            s = int.from_bytes(signature[size:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hash_alg))
        else:
            if not isinstance(key, rsa.RSAPublicKey):
                raise _bad("algorithm does not fit the certificate key", "algorithm_key_mismatch")
            if key.key_size < MIN_RSA_BITS:
                raise UntrustedCertificate("RSA key is too short", code="weak_key")
            pad: padding.AsymmetricPadding = (
                padding.PSS(mgf=padding.MGF1(hash_cls()), salt_length=hash_alg.digest_size)
                if kind == "pss"
                else padding.PKCS1v15()
            )
            key.verify(signature, data, pad, hash_alg)
    except (_CryptoInvalidSignature, ValueError) as exc:
        raise InvalidSignature("token signature is invalid", code="bad_signature") from exc
