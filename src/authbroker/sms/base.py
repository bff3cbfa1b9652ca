"""The SMS sender contract: one sans-I/O implementation per gateway, sync and async.

A sender never opens a socket. :meth:`SmsSender.send` is a routine
(:mod:`authbroker.kernel`) that yields :class:`~authbroker.http.HttpRequest` values
(and :class:`~authbroker.kernel.Sleep` waits between retries) and returns an
:class:`SmsReceipt`. The link engine composes it into ``open``/``resend`` with
``yield from``; on its own it runs in either runtime
(``SyncRuntime(driver).run(sender.send(message))``). So one Twilio implementation
serves WSGI, ASGI and the CLI, the way providers do (docs/development.md).

Retry policy (security requirement SMS-01). A blind retry of a POST that reached the
gateway can send, and bill, the same message twice, and neither Twilio's Messages API
nor GatewayAPI's ``/rest/mtsms`` takes an idempotency key. So a request is repeated
only when the gateway certainly did not act on it:

* the connection was never established (driver error code ``http_connect``);
* the gateway answered 429 (it refused the request; ``Retry-After`` is honoured up
  to :attr:`RetryPolicy.max_wait`, a longer wait ends in :class:`RateLimited`);
* the gateway answered 503 (RFC 9110 §15.6.4: the server is *unable to handle* the
  request now, i.e. it was not processed).

Other 5xx answers and read timeouts are ambiguous: the message may already be on its
way. They end at once in :class:`ProviderUnavailable` unless the sender declares
``idempotent = True`` (a gateway that de-duplicates by :attr:`SmsMessage.reference`),
or the operator sets :attr:`RetryPolicy.retry_ambiguous` and accepts duplicates.
Final failures are typed: :class:`ProviderUnavailable` (gateway down, 5xx, timeout),
:class:`RateLimited` (429 after the retries), :class:`ProviderError` (credentials,
refused number, malformed answer: retrying cannot help).

Log hygiene: message bodies and credentials never appear in a ``repr``, an error or a
log line; numbers are masked with :func:`mask_phone`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Protocol, TypeAlias, runtime_checkable

import phonenumbers

from ..errors import (
    ConfigError,
    InvalidInput,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from ..http import HttpRequest, HttpResponse
from ..kernel import Gen, fetch, sleep

__all__ = [
    "HttpSmsSender",
    "RetryPolicy",
    "SendGen",
    "SmsMessage",
    "SmsReceipt",
    "SmsSender",
    "mask_phone",
]


def mask_phone(e164: str) -> str:
    """``+358401234567`` → ``+358******67``: country code and the last two digits.

    The number of stars is fixed, so the mask does not reveal the length either.
    Security requirement OTP-07 (only a masked number is shown).
    """
    if not isinstance(e164, str) or not e164.startswith("+") or not e164[1:].isdigit():
        return "+" + "*" * 8
    digits = e164[1:]
    if len(digits) < 7:
        return "+" + "*" * 8
    try:
        country = str(phonenumbers.parse(e164, None).country_code)
    except phonenumbers.NumberParseException:
        country = ""
    if not digits.startswith(country):  # pragma: no cover - parse echoes the prefix
        country = ""
    return "+" + country + "*" * 6 + digits[-2:]


@dataclass(frozen=True, slots=True)
class SmsMessage:
    """One text message to one E.164 number.

    ``reference`` is a non-secret correlation value (a prefix of the challenge id)
    sent as the gateway's client reference where one exists; it is also what an
    idempotent gateway would de-duplicate on.
    """

    to: str = field(repr=False)
    body: str = field(repr=False)
    reference: str = ""
    sender_id: str | None = None

    def __repr__(self) -> str:
        return f"SmsMessage(to={mask_phone(self.to)!r}, chars={len(self.body)})"


@dataclass(frozen=True, slots=True)
class SmsReceipt:
    """What the gateway said when it accepted the message."""

    provider: str
    message_id: str
    status: str = "accepted"
    attempts: int = 1


#: A sender's sans-I/O routine: yields requests and waits, returns the receipt.
SendGen: TypeAlias = Gen[SmsReceipt]


@runtime_checkable
class SmsSender(Protocol):
    """Anything that can send one SMS as a sans-I/O routine."""

    #: Short provider name used in audit events (``twilio``, ``gatewayapi``, ``outbox``).
    name: str

    def send(self, message: SmsMessage) -> SendGen:
        """Yield requests and waits; return the receipt or raise an ``authbroker.errors`` type."""
        ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries for transient gateway failures (see the module documentation)."""

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 4.0
    #: Longest ``Retry-After`` worth waiting for inside one user request.
    max_wait: float = 10.0
    #: Retry 500/502/504 and read timeouts although the SMS may have been sent.
    retry_ambiguous: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= 10:
            raise ConfigError("must be between 1 and 10", key="sms.retry.max_attempts")
        if not (0 <= self.base_delay <= self.max_delay <= 60 and 0 <= self.max_wait <= 120):
            raise ConfigError("delays must be 0 <= base <= max <= 60 s", key="sms.retry")

    def backoff(self, attempt: int) -> float:
        """Exponential back-off with full jitter (attempt counts from 1)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (RFC 9110 §10.2.3: delay-seconds or a date)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(min(int(text), 86400))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    delta = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, min(delta, 86400.0))


class HttpSmsSender:
    """Base of the HTTP gateway senders: the retry loop lives here, once.

    Subclasses build the request (:meth:`build_request`) and read the answer
    (:meth:`parse_success`, :meth:`error_detail`); everything about when to retry and
    which error to raise is shared.
    """

    name: str = "http"
    #: True only for a gateway that de-duplicates repeated requests by reference.
    idempotent: ClassVar[bool] = False

    def __init__(self, *, timeout: float = 10.0, retry: RetryPolicy | None = None) -> None:
        if not 0 < timeout <= 60:
            raise ConfigError("must be between 0 and 60 seconds", key=f"sms.{self.name}.timeout")
        self.timeout = timeout
        self.retry = retry or RetryPolicy()

    # -- to implement ------------------------------------------------------------

    def build_request(self, message: SmsMessage) -> HttpRequest:
        raise NotImplementedError

    def parse_success(self, response: HttpResponse) -> str:
        """The gateway's message id from a 2xx answer (raise InvalidInput if malformed)."""
        raise NotImplementedError

    def error_detail(self, response: HttpResponse) -> str:
        """A short, non-secret error code from an error answer ('' if none)."""
        return ""

    # -- the shared routine --------------------------------------------------------

    def send(self, message: SmsMessage) -> SendGen:
        request = self.build_request(message)
        policy = self.retry
        ambiguous_ok = self.idempotent or policy.retry_ambiguous
        attempt = 0
        while True:
            attempt += 1
            last = attempt >= policy.max_attempts
            try:
                response = yield from fetch(request)
            except ProviderUnavailable as exc:
                safe = exc.code == "http_connect" or ambiguous_ok
                if last or not safe:
                    raise ProviderUnavailable(
                        f"SMS gateway {self.name} could not be reached",
                        code="sms_unavailable" if safe else "sms_ambiguous",
                        details={"attempts": attempt, "cause": exc.code},
                    ) from exc
                yield from sleep(policy.backoff(attempt))
                continue
            assert isinstance(response, HttpResponse)
            status = response.status
            if 200 <= status < 300:
                try:
                    message_id = self.parse_success(response)
                except InvalidInput as exc:
                    # Accepted (2xx) but unreadable: the message is probably on its way,
                    # so this is final and never retried.
                    raise ProviderError(
                        f"SMS gateway {self.name} gave an unreadable answer",
                        code="sms_bad_response",
                    ) from exc
                return SmsReceipt(self.name, message_id, "accepted", attempt)
            detail = self.error_detail(response)
            details: dict[str, Any] = {"status": status, "attempts": attempt}
            if detail:
                details["gateway_error"] = detail
            if status == 429:
                wait = parse_retry_after(response.headers.get("retry-after"))
                if last or (wait is not None and wait > policy.max_wait):
                    raise RateLimited(
                        f"SMS gateway {self.name} is rate limiting",
                        retry_after=wait,
                        code="sms_rate_limited",
                        details=details,
                    )
                yield from sleep(policy.backoff(attempt) if wait is None else wait)
                continue
            if status >= 500:
                safe = status == 503 or ambiguous_ok
                if last or not safe:
                    raise ProviderUnavailable(
                        f"SMS gateway {self.name} failed",
                        code="sms_unavailable" if safe else "sms_ambiguous",
                        details=details,
                    )
                wait = parse_retry_after(response.headers.get("retry-after"))
                if wait is None or wait > policy.max_wait:
                    wait = policy.backoff(attempt)
                yield from sleep(wait)
                continue
            code = "sms_auth" if status in (401, 403) else "sms_rejected"
            raise ProviderError(
                f"SMS gateway {self.name} refused the message", code=code, details=details
            )


def _short_error(value: object) -> str:
    """A gateway error code made safe for logs: short, printable ASCII only."""
    text = str(value)[:32]
    return "".join(ch for ch in text if ch.isascii() and (ch.isalnum() or ch in "-_.:"))


def json_error_code(response: HttpResponse, key: str = "code") -> str:
    """Pull an error code from a JSON error body without trusting its shape."""
    try:
        body = response.json()
    except InvalidInput:
        return ""
    if isinstance(body, Mapping) and key in body:
        return _short_error(body[key])
    return ""
