"""A Web eID simulator: a test ID-card PKI, real authentication tokens, an OCSP responder.

It stands in for the whole Web eID client side (card + native app + browser
extension) and for the issuing CA's OCSP service:

* two test card PKIs generated with :mod:`cryptography`, side by side like the
  real ones: the 2018-style issuing CA "TEST of ESTEID-SIM" (SK ID Solutions'
  ESTEID2018 issued the cards of 2018-2025) and a 2025-style hierarchy shaped like
  Zetes Estonia's, root "Test EEGovCA2025-SIM" -> issuing CA "Test ESTEID2025-SIM",
  EC P-384 keys and ecdsa-with-SHA384 throughout (cards issued since 2025; the
  published CA certificates are in https://github.com/thorgate/esteid-certificates
  ``files/zetes``). Card certificates are shaped like Estonian ID-card
  authentication certificates (subject ``serialNumber=PNOEE-<isikukood>``,
  GN/SN/CN/C, key usage digitalSignature + keyAgreement, EKU clientAuth +
  emailProtection, the ID-card policies and an AIA OCSP URL pointing at this
  simulator's responder for their hierarchy);
* :meth:`WebEidSimulator.make_token` signs ``H(origin) || H(nonce)`` with the card key
  exactly as the Web eID app does (Web eID 4b.2) and returns the JSON token;
* ``POST /ocsp`` (2018) and ``POST /eidpki/ocsp`` (2025, the real one is the AIA
  responder ``http://ocsp.eidpki.ee``) answer real signed OCSP responses (RFC 6960)
  from a responder delegated by the issuing CA (id-kp-OCSPSigning; the 2025 one a
  P-384 key signing with ecdsa-with-SHA384): good, revoked or unknown per card,
  ``unauthorized`` for certificates of another CA (RFC 6960 2.3), and misbehave on
  request (``switches``) so rejections are tested end to end.

Everything is test material: keys live in memory and die with the process.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from ...config import ProviderConfig, Settings
from ..registry import RunningSimulator
from . import testpki
from .server import SimRequest, SimResponse, serve
from .testpki import TestCa, authority_key_id, basic_constraints, cert_der_b64, cert_pem

__all__ = [
    "ESTEID_AUTH_POLICIES",
    "HIERARCHY_2018",
    "HIERARCHY_2025",
    "Hierarchy",
    "SimCard",
    "WebEidSimulator",
    "start",
]

#: Policies of an Estonian ID-card authentication certificate (Web eID 4b.4 #3, 4b.7).
ESTEID_AUTH_POLICIES: tuple[str, ...] = ("1.3.6.1.4.1.51361.1.2.1", "0.4.0.2042.1.2")
#: An Estonian Mobile-ID policy, for negative tests.
MOBILE_ID_POLICY = "1.3.6.1.4.1.10015.1.3"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

#: The two card hierarchies (see the module docstring).
HIERARCHY_2018 = "2018"
HIERARCHY_2025 = "2025"

#: (isikukood, given name, family name, key type, OCSP status, hierarchy) of the
#: built-in users.
DEFAULT_USERS: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("38001085718", "JAAK-KRISTJAN", "JÕEORG", "ec-p384", "good", HIERARCHY_2018),
    ("60001017869", "MARY ÄNN", "O'CONNEŽ-ŠUSLIK TESTNUMBER", "rsa", "good", HIERARCHY_2018),
    ("49403136515", "MARI", "REVOKED", "ec-p384", "revoked", HIERARCHY_2018),
    ("50001029996", "MART", "UNKNOWN", "ec-p384", "unknown", HIERARCHY_2018),
    ("38506151003", "KAAREL", "ZETES-TEST", "ec-p384", "good", HIERARCHY_2025),
    ("49901011003", "LIIS", "REVOKED-ZETES", "ec-p384", "revoked", HIERARCHY_2025),
)
DEFAULT_USER = "38001085718"
#: The built-in user whose card comes from the 2025 hierarchy.
DEFAULT_USER_2025 = "38506151003"


@dataclass
class SimCard:
    """One simulated ID card: its authentication certificate and key."""

    personal_code: str
    certificate: x509.Certificate
    key: PrivateKey = field(repr=False)
    status: str = "good"  # OCSP answer: good / revoked / unknown
    hierarchy: str = HIERARCHY_2018

    @property
    def der_b64(self) -> str:
        return cert_der_b64(self.certificate)


def _name(**attrs: str) -> x509.Name:
    oids = {
        "C": NameOID.COUNTRY_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "CN": NameOID.COMMON_NAME,
        "SN": NameOID.SURNAME,
        "GN": NameOID.GIVEN_NAME,
        "serialNumber": NameOID.SERIAL_NUMBER,
        "orgId": NameOID.ORGANIZATION_IDENTIFIER,
    }
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in attrs.items()])


def _new_key(kind: str) -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    curve: ec.EllipticCurve = {
        "ec-p256": ec.SECP256R1(),
        "ec-p384": ec.SECP384R1(),
        "ec-p521": ec.SECP521R1(),
    }[kind]
    return ec.generate_private_key(curve)


def default_algorithm(key: PrivateKey) -> str:
    """The algorithm the Web eID app would pick for this card key."""
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    return {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}[key.curve.name]


_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}


def sign_challenge(key: PrivateKey, algorithm: str, origin: str, nonce: str) -> bytes:
    """The card's signature over H(origin) || H(nonce) (Web eID 4b.2)."""
    hash_cls = _HASHES[algorithm[2:]]

    def digest(value: str) -> bytes:
        h = hashes.Hash(hash_cls())
        h.update(value.encode("utf-8"))
        return h.finalize()

    data = digest(origin) + digest(nonce)
    if algorithm.startswith("ES"):
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TypeError("ES* needs an EC key")
        der = key.sign(data, ec.ECDSA(hash_cls()))
        r, s = decode_dss_signature(der)
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("RS*/PS* needs an RSA key")
    pad: padding.AsymmetricPadding = (
        padding.PSS(mgf=padding.MGF1(hash_cls()), salt_length=hash_cls().digest_size)
        if algorithm.startswith("PS")
        else padding.PKCS1v15()
    )
    return key.sign(data, pad, hash_cls())


