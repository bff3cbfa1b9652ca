"""The BankID RP API v6.0 state machine behind the simulator's loopback server
(https://developers.bankid.com/api-references/auth--sign/auth); the package docstring
describes the simulator as a whole."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import math
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.ocsp import OCSPCertStatus, OCSPResponderEncoding, OCSPResponseBuilder

from ..server import SimRequest, SimResponse
from .orders import (
    API_PREFIX,
    KEEP_COMPLETED,
    KEEP_FAILED,
    PENDING,
    QR_TOLERANCE,
    RP_COMMON_NAME,
    START_WINDOW,
    TEST_USERS,
    SimOrder,
    SimUser,
    render_simple_markdown,
)
from .pki import TestPki
from .validation import (
    APP_DEVICE_FIELDS,
    MAX_RETURN_URL,
    MAX_USER_AGENT,
    WEB_DEVICE_FIELDS,
    ApiError,
    b64decode,
    bad,
    boolean,
    device_object,
    only,
    peer_cn,
    valid_pn,
)


class BankIdSimulator:
    """The RP API state machine behind the loopback server (thread-safe)."""

    def __init__(self, pki: TestPki, *, users: Mapping[str, SimUser] | None = None) -> None:
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

    def return_url(self, auto_start_token: str) -> str | None:
        """The ``returnUrl`` of the order started with ``auto_start_token``: where the
        app sends the browser back after a same-device identification
        (https://developers.bankid.com/use-cases/mobile-bankid-on-the-same-device)."""
        with self._lock:
            for order in self.orders.values():
                if hmac.compare_digest(order.auto_start_token, auto_start_token):
                    url = order.body.get("returnUrl")
                    return url if isinstance(url, str) else None
        return None

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
        except ApiError as err:
            return SimResponse.json({"errorCode": err.code, "details": err.details}, err.status)

    def _handle(self, req: SimRequest) -> SimResponse:
        cn = peer_cn(req.client_cert)
        if cn != RP_COMMON_NAME:
            raise ApiError(401, "unauthorized", "RP certificate has no access")
        if not req.path.startswith(API_PREFIX + "/"):
            raise ApiError(404, "notFound", "no such endpoint")
        path = req.path[len(API_PREFIX) :]
        if req.method != "POST":
            raise ApiError(405, "methodNotAllowed", "use POST")
        if req.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise ApiError(415, "unsupportedMediaType", "use application/json")
        with self._lock:
            queue = self._injected.get(path)
            if queue:
                return queue.popleft()
        try:
            body = json.loads(req.body)
        except (ValueError, UnicodeDecodeError):
            raise bad("body is not JSON") from None
        if not isinstance(body, dict):
            raise bad("body must be a JSON object")
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
                    raise bad("qr and personalNumber are required")
                return SimResponse.json({"result": self.scan(qr, pn)})
        raise ApiError(404, "notFound", "no such endpoint")

    # -- orders --------------------------------------------------------------------------

    def _validate_start(self, kind: str, body: dict[str, Any]) -> tuple[str | None, str | None]:
        """Validate like the real API; return (endUserIp, person named in the order)."""
        phone = kind.startswith("phone/")
        sign = kind.endswith("sign")
        common = {"requirement", "userVisibleData", "userVisibleDataFormat", "userNonVisibleData"}
        person: str | None = None
        ip: str | None = None
        if phone:
            only(body, common | {"personalNumber", "callInitiator"}, "request")
            person = valid_pn(body.get("personalNumber"), "personalNumber")
            if body.get("callInitiator") not in ("user", "RP"):
                raise bad("callInitiator must be user or RP")
        else:
            only(
                body,
                common | {"endUserIp", "returnUrl", "returnRisk", "web", "app"},
                "request",
            )
            raw_ip = body.get("endUserIp")
            if not isinstance(raw_ip, str):
                raise bad("endUserIp is required")
            try:
                ip = str(ipaddress.ip_address(raw_ip))
            except ValueError:
                raise bad("endUserIp is not an IP address") from None
            if "returnUrl" in body:
                url = body["returnUrl"]
                # 1-512 characters (RP API v6.0 auth/sign; OpenAPI spec
                # https://developers.bankid.com/assets/openapi/openapi-auth-sign-6.1.9.yaml).
                if (
                    not isinstance(url, str)
                    or not url.startswith(("https://", "http://"))
                    or not 1 <= len(url) <= MAX_RETURN_URL
                ):
                    raise bad("returnUrl must be an http(s) URL of 1-512 characters")
            boolean(body, "returnRisk")
            if "web" in body:
                device_object(body["web"], "web", WEB_DEVICE_FIELDS)
                if len(body["web"]["userAgent"]) > MAX_USER_AGENT:
                    raise bad("web.userAgent is longer than 256 characters")
            if "app" in body:
                device_object(body["app"], "app", APP_DEVICE_FIELDS)
        req = body.get("requirement", {})
        if not isinstance(req, dict):
            raise bad("requirement must be an object")
        allowed = {"pinCode", "certificatePolicies"}
        if not phone:
            allowed |= {"mrtd", "cardReader", "personalNumber"}
        only(req, allowed, "requirement")
        boolean(req, "pinCode")
        boolean(req, "mrtd")
        if "cardReader" in req and req["cardReader"] not in ("class1", "class2"):
            raise bad("cardReader must be class1 or class2")
        policies = req.get("certificatePolicies", [])
        if not isinstance(policies, list) or not all(isinstance(p, str) for p in policies):
            raise bad("certificatePolicies must be a list of strings")
        if "personalNumber" in req:
            person = valid_pn(req["personalNumber"], "requirement.personalNumber")
        if sign and "userVisibleData" not in body:
            raise bad("userVisibleData is required for sign")
        if "userVisibleData" in body:
            limit = 40_000 if sign else 1_500
            raw = b64decode(body["userVisibleData"], "userVisibleData", limit)
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                raise bad("userVisibleData is not UTF-8") from None
        if "userVisibleDataFormat" in body and body["userVisibleDataFormat"] not in (
            "simpleMarkdownV1",
            "plaintext",
        ):
            raise bad("unknown userVisibleDataFormat")
        if "userNonVisibleData" in body:
            b64decode(body["userNonVisibleData"], "userNonVisibleData", 200_000)
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
                    raise ApiError(400, "alreadyInProgress", "an order is already in progress")
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
        only(body, {"orderRef"}, "request")
        ref = body.get("orderRef")
        if not isinstance(ref, str):
            raise bad("orderRef is required")
        order = self.orders.get(ref)
        if order is None or order.cancelled_by_rp:
            raise bad("no such order")
        return order

    def _collect(self, body: dict[str, Any]) -> dict[str, Any]:
        order = self._order(body)
        now = self.clock()
        self._timeouts(order, now)
        if order.final_collected:
            raise bad("order already collected")
        if order.status != "pending" and order.ended_at is not None:
            keep = KEEP_COMPLETED if order.status == "complete" else KEEP_FAILED
            if now - order.ended_at > keep:
                raise bad("order collected too late")
        if order.status == "pending":
            if order.user is None and self.auto_user and not order.kind.startswith("phone/"):
                self._pick_up(order, self.auto_user)
                return {"orderRef": order.ref, "status": "pending", "hintCode": order.hint}
            if order.user is not None:
                script = self.users[order.user].script
                state = script[min(order.step, len(script) - 1)]
                order.step += 1
                if state in PENDING:
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
            raise bad("order is not pending")
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
