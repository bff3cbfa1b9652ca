"""Estonian ID card (and other eID cards) through Web eID authentication tokens.

The browser extension / native app signs ``H(origin) || H(nonce)`` with the card's
authentication key and returns a JSON *authentication token* carrying the signature
and the (still untrusted) certificate. ``begin`` issues the challenge nonce;
``advance`` validates the token completely and turns the certificate subject into
an :class:`Identity`.

Protocol facts: ``web-eid/web-eid-system-architecture-doc`` ("Token format",
https://github.com/web-eid/web-eid-system-architecture-doc) and the reference validator
``web-eid/web-eid-authtoken-validation-java`` (``AuthTokenValidatorImpl``,
``certvalidators/*``). Section marks: 4b.1 token format 1.0, 4b.2 what is signed,
4b.3 challenge nonce, 4b.4 certificate checks, 4b.5 format 1.1. Validation follows
the reference validator's order (4b.4):

1. token shape and size, format ``web-eid:1`` or ``web-eid:1.<minor>`` (4b.1, 4b.5);
2. certificate decoding and validity at ``ctx.now``;
3. purpose: keyUsage digitalSignature, and clientAuth if an EKU is present (4b.4 #2);
4. policies: none of the Mobile-ID / Smart-ID policies (always), none of the
   configured disallowed OIDs, and one of the allow-list if one is configured (4b.4 #3);
5. chain to a configured trusted CA (4b.4 #4);
6. OCSP through the AIA or a designated responder (4b.4 #5, RFC 6960);
7. the signature with the declared algorithm (4b.2).

Security requirements EID-01..EID-06.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..config import ProviderConfig, Settings, builtin_profiles_dir
from ..config_schema import Option, Schema
from ..crypto import pki
from ..errors import (
    AlreadyUsed,
    AuthBrokerError,
    ConfigError,
    Expired,
    InvalidInput,
    InvalidSignature,
    ProviderUnavailable,
    UntrustedCertificate,
)
from ..flow import Challenge, store_put_if_absent
from ..http import HttpRequest
from ..identity import Identity, NationalId
from ..kernel.effects import Gen, fetch
from .base import AdvanceContext, BeginContext, Next, ProviderInfo

__all__ = [
    "ALGORITHMS",
    "CONFIG_OPTIONS",
    "MOBILE_ID_POLICIES",
    "NON_CARD_POLICY_ARCS",
    "WebEidProvider",
    "WebEidToken",
    "from_config",
    "parse_token",
]

log = logging.getLogger(__name__)

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


# --- the provider ----------------------------------------------------------------------


#: Every key a ``web-eid`` provider table or profile may hold (checked at load_config;
#: declare a new option here when WebEidProvider starts reading it).
CONFIG_OPTIONS = Schema(
    "web-eid",
    "Estonian ID card and other eIDs through the Web eID extension.",
    (
        Option("origin", "string", None, "expected origin of tokens (default: base_url's)"),
        Option(
            "trusted_ca_certificates", "string or string list", [], "trusted issuing CAs (required)"
        ),
        Option(
            "disallowed_policies",
            "string list",
            None,
            "certificate policy OIDs refused (default: Mobile-ID)",
        ),
        Option(
            "allowed_policies", "string list", [], "certificate policy OIDs required (empty: any)"
        ),
        Option("allowed_algorithms", "string list", None, "token signature algorithms accepted"),
        Option("max_token_length", "integer", DEFAULT_MAX_TOKEN_CHARS, "longest token accepted"),
        Option("ocsp", "boolean", True, "check revocation by OCSP (always in production)"),
        Option("ocsp_fail_open", "boolean", False, "simulator only: accept when OCSP is down"),
        Option("ocsp_timeout", "number", 5.0, "OCSP timeout in seconds (0..30]"),
        Option("ocsp_max_age", "number", 120, "oldest OCSP response accepted, seconds"),
        Option("ocsp_max_skew", "number", 900, "OCSP clock skew allowed, seconds"),
        Option("ocsp_nonce_disabled_urls", "string list", [], "OCSP responders that get no nonce"),
        Option("ocsp_designated_url", "string", None, "designated OCSP responder URL"),
        Option("ocsp_designated_certificate", "string", None, "designated responder certificate"),
        Option("ocsp_designated_issuers", "string or string list", [], "issuers it answers for"),
    ),
)


class WebEidProvider:
    """Validates Web eID authentication tokens (see the module docstring)."""

    flow_ttl = NONCE_TTL

    def __init__(self, config: ProviderConfig, settings: Settings) -> None:
        self.config = config
        self.name = config.name
        self.info = ProviderInfo.from_config(config, methods=("idcard",))
        simulator = config.environment == "simulator"
        self._allow_http_loopback = simulator
        origin = config.get("origin")
        self.origin: str | None = None
        if origin:
            try:
                self.origin = check_origin(str(origin), allow_http_loopback=simulator)
            except ConfigError as exc:
                raise ConfigError(
                    exc.message.split(": ", 1)[-1], key=config.key("origin")
                ) from None
        base = urlsplit(settings.base_url)
        self._default_origin = f"{base.scheme}://{base.netloc}" if base.netloc else ""

        dirs = [builtin_profiles_dir()]
        anchors = config.get("trusted_ca_certificates") or []
        if isinstance(anchors, str):
            anchors = [anchors]
        if not isinstance(anchors, list) or not anchors:
            raise ConfigError(
                "at least one trusted CA certificate is required",
                key=config.key("trusted_ca_certificates"),
            )
        self.anchors = pki.load_certificate_sources(
            anchors, base_dirs=dirs, key=config.key("trusted_ca_certificates")
        )

        try:
            self.disallowed_policies = _oid_set(
                config.get("disallowed_policies", list(MOBILE_ID_POLICIES))
            )
        except ConfigError as exc:
            raise ConfigError(exc.message, key=config.key("disallowed_policies")) from None
        try:
            self.allowed_policies = _oid_set(config.get("allowed_policies", []))
        except ConfigError as exc:
            raise ConfigError(exc.message, key=config.key("allowed_policies")) from None

        algs = config.get("allowed_algorithms", list(ALGORITHMS))
        if not isinstance(algs, list) or not algs or any(a not in ALGORITHMS for a in algs):
            raise ConfigError(
                f"must be a non-empty subset of {sorted(ALGORITHMS)}",
                key=config.key("allowed_algorithms"),
            )
        self.allowed_algorithms = frozenset(algs)

        self.max_token_chars = int(config.get("max_token_length", DEFAULT_MAX_TOKEN_CHARS))
        if not MIN_TOKEN_CHARS < self.max_token_chars <= 60_000:
            raise ConfigError("must be between 100 and 60000", key=config.key("max_token_length"))

        # OCSP (4b.4 #5; EID-05).
        self.ocsp_enabled = bool(config.get("ocsp", True))
        if not self.ocsp_enabled and config.environment == "production":
            raise ConfigError(
                "OCSP revocation checking cannot be disabled in production", key=config.key("ocsp")
            )
        self.ocsp_fail_open = bool(config.get("ocsp_fail_open", False))
        if self.ocsp_fail_open and not simulator:
            raise ConfigError(
                "failing open on OCSP outages is only allowed in the simulator environment",
                key=config.key("ocsp_fail_open"),
            )
        self.ocsp_timeout = float(config.get("ocsp_timeout", 5.0))
        self.ocsp_max_age = timedelta(seconds=float(config.get("ocsp_max_age", 120)))
        self.ocsp_skew = timedelta(seconds=float(config.get("ocsp_max_skew", 900)))
        if not 0 < self.ocsp_timeout <= 30:
            raise ConfigError("must be between 0 and 30 seconds", key=config.key("ocsp_timeout"))
        nonce_off = config.get("ocsp_nonce_disabled_urls", [])
        if not isinstance(nonce_off, list) or not all(isinstance(u, str) for u in nonce_off):
            raise ConfigError("must be a list of URLs", key=config.key("ocsp_nonce_disabled_urls"))
        self.ocsp_nonce_disabled = frozenset(nonce_off)
        self.designated_url: str | None = None
        self.designated_cert: x509.Certificate | None = None
        self.designated_issuers: list[x509.Certificate] = []
        if config.get("ocsp_designated_url"):
            self.designated_url = str(config.get("ocsp_designated_url"))
            if not self.designated_url.startswith(("http://", "https://")):
                raise ConfigError("must be an http(s) URL", key=config.key("ocsp_designated_url"))
            cert_src = config.get("ocsp_designated_certificate")
            if not cert_src:
                raise ConfigError(
                    "is required with ocsp_designated_url",
                    key=config.key("ocsp_designated_certificate"),
                )
            certs = pki.load_certificate_sources(
                [cert_src], base_dirs=dirs, key=config.key("ocsp_designated_certificate")
            )
            self.designated_cert = certs[0]
            issuers = config.get("ocsp_designated_issuers", [])
            self.designated_issuers = pki.load_certificate_sources(
                issuers if isinstance(issuers, list) else [issuers],
                base_dirs=dirs,
                key=config.key("ocsp_designated_issuers"),
            )

    # -- begin -----------------------------------------------------------------------

    def begin(self, ctx: BeginContext) -> Gen[Next]:
        """Issue the challenge nonce (4b.3; EID-01); the broker keeps it server-side,
        bound to this browser's flow, and consumes the flow once."""
        origin = self.origin or ctx.origin or self._default_origin
        try:
            origin = check_origin(origin, allow_http_loopback=self._allow_http_loopback)
        except ConfigError:
            if not self.origin and ctx.origin:
                # The web layer's request origin is client-influenced: a bad one is input.
                raise InvalidInput("request origin is not acceptable", code="origin") from None
            raise ConfigError(
                "no valid site origin (set 'origin')", key=self.config.key("origin")
            ) from None
        nonce = base64.b64encode(secrets.token_bytes(NONCE_BYTES)).decode("ascii")
        yield from ()
        return Next(
            Challenge(nonce=nonce), {"nonce": nonce, "issued_at": ctx.now, "origin": origin}
        )

    # -- advance ---------------------------------------------------------------------

    def advance(
        self, ctx: AdvanceContext, data: Mapping[str, Any], params: Mapping[str, str]
    ) -> Gen[Identity]:
        try:
            return (yield from self._advance(ctx, data, params))
        except AuthBrokerError:
            raise
        except (
            ValueError,
            TypeError,
            KeyError,
            OverflowError,
            UnsupportedAlgorithm,
            x509.DuplicateExtension,
        ) as exc:
            # Defence in depth: a library error on hostile input is still invalid input.
            raise InvalidInput(
                "Web eID token could not be validated", code="token_invalid"
            ) from exc

    def _advance(
        self, ctx: AdvanceContext, data: Mapping[str, Any], params: Mapping[str, str]
    ) -> Gen[Identity]:
        nonce = data.get("nonce")
        issued_at = data.get("issued_at")
        if not isinstance(nonce, str) or not isinstance(issued_at, int | float):
            raise InvalidInput("flow holds no challenge", code="no_challenge")
        if ctx.now - float(issued_at) > NONCE_TTL:
            raise Expired("challenge nonce expired", code="nonce_expired")
        origin = self.origin or str(data.get("origin") or "")
        if not origin:
            raise ConfigError("no site origin", key=self.config.key("origin"))

        # Single use (EID-01): the broker consumes the flow; the replay cache also
        # refuses the nonce to any second caller of this adapter within its lifetime.
        digest = hashlib.sha256(nonce.encode()).hexdigest()
        fresh = yield from store_put_if_absent(REPLAY_KEY + digest, b"1", NONCE_TTL)
        if not fresh:
            raise AlreadyUsed("challenge nonce was already used", code="nonce_replayed")

        token = parse_token(params.get("token"), max_chars=self.max_token_chars)
        if token.algorithm not in self.allowed_algorithms:
            raise _bad("algorithm not allowed", "unsupported_algorithm")
        at = _at(ctx.now)
        cert = pki.parse_der_certificate(token.certificate)

        # Validity, purpose, policy, trust (4b.4 #2-#4).
        pki.check_validity(cert, at, what="user certificate")
        self._check_purpose(cert)
        self._check_policies(cert)
        intermediates = [pki.parse_der_certificate(d) for d in token.intermediates]
        path = pki.verify_chain(cert, intermediates, self.anchors, at)
        issuer = path[1]
        if token.version == "1.1":
            self._check_signing_certificates(cert, token, intermediates, at)

        # Signature over H(origin) || H(nonce) (4b.2; EID-03). Checked before OCSP,
        # unlike the reference order, so a forged token never makes us send a request
        # to the responder (no amplification; the outcome is the same).
        verify_token_signature(cert, token.algorithm, token.signature, origin, nonce)

        # Revocation (4b.4 #5).
        if self.ocsp_enabled:
            yield from self._check_ocsp(cert, issuer, at)
        return self._identity(cert, issuer, token, at)

    # -- certificate checks ------------------------------------------------------------

    @staticmethod
    def _check_purpose(cert: x509.Certificate) -> None:
        try:
            ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            raise UntrustedCertificate(
                "user certificate has no key usage", code="key_usage_missing"
            ) from None
        if not ku.digital_signature:
            raise UntrustedCertificate(
                "user certificate is not for authentication", code="wrong_purpose"
            )
        try:
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            eku = None  # Finnish and Luxembourg cards carry none (4b.4 #2, 4b.8)
        if eku is not None and ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
            raise UntrustedCertificate(
                "user certificate is not for client authentication", code="wrong_purpose"
            )
        try:
            bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
            if bc.ca:
                raise UntrustedCertificate("user certificate is a CA", code="wrong_purpose")
        except x509.ExtensionNotFound:
            pass

    def _check_policies(self, cert: x509.Certificate) -> None:
        try:
            policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
            oids = {p.policy_identifier.dotted_string for p in policies}
        except x509.ExtensionNotFound:
            oids = set()
        if any(o == arc or o.startswith(arc + ".") for o in oids for arc in NON_CARD_POLICY_ARCS):
            raise UntrustedCertificate(
                "user certificate is a Mobile-ID or Smart-ID certificate, not an ID card's",
                code="disallowed_policy",
            )
        if oids & self.disallowed_policies:
            raise UntrustedCertificate(
                "user certificate policy is not allowed (Mobile-ID?)", code="disallowed_policy"
            )
        if self.allowed_policies and not oids & self.allowed_policies:
            raise UntrustedCertificate(
                "user certificate is not an allowed ID-card certificate", code="policy_not_allowed"
            )

    def _check_signing_certificates(
        self,
        auth_cert: x509.Certificate,
        token: WebEidToken,
        intermediates: Sequence[x509.Certificate],
        at: datetime,
    ) -> None:
        """web-eid:1.1 (4b.5): each signing certificate belongs to the same person
        (same subject), the same issuing CA key (AKI), is for non-repudiation, and
        chains to a trusted CA. Not covered by the token signature: never used for
        the identity."""
        auth_aki = _aki(auth_cert)
        for entry in token.signing_certificates:
            sc = pki.parse_der_certificate(entry.certificate)
            if sc.subject != auth_cert.subject or _aki(sc) != auth_aki or auth_aki is None:
                raise UntrustedCertificate(
                    "signing certificate belongs to another subject or issuer",
                    code="signing_certificate",
                )
            try:
                ku = sc.extensions.get_extension_for_class(x509.KeyUsage).value
            except x509.ExtensionNotFound:
                ku = None
            if ku is None or not ku.content_commitment:
                raise UntrustedCertificate(
                    "signing certificate is not for signatures", code="signing_certificate"
                )
            extra = [pki.parse_der_certificate(d) for d in entry.intermediates]
            pki.verify_chain(sc, [*intermediates, *extra], self.anchors, at)

    def _check_ocsp(
        self, cert: x509.Certificate, issuer: x509.Certificate, at: datetime
    ) -> Gen[None]:
        designated: x509.Certificate | None = None
        if self.designated_url and (
            not self.designated_issuers or any(issuer == c for c in self.designated_issuers)
        ):
            url = self.designated_url
            designated = self.designated_cert
        else:
            urls = pki.ocsp_urls(cert)
            if not urls:
                raise UntrustedCertificate(
                    "user certificate names no OCSP responder", code="ocsp_no_responder"
                )
            url = urls[0]
        nonce = None if url in self.ocsp_nonce_disabled else secrets.token_bytes(32)
        body = pki.build_ocsp_request(cert, issuer, nonce=nonce)
        request = HttpRequest(
            "POST",
            url,
            {"Content-Type": "application/ocsp-request", "Accept": "application/ocsp-response"},
            body,
            timeout=self.ocsp_timeout,
            tag="ocsp",
        )
        try:
            response = yield from fetch(request)
            if response.status != 200:
                raise ProviderUnavailable(
                    "OCSP responder answered with an error status", code="ocsp_http_status"
                )
            result = pki.verify_ocsp_response(
                response.body,
                cert,
                issuer,
                at=at,
                nonce=nonce,
                designated_responder=designated,
                max_skew=self.ocsp_skew,
                max_age=self.ocsp_max_age,
            )
        except ProviderUnavailable as exc:
            if self.ocsp_fail_open:
                log.warning("OCSP unavailable (%s); failing open (simulator only)", exc.code)
                return
            if exc.code.startswith("ocsp"):
                raise
            raise ProviderUnavailable(
                "OCSP responder could not be reached", code="ocsp_unavailable"
            ) from exc
        if result.status == "revoked":
            raise UntrustedCertificate("user certificate has been revoked", code="revoked")
        if result.status != "good":
            raise UntrustedCertificate(
                "OCSP responder does not know the user certificate", code="ocsp_unknown"
            )

    # -- identity (EID-06: only from the verified certificate) ---------------------------

    def _identity(
        self, cert: x509.Certificate, issuer: x509.Certificate, token: WebEidToken, at: datetime
    ) -> Identity:
        subject = cert.subject
        serial = _name_attr(subject, NameOID.SERIAL_NUMBER)
        country = (_name_attr(subject, NameOID.COUNTRY_NAME) or "").upper()
        if not serial:
            raise UntrustedCertificate("certificate subject has no serial number", code="subject")
        attributes: dict[str, str] = {"country": country} if country else {}
        national_id: NationalId | None = None
        m = re.fullmatch(r"PNO([A-Z]{2})-(.+)", serial)
        if m:
            code_country, code = m.group(1), m.group(2)
            if code_country == "EE":
                national_id = NationalId.parse(code, "EE")
            else:
                # Latvian/Lithuanian personal codes: no NationalId kind for them (yet).
                attributes["personal_code"] = code
                attributes["personal_code_country"] = code_country
        elif country == "EE" and re.fullmatch(r"[1-6][0-9]{10}", serial):
            national_id = NationalId.parse(serial, "EE")  # pre-2018 cards: bare isikukood
        elif country == "FI":
            # Finnish cards carry the SATU, not the HETU (4b.8).
            attributes["satu"] = serial
        else:
            attributes["serial_number"] = serial
        return Identity(
            provider=self.name,
            method="idcard",
            subject=serial,
            national_id=national_id,
            loa=self.config.loa,
            authenticated_at=at,
            given_name=_name_attr(subject, NameOID.GIVEN_NAME),
            family_name=_name_attr(subject, NameOID.SURNAME),
            attributes=attributes,
            raw={
                "format": token.format,
                "algorithm": token.algorithm,
                "issuer": _name_attr(issuer.subject, NameOID.COMMON_NAME) or "",
                "certificate_serial": format(cert.serial_number, "x"),
                "not_after": cert.not_valid_after_utc.isoformat(),
            },
        )


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


def from_config(config: ProviderConfig, settings: Settings) -> WebEidProvider:
    return WebEidProvider(config, settings)