@dataclass
class Hierarchy:
    """One card PKI: the issuing CA (the trust anchor), its delegated OCSP responder
    and the URL the cards' AIA names; ``root`` is the CA above the issuing CA, if any."""

    name: str
    ca_cert: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey = field(repr=False)
    responder_cert: x509.Certificate
    responder_key: ec.EllipticCurvePrivateKey = field(repr=False)
    ocsp_url: str
    ocsp_hash: hashes.SHA256 | hashes.SHA384
    root_cert: x509.Certificate | None = None

    @property
    def ca_pem(self) -> str:
        return cert_pem(self.ca_cert)


class WebEidSimulator:
    """The test PKIs, the token maker and the OCSP responders' logic."""

    def __init__(
        self,
        ocsp_url: str,
        *,
        ocsp_url_2025: str | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.ocsp_url = ocsp_url
        self.ocsp_url_2025 = ocsp_url_2025 or ocsp_url.rsplit("/", 1)[0] + "/eidpki/ocsp"
        self.now = now
        self.switches: dict[str, bool] = {
            "ocsp_down": False,  # answer 503
            "ocsp_try_later": False,  # OCSP status tryLater
            "stale": False,  # thisUpdate an hour old
            "wrong_nonce": False,  # echo a different nonce
            "omit_nonce": False,  # no nonce in the response
            "wrong_signer": False,  # sign with a responder the CA never authorized
        }
        self._lock = threading.Lock()
        start = datetime.fromtimestamp(now(), UTC) - timedelta(days=30)
        self.ca_key = ec.generate_private_key(ec.SECP384R1())
        ca_name = _name(
            C="EE", O="authbroker simulator", orgId="NTREE-00000000", CN="TEST of ESTEID-SIM"
        )
        self.ca_cert = TestCa.create(
            ca_name,
            key=self.ca_key,
            not_before=start,
            not_after=start + timedelta(days=3650),
            hash_algorithm=hashes.SHA384(),
        ).cert
        self.responder_key, self.responder_cert = self._responder(self.ca_cert, self.ca_key, start)
        rogue_key = ec.generate_private_key(ec.SECP256R1())
        self.rogue_key, self.rogue_cert = self._responder(
            _self_signed("TEST of ROGUE CA", rogue_key, start), rogue_key, start
        )
        self.hierarchies: dict[str, Hierarchy] = {
            HIERARCHY_2018: Hierarchy(
                HIERARCHY_2018,
                self.ca_cert,
                self.ca_key,
                self.responder_cert,
                self.responder_key,
                self.ocsp_url,
                hashes.SHA256(),
            ),
            HIERARCHY_2025: self._hierarchy_2025(start),
        }
        self.cards: dict[str, SimCard] = {}
        self._by_serial: dict[int, SimCard] = {}
        self.ocsp_requests = 0
        for code, given, family, kind, status, hierarchy in DEFAULT_USERS:
            self.issue_card(code, given, family, key_type=kind, status=status, hierarchy=hierarchy)

    @property
    def ca_pem(self) -> str:
        return cert_pem(self.ca_cert)

    @property
    def ca_pems(self) -> list[str]:
        """The issuing CAs of both hierarchies: what the adapter trusts."""
        return [h.ca_pem for h in self.hierarchies.values()]

    def _hierarchy_2025(self, start: datetime) -> Hierarchy:
        """Root -> issuing CA -> cards, as EEGovCA2025 -> ESTEID2025: EC P-384 keys,
        ecdsa-with-SHA384, pathLen 1 / 0, the responder delegated by the issuing CA."""
        org = {"orgId": "NTREE-00000000", "O": "authbroker simulator", "C": "EE"}
        root_key = ec.generate_private_key(ec.SECP384R1())
        root = TestCa.create(
            _name(CN="Test EEGovCA2025-SIM", **org),
            key=root_key,
            not_before=start,
            not_after=start + timedelta(days=5475),
            path_length=1,
            hash_algorithm=hashes.SHA384(),
        )
        ca_key = ec.generate_private_key(ec.SECP384R1())
        ca_cert = root.issue(
            _name(CN="Test ESTEID2025-SIM", **org),
            ca_key.public_key(),
            not_before=start,
            not_after=start + timedelta(days=5470),
            extensions=[
                basic_constraints(True, 0),
                (testpki.ca_key_usage(), True),
                testpki.subject_key_id(ca_key.public_key()),
                authority_key_id(root.cert),
            ],
            hash_algorithm=hashes.SHA384(),
        )
        responder_key, responder_cert = self._responder(
            ca_cert, ca_key, start, curve=ec.SECP384R1(), cn="Test ESTEID2025-SIM OCSP RESPONDER"
        )
        return Hierarchy(
            HIERARCHY_2025,
            ca_cert,
            ca_key,
            responder_cert,
            responder_key,
            self.ocsp_url_2025,
            hashes.SHA384(),
            root.cert,
        )

    def _responder(
        self,
        issuer: x509.Certificate,
        issuer_key: ec.EllipticCurvePrivateKey,
        start: datetime,
        *,
        curve: ec.EllipticCurve | None = None,
        cn: str = "TEST of SIM OCSP RESPONDER",
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(curve or ec.SECP256R1())
        cert = TestCa(issuer_key, issuer).issue(
            _name(C="EE", O="authbroker simulator", CN=cn),
            key.public_key(),
            not_before=start,
            not_after=start + timedelta(days=3650),
            extensions=[
                (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), True),
                (x509.OCSPNoCheck(), False),
                authority_key_id(issuer),
            ],
            hash_algorithm=(
                hashes.SHA384() if isinstance(issuer_key.curve, ec.SECP384R1) else hashes.SHA256()
            ),
        )
        return key, cert

    def issue_card(
        self,
        personal_code: str,
        given_name: str = "TEST",
        family_name: str = "USER",
        *,
        key_type: str = "ec-p384",
        status: str = "good",
        country: str = "EE",
        serial_prefix: str = "PNOEE-",
        policies: Sequence[str] = ESTEID_AUTH_POLICIES,
        digital_signature: bool = True,
        key_usage: bool = True,
        eku: Sequence[x509.ObjectIdentifier] | None = (
            ExtendedKeyUsageOID.CLIENT_AUTH,
            ExtendedKeyUsageOID.EMAIL_PROTECTION,
        ),
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        aia: bool = True,
        issuer: tuple[x509.Certificate, PrivateKey] | None = None,
        register: bool = True,
        hierarchy: str = HIERARCHY_2018,
    ) -> SimCard:
        """Issue an authentication certificate from ``hierarchy`` (``"2018"`` or
        ``"2025"``); the keyword arguments make defective cards for negative tests
        (wrong policy, no key usage, expired, other CA...)."""
        key = _new_key(key_type)
        now = datetime.fromtimestamp(self.now(), UTC)
        chain = self.hierarchies[hierarchy]
        ca_cert, ca_key = issuer or (chain.ca_cert, chain.ca_key)
        subject = _name(
            C=country,
            CN=f"{family_name},{given_name},{personal_code}",
            SN=family_name,
            GN=given_name,
            serialNumber=f"{serial_prefix}{personal_code}",
        )
        extensions = [basic_constraints(False, critical=False), authority_key_id(ca_cert)]
        if key_usage:
            card_usage = testpki.key_usage(digital_signature=digital_signature, key_agreement=True)
            extensions.append((card_usage, True))
        if eku is not None:
            extensions.append((x509.ExtendedKeyUsage(list(eku)), True))
        if policies:
            extensions.append(
                (
                    x509.CertificatePolicies(
                        [x509.PolicyInformation(x509.ObjectIdentifier(p), None) for p in policies]
                    ),
                    False,
                )
            )
        if aia:
            ocsp_access = x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(chain.ocsp_url)
            )
            extensions.append((x509.AuthorityInformationAccess([ocsp_access]), False))
        sig_hash = (
            hashes.SHA384() if isinstance(ca_key, ec.EllipticCurvePrivateKey) else hashes.SHA256()
        )
        cert = TestCa(ca_key, ca_cert).issue(
            subject,
            key.public_key(),
            not_before=not_before or now - timedelta(days=1),
            not_after=not_after or now + timedelta(days=5 * 365),
            extensions=extensions,
            hash_algorithm=sig_hash,
        )
        card = SimCard(personal_code, cert, key, status, hierarchy)
        if register:
            with self._lock:
                self.cards[personal_code] = card
                self._by_serial[cert.serial_number] = card
        return card

    def set_status(self, personal_code: str, status: str) -> None:
        if status not in ("good", "revoked", "unknown"):
            raise ValueError("status must be good, revoked or unknown")
        self.cards[personal_code].status = status

    def make_token(
        self,
        origin: str,
        nonce: str,
        user: str = DEFAULT_USER,
        *,
        algorithm: str | None = None,
        card: SimCard | None = None,
        fmt: str = "web-eid:1.0",
        extra_fields: dict[str, Any] | None = None,
    ) -> str:
        """A real Web eID authentication token for ``origin`` and ``nonce``."""
        card = card or self.cards[user]
        alg = algorithm or default_algorithm(card.key)
        signature = sign_challenge(card.key, alg, origin, nonce)
        token: dict[str, Any] = {
            "algorithm": alg,
            "unverifiedCertificate": card.der_b64,
            "appVersion": "https://web-eid.eu/web-eid-app/releases/2.7.0+0",
            "signature": base64.b64encode(signature).decode(),
            "format": fmt,
        }
        if fmt == "web-eid:1.1":
            token["unverifiedSigningCertificates"] = [
                {
                    "certificate": self.signing_certificate(card),
                    "supportedSignatureAlgorithms": [
                        {
                            "cryptoAlgorithm": "ECC",
                            "hashFunction": "SHA-384",
                            "paddingScheme": "NONE",
                        }
                    ],
                }
            ]
        token.update(extra_fields or {})
        return json.dumps(token, ensure_ascii=False)

    def signing_certificate(self, card: SimCard) -> str:
        """A web-eid:1.1 signing certificate for the card holder (non-repudiation)."""
        key = ec.generate_private_key(ec.SECP384R1())
        now = datetime.fromtimestamp(self.now(), UTC)
        chain = self.hierarchies[card.hierarchy]
        cert = TestCa(chain.ca_key, chain.ca_cert).issue(
            card.certificate.subject,
            key.public_key(),
            not_before=now - timedelta(days=1),
            not_after=now + timedelta(days=365),
            extensions=[
                authority_key_id(chain.ca_cert),
                (testpki.key_usage(content_commitment=True), True),
            ],
            hash_algorithm=hashes.SHA384(),
        )
        return cert_der_b64(cert)

    # -- OCSP responder (RFC 6960) ------------------------------------------------------

    def handle(self, req: SimRequest) -> SimResponse:
        chain = next(
            (h for h in self.hierarchies.values() if urlsplit(h.ocsp_url).path == req.path), None
        )
        if req.method != "POST" or chain is None:
            return SimResponse(404, b"not found")
        with self._lock:
            self.ocsp_requests += 1
        if self.switches["ocsp_down"]:
            return SimResponse(503, b"unavailable")
        der = self.answer(req.body, chain.name)
        return SimResponse(200, der, {"Content-Type": "application/ocsp-response"})

    def answer(self, request_der: bytes, hierarchy: str = HIERARCHY_2018) -> bytes:
        """The DER OCSP response of ``hierarchy``'s responder to ``request_der``."""
        if self.switches["ocsp_try_later"]:
            return _unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER)
        try:
            request = ocsp.load_der_ocsp_request(request_der)
        except ValueError:
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        chain = self.hierarchies[hierarchy]
        card = self._by_serial.get(request.serial_number)
        # A responder answers only for its own CA (RFC 6960 2.3 "unauthorized"):
        # the CertID must name this hierarchy's issuing CA by key hash.
        own_key_hash = ocsp.load_der_ocsp_request(
            ocsp.OCSPRequestBuilder()
            .add_certificate(chain.ca_cert, chain.ca_cert, request.hash_algorithm)
            .build()
            .public_bytes(serialization.Encoding.DER)
        ).issuer_key_hash
        if card is None or card.hierarchy != hierarchy or request.issuer_key_hash != own_key_hash:
            return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        now = datetime.fromtimestamp(self.now(), UTC)
        this_update = now - timedelta(hours=1) if self.switches["stale"] else now
        status = {
            "good": ocsp.OCSPCertStatus.GOOD,
            "revoked": ocsp.OCSPCertStatus.REVOKED,
            "unknown": ocsp.OCSPCertStatus.UNKNOWN,
        }[card.status]
        revoked = status == ocsp.OCSPCertStatus.REVOKED
        signer_cert, signer_key = (
            (self.rogue_cert, self.rogue_key)
            if self.switches["wrong_signer"]
            else (chain.responder_cert, chain.responder_key)
        )
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response(
                cert=card.certificate,
                issuer=chain.ca_cert,
                algorithm=request.hash_algorithm,
                cert_status=status,
                this_update=this_update,
                next_update=this_update + timedelta(minutes=15),
                revocation_time=now - timedelta(days=1) if revoked else None,
                revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, signer_cert)
            .certificates([signer_cert])
        )
        try:
            nonce: bytes | None = request.extensions.get_extension_for_class(
                x509.OCSPNonce
            ).value.nonce
        except x509.ExtensionNotFound:
            nonce = None
        if self.switches["wrong_nonce"]:
            nonce = secrets.token_bytes(32)
        if nonce is not None and not self.switches["omit_nonce"]:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        response = builder.sign(signer_key, chain.ocsp_hash)
        return response.public_bytes(serialization.Encoding.DER)


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )


