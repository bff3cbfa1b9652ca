"""A Swedish BankID RP API v6.0 server on loopback, with mutual TLS.

It behaves like the real service as far as an adapter can observe
(BankID RP API v6.0, https://developers.bankid.com/; section marks as in
:mod:`authbroker.providers.bankid_se`): JSON ``POST`` only, the RP client
certificate is required in the TLS handshake and checked for access, requests are
validated field by field (``invalidParameters``), an order for a person who already
has one gives ``alreadyInProgress`` and supersedes the old order, orders not started
within 30 s fail with ``startFailed``, finished orders can be collected once.

The "user" side is scripted: :data:`TEST_USERS` maps a personnummer to names and the
states the order goes through once that user has picked it up (by scanning the
animated QR code, which is verified against the order's secret and time, through
the autostart token, or at once for phone orders). Each ``/collect`` moves one
state on. A completed order carries ``completionData`` with a real ECDSA signature
over an XML-like document (clearly labelled as simulated) and a real DER OCSP
response from a test responder, with the nonce recipe of §1.7.

Tests reach the :class:`BankIdSimulator` through ``RunningSimulator.extra["simulator"]``:
``scan``/``autostart`` pick an order up, ``inject`` queues a raw answer (errors,
malformed JSON), ``clock`` is replaceable, ``pending_orders`` lists what is left.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import math
import secrets
import shutil
import ssl
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.ocsp import OCSPCertStatus, OCSPResponderEncoding, OCSPResponseBuilder
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ...config import ProviderConfig, Settings
from ...errors import InvalidInput
from ...identity import NationalId
from ..registry import RunningSimulator
from .server import LoopbackServer, SimRequest, SimResponse
from .testpki import TestCa, authority_key_id, basic_constraints, key_pem, subject_key_id

__all__ = [
    "API_PREFIX",
    "RP_COMMON_NAME",
    "TEST_USERS",
    "BankIdSimulator",
    "SimOrder",
    "SimUser",
    "render_simple_markdown",
    "start",
]

API_PREFIX = "/rp/v6.0"
RP_COMMON_NAME = "authbroker simulator RP"
NO_ACCESS_COMMON_NAME = "authbroker simulator RP without access"
#: Seconds to start the app / scan the QR before ``startFailed`` (§1.8).
START_WINDOW = 30.0
#: A QR payload is accepted for this many seconds either side of the order's age.
QR_TOLERANCE = 2
#: Finished orders stay collectable this long (§1.4): completed 3 min, failed 5 min.
KEEP_COMPLETED = 180.0
KEEP_FAILED = 300.0

_PENDING = frozenset(
    {"outstandingTransaction", "noClient", "started", "userMrtd", "userCallConfirm", "userSign"}
)


@dataclass(frozen=True, slots=True)
class SimUser:
    """A scripted test user: what the order shows after the user picked it up."""

    given_name: str
    surname: str
    script: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.surname}"


#: Test users (valid personnummer, none issued to real people as far as we know; they
#: are computed test values). Scripts end in ``complete`` or a failed hint code.
TEST_USERS: Mapping[str, SimUser] = {
    "199001010017": SimUser("Erik", "Andersson", ("userSign", "complete")),
    "198512242382": SimUser("Karin", "Johansson", ("started", "userSign", "complete")),
    "197709092469": SimUser("Eva", "Sjöberg", ("noClient", "userSign", "complete")),
    "198808084449": SimUser("Sara", "Holm", ("userMrtd", "userSign", "complete")),
    "197911113335": SimUser("Johan", "Ek", ("userCallConfirm", "userSign", "complete")),
    "197203154567": SimUser("Maria", "Nilsson", ("userSign", "userCancel")),
    "196507071238": SimUser("Lars", "Svensson", ("userSign", "expiredTransaction")),
    "199505307893": SimUser("Oskar", "Lind", ("startFailed",)),
    "200002296127": SimUser("Elin", "Berg", ("certificateErr",)),
    "196012315559": SimUser("Per", "Strand", ("userCallConfirm", "userDeclinedCall")),
    "199306151110": SimUser("Nils", "Dahl", ("notSupportedByUserApp",)),
    "198104049872": SimUser("Anders", "Falk", ("userSign", "transactionRiskBlocked")),
}


def render_simple_markdown(text: str) -> str:
    """What the app would show as plain text: escapes resolved, markup removed.

    Used to check that the adapter escapes user text (SEB-07): a correctly escaped
    text renders back to exactly the original characters.
    """
    lines = []
    for raw_line in text.split("\n"):
        out: list[str] = []
        i = 0
        line = raw_line
        if line.startswith("#"):
            stripped = line.lstrip("#")
            if stripped.startswith(" "):
                line = stripped[1:]
        if line.startswith("---") and set(line) == {"-"}:
            lines.append("")
            continue
        while i < len(line):
            ch = line[i]
            if ch == "\\" and i + 1 < len(line):
                out.append(line[i + 1])
                i += 2
                continue
            if ch not in "*+|":
                out.append(ch)
            i += 1
        lines.append("".join(out))
    return "\n".join(lines)


@dataclass
class SimOrder:
    """One order as the simulator tracks it (tests read these)."""

    ref: str
    kind: str
    created: float
    end_user_ip: str | None
    auto_start_token: str = field(repr=False)
    qr_start_token: str = field(repr=False)
    qr_start_secret: str = field(repr=False)
    person: str | None = field(default=None, repr=False)
    user: str | None = field(default=None, repr=False)
    step: int = 0
    status: str = "pending"
    hint: str = "outstandingTransaction"
    ended_at: float | None = None
    final_collected: bool = False
    cancelled_by_rp: bool = False
    body: dict[str, Any] = field(default_factory=dict, repr=False)
    visible_text: str | None = field(default=None, repr=False)
    completion: dict[str, Any] | None = field(default=None, repr=False)


class _ApiError(Exception):
    def __init__(self, status: int, code: str, details: str = "") -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.details = details


def _bad(details: str) -> _ApiError:
    return _ApiError(400, "invalidParameters", details)


#: Device information objects of auth/sign (RP API v6.0; field names and types as in
#: BankID's OpenAPI spec and ActiveLogin ``DeviceDataWeb``/``DeviceDataApp``): every
#: field a string; ``web.userAgent`` at most 256 characters (ActiveLogin
#: ``BankIdApiLimits``). Other length limits are not published; not enforced.
WEB_DEVICE_FIELDS = ("referringDomain", "userAgent", "deviceIdentifier")
APP_DEVICE_FIELDS = ("appIdentifier", "deviceOS", "deviceModelName", "deviceIdentifier")
MAX_USER_AGENT = 256
MAX_RETURN_URL = 512


def _device_object(value: object, name: str, fields: tuple[str, ...]) -> None:
    if not isinstance(value, dict):
        raise _bad(f"{name} must be an object")
    _only(value, set(fields), name)
    for key in fields:
        if not isinstance(value.get(key), str):
            raise _bad(f"{name}.{key} must be a string")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class _Pki:
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
            _name(cn),
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
            _name(cn),
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


def _b64decode(value: object, what: str, limit: int) -> bytes:
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        raise _bad(f"{what} must be base64 of 1-{limit} characters")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise _bad(f"{what} is not base64") from None


def _valid_pn(value: object, what: str) -> str:
    if not isinstance(value, str) or len(value) != 12 or not value.isdigit():
        raise _bad(f"{what} must be 12 digits")
    try:
        NationalId.parse(value, "SE")
    except InvalidInput:
        raise _bad(f"{what} is not a valid personal number") from None
    return value


def _only(obj: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(obj) - allowed
    if unknown:
        raise _bad(f"unknown field(s) in {where}")


def _bool(obj: Mapping[str, Any], key: str) -> None:
    if key in obj and not isinstance(obj[key], bool):
        raise _bad(f"{key} must be a boolean")


class BankIdSimulator:
    """The RP API state machine behind the loopback server (thread-safe)."""

    def __init__(self, pki: _Pki, *, users: Mapping[str, SimUser] | None = None) -> None:
        self.pki = pki
        self.users: dict[str, SimUser] = dict(users or TEST_USERS)
        self.clock: Callable[[], float] = time.time
        #: Personal number that picks up every QR/autostart order on its first collect
        #: (handy for demos where nobody scans); None = wait for scan()/autostart().
        self.auto_user: str | None = None
        #: Real BankID fails the older order ("cancelled") when a new order for the
        #: same person arrives; False keeps it pending (tests of cancel-and-retry).
        self.supersede_on_conflict = True
        #: completionData.device.ipAddress; None = the order's endUserIp.
        self.device_ip: str | None = None
        #: completionData.risk when the order asked for it.
        self.risk = "low"
        self.orders: dict[str, SimOrder] = {}
        self.log: list[tuple[str, dict[str, Any]]] = []
        self._injected: dict[str, deque[SimResponse]] = {}
        self._lock = threading.RLock()

    # -- test handles --------------------------------------------------------------

    def inject(
        self,
        path: str,
        status: int = 400,
        error_code: str | None = None,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next request to ``path`` (``"/auth"``...) with this instead."""
        if body is None:
            body = json.dumps(
                {"errorCode": error_code or "internalError", "details": "sim"}
            ).encode()
        resp = SimResponse(status, body, {"Content-Type": "application/json", **(headers or {})})
        with self._lock:
            self._injected.setdefault(path, deque()).append(resp)

    def pending_orders(self) -> list[str]:
        """Order refs still pending after applying the start window."""
        with self._lock:
            now = self.clock()
            for order in self.orders.values():
                self._timeouts(order, now)
            return [o.ref for o in self.orders.values() if o.status == "pending"]

    def order_by_qr_token(self, token: str) -> SimOrder | None:
        with self._lock:
            for order in self.orders.values():
                if hmac.compare_digest(order.qr_start_token, token):
                    return order
            return None

    def verify_qr(self, payload: str) -> str:
        """Check an animated QR payload like the app/server would (§1.9).

        ``"ok"``, or why not: ``malformed``, ``unknown_order``, ``bad_code``,
        ``stale`` (time field too far from the order's age), ``not_pending``.
        """
        parts = payload.split(".")
        if len(parts) != 4 or parts[0] != "bankid" or not parts[2].isdigit():
            return "malformed"
        order = self.order_by_qr_token(parts[1])
        if order is None:
            return "unknown_order"
        seconds = int(parts[2])
        expected = hmac.new(
            order.qr_start_secret.encode(), str(seconds).encode(), hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(expected, parts[3]):
            return "bad_code"
        with self._lock:
            now = self.clock()
            self._timeouts(order, now)
            if order.status != "pending" or order.user is not None:
                return "not_pending"
            age = math.floor(now - order.created)
            if abs(age - seconds) > QR_TOLERANCE:
                return "stale"
        return "ok"

    def scan(self, payload: str, personal_number: str) -> str:
        """The user ``personal_number`` scans ``payload`` with the app; ``"ok"`` picks
        the order up, anything else (see :meth:`verify_qr`, or ``wrong_person``,
        ``unknown_user``) leaves it untouched."""
        result = self.verify_qr(payload)
        if result != "ok":
            return result
        order = self.order_by_qr_token(payload.split(".")[1])
        assert order is not None
        return self._pick_up(order, personal_number)

    def autostart(self, auto_start_token: str, personal_number: str) -> str:
        """The app on this device is launched with ``auto_start_token``."""
        with self._lock:
            for order in self.orders.values():
                if hmac.compare_digest(order.auto_start_token, auto_start_token):
                    self._timeouts(order, self.clock())
                    if order.status != "pending" or order.user is not None:
                        return "not_pending"
                    return self._pick_up(order, personal_number)
        return "unknown_order"

    def _pick_up(self, order: SimOrder, pn: str) -> str:
        with self._lock:
            if pn not in self.users:
                return "unknown_user"
            if order.person is not None and order.person != pn:
                return "wrong_person"
            order.user = pn
            order.step = 0
            return "ok"

    def verify_signature(self, signature_b64: str) -> bool:
        """Check a completionData.signature made by this simulator."""
        try:
            doc = base64.b64decode(signature_b64, validate=True).decode()
            signed, _, rest = doc.partition("<SignatureValue>")
            value = base64.b64decode(rest.split("</SignatureValue>")[0])
            pn = signed.split("<personalNumber>")[1].split("</personalNumber>")[0]
            _, cert = self.pki.user_keys[pn]
            public = cert.public_key()
            assert isinstance(public, ec.EllipticCurvePublicKey)
            public.verify(value, signed.encode(), ec.ECDSA(hashes.SHA256()))
            return True
        except Exception:
            return False

    # -- HTTP entry point --------------------------------------------------------------

    def handle(self, req: SimRequest) -> SimResponse:
        try:
            return self._handle(req)
        except _ApiError as err:
            return SimResponse.json({"errorCode": err.code, "details": err.details}, err.status)

    def _handle(self, req: SimRequest) -> SimResponse:
        cn = _peer_cn(req.client_cert)
        if cn != RP_COMMON_NAME:
            raise _ApiError(401, "unauthorized", "RP certificate has no access")
        if not req.path.startswith(API_PREFIX + "/"):
            raise _ApiError(404, "notFound", "no such endpoint")
        path = req.path[len(API_PREFIX) :]
        if req.method != "POST":
            raise _ApiError(405, "methodNotAllowed", "use POST")
        if req.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise _ApiError(415, "unsupportedMediaType", "use application/json")
        with self._lock:
            queue = self._injected.get(path)
            if queue:
                return queue.popleft()
        try:
            body = json.loads(req.body)
        except (ValueError, UnicodeDecodeError):
            raise _bad("body is not JSON") from None
        if not isinstance(body, dict):
            raise _bad("body must be a JSON object")
        with self._lock:
            self.log.append((path, body))
            if path in ("/auth", "/sign"):
                return SimResponse.json(self._start(path[1:], body))
            if path in ("/phone/auth", "/phone/sign"):
                return SimResponse.json(self._start(path[1:], body))
            if path == "/collect":
                return SimResponse.json(self._collect(body))
            if path == "/cancel":
                return SimResponse.json(self._cancel(body))
            if path == "/_sim/scan":
                qr, pn = body.get("qr"), body.get("personalNumber")
                if not isinstance(qr, str) or not isinstance(pn, str):
                    raise _bad("qr and personalNumber are required")
                return SimResponse.json({"result": self.scan(qr, pn)})
        raise _ApiError(404, "notFound", "no such endpoint")

    # -- orders --------------------------------------------------------------------------

    def _validate_start(self, kind: str, body: dict[str, Any]) -> tuple[str | None, str | None]:
        """Validate like the real API; return (endUserIp, person named in the order)."""
        phone = kind.startswith("phone/")
        sign = kind.endswith("sign")
        common = {"requirement", "userVisibleData", "userVisibleDataFormat", "userNonVisibleData"}
        person: str | None = None
        ip: str | None = None
        if phone:
            _only(body, common | {"personalNumber", "callInitiator"}, "request")
            person = _valid_pn(body.get("personalNumber"), "personalNumber")
            if body.get("callInitiator") not in ("user", "RP"):
                raise _bad("callInitiator must be user or RP")
        else:
            _only(
                body,
                common | {"endUserIp", "returnUrl", "returnRisk", "web", "app"},
                "request",
            )
            raw_ip = body.get("endUserIp")
            if not isinstance(raw_ip, str):
                raise _bad("endUserIp is required")
            try:
                ip = str(ipaddress.ip_address(raw_ip))
            except ValueError:
                raise _bad("endUserIp is not an IP address") from None
            if "returnUrl" in body:
                url = body["returnUrl"]
                # 1-512 characters (RP API v6.0 auth/sign; OpenAPI spec
                # https://developers.bankid.com/assets/openapi/openapi-auth-sign-6.1.9.yaml).
                if (
                    not isinstance(url, str)
                    or not url.startswith(("https://", "http://"))
                    or not 1 <= len(url) <= MAX_RETURN_URL
                ):
                    raise _bad("returnUrl must be an http(s) URL of 1-512 characters")
            _bool(body, "returnRisk")
            if "web" in body:
                _device_object(body["web"], "web", WEB_DEVICE_FIELDS)
                if len(body["web"]["userAgent"]) > MAX_USER_AGENT:
                    raise _bad("web.userAgent is longer than 256 characters")
            if "app" in body:
                _device_object(body["app"], "app", APP_DEVICE_FIELDS)
        req = body.get("requirement", {})
        if not isinstance(req, dict):
            raise _bad("requirement must be an object")
        allowed = {"pinCode", "certificatePolicies"}
        if not phone:
            allowed |= {"mrtd", "cardReader", "personalNumber"}
        _only(req, allowed, "requirement")
        _bool(req, "pinCode")
        _bool(req, "mrtd")
        if "cardReader" in req and req["cardReader"] not in ("class1", "class2"):
            raise _bad("cardReader must be class1 or class2")
        policies = req.get("certificatePolicies", [])
        if not isinstance(policies, list) or not all(isinstance(p, str) for p in policies):
            raise _bad("certificatePolicies must be a list of strings")
        if "personalNumber" in req:
            person = _valid_pn(req["personalNumber"], "requirement.personalNumber")
        if sign and "userVisibleData" not in body:
            raise _bad("userVisibleData is required for sign")
        if "userVisibleData" in body:
            limit = 40_000 if sign else 1_500
            raw = _b64decode(body["userVisibleData"], "userVisibleData", limit)
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                raise _bad("userVisibleData is not UTF-8") from None
        if "userVisibleDataFormat" in body and body["userVisibleDataFormat"] not in (
            "simpleMarkdownV1",
            "plaintext",
        ):
            raise _bad("unknown userVisibleDataFormat")
        if "userNonVisibleData" in body:
            _b64decode(body["userNonVisibleData"], "userNonVisibleData", 200_000)
        return ip, person

    def _start(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        ip, person = self._validate_start(kind, body)
        now = self.clock()
        if person is not None:
            for other in self.orders.values():
                self._timeouts(other, now)
                if other.status == "pending" and other.person == person:
                    if self.supersede_on_conflict:
                        self._end(other, "failed", "cancelled", now)
                    raise _ApiError(400, "alreadyInProgress", "an order is already in progress")
        order = SimOrder(
            ref=str(uuid.uuid4()),
            kind=kind,
            created=now,
            end_user_ip=ip,
            auto_start_token=str(uuid.uuid4()),
            qr_start_token=str(uuid.uuid4()),
            qr_start_secret=str(uuid.uuid4()),
            person=person,
            body=body,
        )
        if "userVisibleData" in body:
            text = base64.b64decode(body["userVisibleData"]).decode("utf-8")
            order.visible_text = (
                render_simple_markdown(text)
                if body.get("userVisibleDataFormat") == "simpleMarkdownV1"
                else text
            )
        if kind.startswith("phone/") and person in self.users:
            order.user = person  # the app gets the order at once during a call
        self.orders[order.ref] = order
        if kind.startswith("phone/"):
            return {"orderRef": order.ref}
        return {
            "orderRef": order.ref,
            "autoStartToken": order.auto_start_token,
            "qrStartToken": order.qr_start_token,
            "qrStartSecret": order.qr_start_secret,
        }

    def _end(self, order: SimOrder, status: str, hint: str, now: float) -> None:
        order.status = status
        order.hint = hint
        order.ended_at = now

    def _timeouts(self, order: SimOrder, now: float) -> None:
        if order.status == "pending" and order.user is None and now - order.created > START_WINDOW:
            self._end(order, "failed", "startFailed", now)

    def _order(self, body: dict[str, Any]) -> SimOrder:
        _only(body, {"orderRef"}, "request")
        ref = body.get("orderRef")
        if not isinstance(ref, str):
            raise _bad("orderRef is required")
        order = self.orders.get(ref)
        if order is None or order.cancelled_by_rp:
            raise _bad("no such order")
        return order

    def _collect(self, body: dict[str, Any]) -> dict[str, Any]:
        order = self._order(body)
        now = self.clock()
        self._timeouts(order, now)
        if order.final_collected:
            raise _bad("order already collected")
        if order.status != "pending" and order.ended_at is not None:
            keep = KEEP_COMPLETED if order.status == "complete" else KEEP_FAILED
            if now - order.ended_at > keep:
                raise _bad("order collected too late")
        if order.status == "pending":
            if order.user is None and self.auto_user and not order.kind.startswith("phone/"):
                self._pick_up(order, self.auto_user)
                return {"orderRef": order.ref, "status": "pending", "hintCode": order.hint}
            if order.user is not None:
                script = self.users[order.user].script
                state = script[min(order.step, len(script) - 1)]
                order.step += 1
                if state in _PENDING:
                    order.hint = state
                elif state == "complete":
                    self._end(order, "complete", "", now)
                    order.completion = self._completion(order)
                else:
                    self._end(order, "failed", state, now)
        if order.status == "pending":
            return {"orderRef": order.ref, "status": "pending", "hintCode": order.hint}
        order.final_collected = True
        if order.status == "complete":
            return {"orderRef": order.ref, "status": "complete", "completionData": order.completion}
        return {"orderRef": order.ref, "status": "failed", "hintCode": order.hint}

    def _cancel(self, body: dict[str, Any]) -> dict[str, Any]:
        order = self._order(body)
        self._timeouts(order, self.clock())
        if order.status != "pending":
            raise _bad("order is not pending")
        self._end(order, "failed", "cancelled", self.clock())
        order.cancelled_by_rp = True
        return {}

    def _completion(self, order: SimOrder) -> dict[str, Any]:
        assert order.user is not None
        pn = order.user
        user = self.users[pn]
        key, cert = self.pki.user(pn, user.name)
        visible = order.body.get("userVisibleData", "")
        hidden = order.body.get("userNonVisibleData", "")
        signed = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            "<!-- authbroker BankID SIMULATOR signature: test data, not BankID XMLDSig -->"
            "<bankIdSimulatorSignature>"
            f"<usrVisibleData>{visible}</usrVisibleData>"
            f"<usrNonVisibleData>{hidden}</usrNonVisibleData>"
            f"<orderRef>{order.ref}</orderRef>"
            f"<personalNumber>{pn}</personalNumber>"
            f"<nonce>{secrets.token_hex(16)}</nonce>"
        )
        value = key.sign(signed.encode(), ec.ECDSA(hashes.SHA256()))
        cert_b64 = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        document = (
            signed
            + f"<SignatureValue>{base64.b64encode(value).decode()}</SignatureValue>"
            + f"<X509Certificate>{cert_b64}</X509Certificate></bankIdSimulatorSignature>"
        )
        signature = base64.b64encode(document.encode()).decode()
        # §1.7: the OCSP nonce is SHA-1 over the base64 signature string + 12 random bytes.
        nonce = hashlib.sha1(signature.encode(), usedforsecurity=False).digest()
        nonce += secrets.token_bytes(12)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        ocsp = (
            OCSPResponseBuilder()
            .add_response(
                cert=cert,
                issuer=self.pki.issuer,
                algorithm=hashes.SHA256(),
                cert_status=OCSPCertStatus.GOOD,
                this_update=now,
                next_update=now + dt.timedelta(hours=1),
                revocation_time=None,
                revocation_reason=None,
            )
            .responder_id(OCSPResponderEncoding.HASH, self.pki.ocsp_cert)
            .certificates([self.pki.ocsp_cert])
            .add_extension(x509.OCSPNonce(nonce), critical=False)
            .sign(self.pki.ocsp_key, hashes.SHA256())
        )
        completion: dict[str, Any] = {
            "user": {
                "personalNumber": pn,
                "name": user.name,
                "givenName": user.given_name,
                "surname": user.surname,
            },
            "device": {
                "ipAddress": self.device_ip or order.end_user_ip or "192.0.2.1",
                "uhi": secrets.token_urlsafe(18),
            },
            "bankIdIssueDate": "2024-01-15",
            "signature": signature,
            "ocspResponse": base64.b64encode(
                ocsp.public_bytes(serialization.Encoding.DER)
            ).decode(),
        }
        requirement = order.body.get("requirement") or {}
        if requirement.get("mrtd"):
            completion["stepUp"] = {"mrtd": True}
        if order.body.get("returnRisk"):
            completion["risk"] = self.risk
        return completion


def _peer_cn(cert: Mapping[str, Any] | None) -> str | None:
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


class _Running:
    def __init__(self, server: LoopbackServer, folder: str) -> None:
        self.server = server
        self.folder = folder

    def stop(self) -> None:
        try:
            self.server.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def start(config: ProviderConfig, settings: Settings) -> RunningSimulator:
    """Start the simulator; the overrides point the adapter at it over mTLS."""
    pki = _Pki(config.name)
    folder = tempfile.mkdtemp(prefix="authbroker-bankid-se-")
    password = secrets.token_urlsafe(24)
    files = pki.write(Path(folder), password.encode())
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    tls.load_cert_chain(files["server_cert"], files["server_key"])
    tls.load_verify_locations(files["ca_file"])
    tls.verify_mode = ssl.CERT_REQUIRED
    sim = BankIdSimulator(pki)
    auto_user = config.get("simulator_auto_user")
    if auto_user:
        sim.auto_user = str(auto_user)
    server = LoopbackServer(sim.handle, tls=tls).start()
    overrides = {
        "api_url": server.url + API_PREFIX,
        "cert_file": files["cert_file"],
        "key_file": files["key_file"],
        "key_password": password,
        "ca_file": files["ca_file"],
    }
    return RunningSimulator(
        overrides=overrides,
        server=_Running(server, folder),
        extra={
            "simulator": sim,
            "server": server,
            "users": sim.users,
            "files": files,
            "key_password": password,
        },
    )
