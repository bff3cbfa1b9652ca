"""GatewayAPI-style JSON sender (``POST /rest/mtsms``).

Request (GatewayAPI REST API, "Sending SMS'es"): a JSON object with ``message``
(UTF-8 text, transcoded by the gateway), ``sender`` (≤ 11 alphanumerics or ≤ 15
digits), ``recipients`` (a list of ``{"msisdn": <number without +>}``) and
``userref`` (a transparent client reference echoed in delivery reports). Auth is the
API token in an ``Authorization: Token <token>`` header (the token can also be the
Basic-auth user name; a token in the URL would end up in access logs, so it is never
put there). Success is ``200`` with ``{"ids": [<int>], "usage": {...}}``; errors are
``{"code": "0x0213", "message": ..., "incident_uuid": ...}`` with 400/401/403/422/500.

The API has no idempotency key (``userref`` is not de-duplicated), so only the safe
cases are retried (see :mod:`authbroker.sms.base`). EU accounts use
``https://gatewayapi.eu``.
"""

from __future__ import annotations

import re

from ..errors import ConfigError, InvalidInput
from ..http import HttpRequest, HttpResponse
from .base import HttpSmsSender, RetryPolicy, SmsMessage, json_error_code

__all__ = ["GatewayApiSender"]

DEFAULT_BASE_URL = "https://gatewayapi.com"
_SENDER = re.compile(r"[0-9]{1,15}|[A-Za-z0-9 .\-]{1,11}")


class GatewayApiSender(HttpSmsSender):
    """Send through GatewayAPI (``gatewayapi.com`` / ``gatewayapi.eu``) or a lookalike."""

    name = "gatewayapi"

    def __init__(
        self,
        *,
        token: str,
        sender: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(timeout=timeout, retry=retry)
        if not token or len(token) < 16:
            raise ConfigError("is missing or too short", key="sms.token")
        if not _SENDER.fullmatch(sender or ""):
            raise ConfigError("must be up to 11 letters/digits or 15 digits", key="sms.sender")
        if not base_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ConfigError("must be an https URL", key="sms.base_url")
        self._token = token
        self.sender = sender
        self.base_url = base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"GatewayApiSender(sender={self.sender!r}, base_url={self.base_url!r})"

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/rest/mtsms"

    def build_request(self, message: SmsMessage) -> HttpRequest:
        if not message.to.startswith("+") or not message.to[1:].isdigit():
            raise InvalidInput("recipient must be an E.164 number", code="bad_recipient")
        payload = {
            "sender": message.sender_id or self.sender,
            "message": message.body,
            "recipients": [{"msisdn": int(message.to[1:])}],
            "userref": message.reference,
        }
        return HttpRequest.post_json(
            self.endpoint,
            payload,
            headers={"Authorization": f"Token {self._token}", "Accept": "application/json"},
            timeout=self.timeout,
            tag="sms.gatewayapi",
        )

    def parse_success(self, response: HttpResponse) -> str:
        ids = response.json_object().get("ids")
        if (
            not isinstance(ids, list)
            or len(ids) != 1
            or not isinstance(ids[0], int)
            or isinstance(ids[0], bool)
        ):
            raise InvalidInput("GatewayAPI answer has no message id", code="bad_ids")
        return str(ids[0])

    def error_detail(self, response: HttpResponse) -> str:
        return json_error_code(response)
