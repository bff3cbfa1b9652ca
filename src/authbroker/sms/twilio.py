"""Twilio-compatible REST sender (Programmable Messaging, API version 2010-04-01).

``POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json`` with an
``application/x-www-form-urlencoded`` body (``To``, ``From`` or
``MessagingServiceSid``, ``Body``) and HTTP Basic authentication: the Account SID and
auth token, or an API key SID and its secret (Twilio REST API docs, "Authentication"
and "Message resource: create"). Success is ``201 Created`` with the message
resource (``sid`` ``SM...``, ``status`` ``queued``/``accepted``); errors are JSON
objects with a numeric ``code`` (e.g. 20003 authentication failed, 21211 invalid
``To``, 21408 region not enabled, 20429 too many requests).

Twilio's create call has no idempotency key, so only the safe cases are retried
(see :mod:`authbroker.sms.base`).
"""

from __future__ import annotations

import base64
import re

from ..errors import ConfigError, InvalidInput
from ..http import HttpRequest, HttpResponse
from .base import HttpSmsSender, RetryPolicy, SmsMessage, json_error_code

__all__ = ["TwilioSender"]

DEFAULT_BASE_URL = "https://api.twilio.com"
_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_API_KEY_SID = re.compile(r"SK[0-9a-fA-F]{32}")
_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
_MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-fA-F]{32}")


class TwilioSender(HttpSmsSender):
    """Send through Twilio or any gateway speaking the same Messages API."""

    name = "twilio"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        api_key_sid: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(timeout=timeout, retry=retry)
        if not _ACCOUNT_SID.fullmatch(account_sid or ""):
            raise ConfigError("must look like AC followed by 32 hex digits", key="sms.account_sid")
        if api_key_sid is not None and not _API_KEY_SID.fullmatch(api_key_sid):
            raise ConfigError("must look like SK followed by 32 hex digits", key="sms.api_key_sid")
        if not auth_token:
            raise ConfigError("is required", key="sms.auth_token")
        if messaging_service_sid is not None and not _SERVICE_SID.fullmatch(messaging_service_sid):
            raise ConfigError("must look like MG followed by 32 hex digits", key="sms.service")
        if not (from_number or messaging_service_sid):
            raise ConfigError("set from_number or messaging_service_sid", key="sms.from")
        if not base_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ConfigError("must be an https URL", key="sms.base_url")
        self.account_sid = account_sid
        self._username = api_key_sid or account_sid
        self._auth_token = auth_token
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.base_url = base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"TwilioSender(account_sid={self.account_sid[:6]}..., base_url={self.base_url!r})"

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def build_request(self, message: SmsMessage) -> HttpRequest:
        form = {"To": message.to, "Body": message.body}
        if self.messaging_service_sid:
            form["MessagingServiceSid"] = self.messaging_service_sid
        else:
            assert self.from_number is not None
            form["From"] = message.sender_id or self.from_number
        basic = base64.b64encode(f"{self._username}:{self._auth_token}".encode()).decode()
        return HttpRequest.post_form(
            self.endpoint,
            form,
            headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
            timeout=self.timeout,
            tag="sms.twilio",
        )

    def parse_success(self, response: HttpResponse) -> str:
        sid = response.json_object().get("sid")
        if not isinstance(sid, str) or not _MESSAGE_SID.fullmatch(sid):
            raise InvalidInput("Twilio answer has no message sid", code="bad_sid")
        return sid

    def error_detail(self, response: HttpResponse) -> str:
        return json_error_code(response)
