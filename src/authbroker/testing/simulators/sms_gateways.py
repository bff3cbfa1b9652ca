"""Simulated SMS gateways: Twilio's Messages API and GatewayAPI's ``/rest/mtsms``.

Each simulator checks what a real gateway checks (path, method, credentials, content
type, required fields, number format) and answers in the real shape: Twilio with
``201`` and a message resource (``sid`` ``SM`` + 32 hex) or a JSON error with a
numeric ``code`` (20003 authentication, 21211 invalid ``To``, 21602 missing body,
20429 too many requests); GatewayAPI with ``200`` ``{"ids": [...], "usage": ...}`` or
``{"code": "0x....", "message": ..., "incident_uuid": ...}``. The hexadecimal
GatewayAPI error codes used here are placeholders chosen by the simulator.

Tests make them misbehave with :meth:`GatewaySimulator.fail_next` (429 with or without
``Retry-After``, 500, 502, 503, 401...) and :meth:`GatewaySimulator.stall_next`
(answer only after a delay, to trigger client timeouts). Accepted messages are kept in
:attr:`GatewaySimulator.accepted`; request counts are on the :class:`LoopbackServer`.
Nothing is logged.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from .server import LoopbackServer, SimRequest, SimResponse

__all__ = ["GatewayApiSimulator", "GatewaySimulator", "TwilioSimulator"]

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


@dataclass(frozen=True, slots=True)
class _Fault:
    status: int = 0
    retry_after: str | None = None
    stall: float = 0.0


@dataclass(frozen=True, slots=True)
class AcceptedSms:
    to: str
    body: str
    sender: str
    reference: str
    message_id: str


class GatewaySimulator:
    """Shared plumbing: fault queue, accepted messages, the loopback server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: deque[_Fault] = deque()
        self.accepted: list[AcceptedSms] = []
        self.server = LoopbackServer(self._handle)

    # -- control -----------------------------------------------------------------

    def fail_next(self, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` (after auth checks)."""
        with self._lock:
            self._faults.extend(
                _Fault(status=status, retry_after=retry_after) for _ in range(times)
            )

    def stall_next(self, seconds: float, *, times: int = 1) -> None:
        """Accept the next requests, but only answer after ``seconds``."""
        with self._lock:
            self._faults.extend(_Fault(stall=seconds) for _ in range(times))

    def reset(self) -> None:
        """Forget faults, accepted messages and request counts (reuse between tests)."""
        with self._lock:
            self._faults.clear()
            self.accepted.clear()
            self.server.requests.clear()

    def start(self) -> GatewaySimulator:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> GatewaySimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def request_count(self) -> int:
        return sum(self.server.requests.values())

    # -- request handling ----------------------------------------------------------

    def _next_fault(self) -> _Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _handle(self, req: SimRequest) -> SimResponse:
        denied = self.check(req)
        if denied is not None:
            return denied
        fault = self._next_fault()
        if fault is not None and fault.status:
            resp = self.error(fault.status)
            if fault.retry_after is not None:
                resp.headers["Retry-After"] = fault.retry_after
            return resp
        resp = self.accept(req)
        if fault is not None and fault.stall:
            time.sleep(fault.stall)
        return resp

    def _record(self, item: AcceptedSms) -> None:
        with self._lock:
            self.accepted.append(item)

    def check(self, req: SimRequest) -> SimResponse | None:
        raise NotImplementedError

    def error(self, status: int) -> SimResponse:
        raise NotImplementedError

    def accept(self, req: SimRequest) -> SimResponse:
        raise NotImplementedError


def _basic_credentials(req: SimRequest) -> tuple[str, str] | None:
    header = req.headers.get("authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except ValueError:
        return None
    return user, password


class TwilioSimulator(GatewaySimulator):
    """``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``."""

    def __init__(self, *, account_sid: str | None = None, auth_token: str | None = None) -> None:
        super().__init__()
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)

    @staticmethod
    def _json_error(status: int, code: int, message: str) -> SimResponse:
        return SimResponse.json(
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
            status,
        )

    def error(self, status: int) -> SimResponse:
        codes = {401: 20003, 404: 20404, 429: 20429, 400: 21211}
        texts = {401: "Authenticate", 429: "Too Many Requests", 404: "Not Found"}
        if status >= 500:
            return SimResponse(status, b"upstream error", {"Content-Type": "text/plain"})
        return self._json_error(status, codes.get(status, 20001), texts.get(status, "Error"))

    def check(self, req: SimRequest) -> SimResponse | None:
        if req.path != f"/2010-04-01/Accounts/{self.account_sid}/Messages.json":
            return self._json_error(404, 20404, "The requested resource was not found")
        if req.method != "POST":
            return self._json_error(405, 20004, "Method not allowed")
        creds = _basic_credentials(req)
        if creds is None or not (
            hmac.compare_digest(creds[0], self.account_sid)
            and hmac.compare_digest(creds[1], self.auth_token)
        ):
            return self._json_error(401, 20003, "Authenticate")
        if not req.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return self._json_error(400, 20001, "Invalid content type")
        return None

    def accept(self, req: SimRequest) -> SimResponse:
        form = req.form()
        to = form.get("To", "")
        if not _E164.fullmatch(to):
            return self._json_error(400, 21211, "The 'To' number is not a valid phone number.")
        body = form.get("Body", "")
        if not body:
            return self._json_error(400, 21602, "Message body is required.")
        sender = form.get("From") or form.get("MessagingServiceSid") or ""
        if not sender:
            return self._json_error(400, 21603, "A 'From' phone number is required.")
        sid = "SM" + secrets.token_hex(16)
        self._record(AcceptedSms(to, body, sender, "", sid))
        payload: dict[str, Any] = {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "direction": "outbound-api",
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_segments": "1",
            "sid": sid,
            "status": "queued",
            "to": to,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        return SimResponse.json(payload, 201)


class GatewayApiSimulator(GatewaySimulator):
    """``POST /rest/mtsms`` with token auth (``Authorization: Token ...`` or Basic)."""

    def __init__(self, *, token: str | None = None) -> None:
        super().__init__()
        self.token = token or secrets.token_urlsafe(32)
        self._next_id = 100_000_000

    @staticmethod
    def _json_error(status: int, code: str, message: str) -> SimResponse:
        return SimResponse.json(
            {"code": code, "incident_uuid": str(uuid.uuid4()), "message": message}, status
        )

    def error(self, status: int) -> SimResponse:
        if status == 401:
            return self._json_error(401, "0x0401", "Invalid API token")
        if status == 429:
            return self._json_error(429, "0x0429", "Too many requests")
        if status >= 500:
            return self._json_error(status, "0x0500", "Internal error")
        return self._json_error(status, "0x0400", "Invalid arguments")

    def _token_ok(self, req: SimRequest) -> bool:
        header = req.headers.get("authorization", "")
        if header.startswith("Token "):
            return hmac.compare_digest(header[6:], self.token)
        creds = _basic_credentials(req)
        return creds is not None and hmac.compare_digest(creds[0], self.token)

    def check(self, req: SimRequest) -> SimResponse | None:
        if req.path != "/rest/mtsms":
            return self._json_error(404, "0x0404", "Not found")
        if req.method != "POST":
            return self._json_error(405, "0x0405", "Method not allowed")
        if not self._token_ok(req):
            return self._json_error(401, "0x0401", "Invalid API token")
        return None

    def accept(self, req: SimRequest) -> SimResponse:
        try:
            data = req.json()
        except ValueError:
            return self._json_error(422, "0x0422", "Invalid JSON request body")
        if not isinstance(data, dict):
            return self._json_error(422, "0x0422", "Invalid JSON request body")
        message = data.get("message")
        recipients = data.get("recipients")
        sender = data.get("sender", "")
        if not isinstance(message, str) or not message:
            return self._json_error(400, "0x0400", "message is required")
        if not isinstance(sender, str) or len(sender) > 15:
            return self._json_error(400, "0x0400", "invalid sender")
        if not isinstance(recipients, list) or len(recipients) != 1:
            return self._json_error(400, "0x0400", "recipients are required")
        msisdn = recipients[0].get("msisdn") if isinstance(recipients[0], dict) else None
        if not isinstance(msisdn, int) or not _E164.fullmatch(f"+{msisdn}"):
            return self._json_error(400, "0x0400", "invalid msisdn")
        with self._lock:
            self._next_id += 1
            message_id = self._next_id
        self._record(
            AcceptedSms(
                f"+{msisdn}", message, sender, str(data.get("userref", "")), str(message_id)
            )
        )
        return SimResponse.json(
            {"ids": [message_id], "usage": {"countries": {"XX": 1}, "currency": "EUR"}}
        )