def _self_signed(cn: str, key: ec.EllipticCurvePrivateKey, start: datetime) -> x509.Certificate:
    return TestCa.create(
        _name(C="EE", CN=cn),
        key=key,
        not_before=start,
        not_after=start + timedelta(days=3650),
        with_subject_key_id=False,
    ).cert


def start(
    config: ProviderConfig, settings: Settings, *, in_process: bool = False
) -> RunningSimulator:
    """Start the OCSP responder (loopback or in process); hand the adapter its trust anchor."""
    holder: dict[str, WebEidSimulator] = {}

    def handler(req: SimRequest) -> SimResponse:
        return holder["sim"].handle(req)

    server = serve(handler, in_process=in_process)
    sim = WebEidSimulator(server.url + "/ocsp")
    holder["sim"] = sim
    return RunningSimulator(
        overrides={"trusted_ca_certificates": sim.ca_pems, "ocsp": True},
        server=server,
        extra={
            "simulator": sim,
            "make_token": sim.make_token,
            "issue_card": sim.issue_card,
            "set_status": sim.set_status,
            "switches": sim.switches,
            "users": {
                code: {"given_name": g, "family_name": f, "status": s, "hierarchy": h}
                for code, g, f, _, s, h in DEFAULT_USERS
            },
            "ca_pem": sim.ca_pem,
            "ca_pems": sim.ca_pems,
            "ocsp_url": sim.ocsp_url,
            "ocsp_url_2025": sim.ocsp_url_2025,
        },
    )
