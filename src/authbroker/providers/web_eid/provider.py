"""The Web eID adapter: options, challenge nonces, certificate and OCSP checks."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ...config import ProviderConfig, Settings, builtin_profiles_dir
from ...config_schema import Option, Schema
from ...crypto import pki
from ...errors import (
    AlreadyUsed,
    AuthBrokerError,
    ConfigError,
    Expired,
    InvalidInput,
    ProviderUnavailable,
    UntrustedCertificate,
)
from ...flow import Challenge, store_put_if_absent
from ...http import HttpRequest
from ...identity import Identity, NationalId
from ...kernel.effects import Gen, fetch
from ..base import AdvanceContext, BeginContext, Next, ProviderInfo, certificate_sources
from .token import (
    ALGORITHMS,
    DEFAULT_MAX_TOKEN_CHARS,
    MIN_TOKEN_CHARS,
    MOBILE_ID_POLICIES,
    NON_CARD_POLICY_ARCS,
    NONCE_BYTES,
    NONCE_TTL,
    REPLAY_KEY,
    WebEidToken,
    _aki,
    _at,
    _bad,
    _name_attr,
    _oid_set,
    check_origin,
    parse_token,
    verify_token_signature,
)

log = logging.getLogger(__name__)

# --- the provider ----------------------------------------------------------------------


#: Every key a ``web-eid`` provider table or profile may hold (checked at load_config;
#: declare a new option here when WebEidProvider starts reading it).
CONFIG_OPTIONS = Schema(
    "web-eid",
    "Estonian ID card and other eIDs through the Web eID extension.",
    (
        Option("origin", "string", None, "expected origin of tokens (default: base_url's)"),
        Option(
            "trusted_ca_certificates",
            "string or string list",
            [],
            "trusted issuing CAs",
            required=True,
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
        Option(
            "max_token_length",
            "integer",
            DEFAULT_MAX_TOKEN_CHARS,
            "longest token accepted",
            bounds=(MIN_TOKEN_CHARS + 1, 60_000),
        ),
        Option("ocsp", "boolean", True, "check revocation by OCSP (always in production)"),
        Option("ocsp_fail_open", "boolean", False, "simulator only: accept when OCSP is down"),
        Option(
            "ocsp_timeout", "number", 5.0, "OCSP timeout in seconds, more than 0", bounds=(0, 30)
        ),
        Option(
            "ocsp_max_age",
            "number",
            120,
            "oldest OCSP response accepted, seconds",
            bounds=(0, None),
        ),
        Option(
            "ocsp_max_skew", "number", 900, "OCSP clock skew allowed, seconds", bounds=(0, None)
        ),
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
        v = CONFIG_OPTIONS.read(config.options, config.key)
        # Types, ranges and defaults come from the schema; formats of values (origin,
        # OIDs, algorithm names) and the rules between keys stay here.
        origin: str | None = v["origin"]
        self.origin: str | None = None
        if origin:
            try:
                self.origin = check_origin(origin, allow_http_loopback=simulator)
            except ConfigError as exc:
                raise ConfigError(
                    exc.message.split(": ", 1)[-1], key=config.key("origin")
                ) from None
        base = urlsplit(settings.base_url)
        self._default_origin = f"{base.scheme}://{base.netloc}" if base.netloc else ""

        dirs = [builtin_profiles_dir()]
        anchors = certificate_sources(config, "trusted_ca_certificates")
        if not anchors:
            raise ConfigError(
                "at least one trusted CA certificate is required",
                key=config.key("trusted_ca_certificates"),
            )
        self.anchors = pki.load_certificate_sources(
            anchors, base_dirs=dirs, key=config.key("trusted_ca_certificates")
        )

        disallowed = v["disallowed_policies"]
        try:
            self.disallowed_policies = _oid_set(
                MOBILE_ID_POLICIES if disallowed is None else disallowed
            )
        except ConfigError as exc:
            raise ConfigError(exc.message, key=config.key("disallowed_policies")) from None
        try:
            self.allowed_policies = _oid_set(v["allowed_policies"])
        except ConfigError as exc:
            raise ConfigError(exc.message, key=config.key("allowed_policies")) from None

        algs: tuple[str, ...] = v["allowed_algorithms"] or tuple(ALGORITHMS)
        if v["allowed_algorithms"] == () or any(a not in ALGORITHMS for a in algs):
            raise ConfigError(
                f"must be a non-empty subset of {sorted(ALGORITHMS)}",
                key=config.key("allowed_algorithms"),
            )
        self.allowed_algorithms = frozenset(algs)

        self.max_token_chars: int = v["max_token_length"]

        # OCSP (4b.4 #5; EID-05).
        self.ocsp_enabled: bool = v["ocsp"]
        if not self.ocsp_enabled and config.environment == "production":
            raise ConfigError(
                "OCSP revocation checking cannot be disabled in production", key=config.key("ocsp")
            )
        self.ocsp_fail_open: bool = v["ocsp_fail_open"]
        if self.ocsp_fail_open and not simulator:
            raise ConfigError(
                "failing open on OCSP outages is only allowed in the simulator environment",
                key=config.key("ocsp_fail_open"),
            )
        self.ocsp_timeout: float = v["ocsp_timeout"]
        if self.ocsp_timeout == 0:
            raise ConfigError("must be more than 0 seconds", key=config.key("ocsp_timeout"))
        self.ocsp_max_age = timedelta(seconds=v["ocsp_max_age"])
        self.ocsp_skew = timedelta(seconds=v["ocsp_max_skew"])
        self.ocsp_nonce_disabled = frozenset(v["ocsp_nonce_disabled_urls"])
        self.designated_url: str | None = None
        self.designated_cert: x509.Certificate | None = None
        self.designated_issuers: list[x509.Certificate] = []
        if v["ocsp_designated_url"]:
            self.designated_url = v["ocsp_designated_url"]
            if not self.designated_url.startswith(("http://", "https://")):
                raise ConfigError("must be an http(s) URL", key=config.key("ocsp_designated_url"))
            cert_src = v["ocsp_designated_certificate"]
            if not cert_src:
                raise ConfigError(
                    "is required with ocsp_designated_url",
                    key=config.key("ocsp_designated_certificate"),
                )
            certs = pki.load_certificate_sources(
                [cert_src], base_dirs=dirs, key=config.key("ocsp_designated_certificate")
            )
            self.designated_cert = certs[0]
            self.designated_issuers = pki.load_certificate_sources(
                certificate_sources(config, "ocsp_designated_issuers"),
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


def from_config(config: ProviderConfig, settings: Settings) -> WebEidProvider:
    return WebEidProvider(config, settings)
