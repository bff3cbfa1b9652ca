"""SMS delivery for one-time codes: a sans-I/O sender contract and three senders.

* :class:`OutboxSender`: keeps messages in memory (development, tests, demo).
* :class:`TwilioSender`: Twilio's Messages API (form POST, Basic auth).
* :class:`GatewayApiSender`: GatewayAPI's ``/rest/mtsms`` (JSON POST, token auth).

A sender's ``send(message)`` is a routine: :class:`authbroker.engines.links.LinkEngine`
composes it into opening a link; on its own, run it in a runtime
(``SyncRuntime(driver).run(sender.send(message))``). :func:`sender_from_config` builds one
from the ``[sms]`` table of ``authbroker.toml``::

    [sms]
    backend = "twilio"            # outbox | twilio | gatewayapi
    account_sid = "AC..."
    auth_token_env = "TWILIO_AUTH_TOKEN"
    from_number = "+358401234567"
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..config_schema import Option, Schema
from ..errors import ConfigError
from .base import (
    HttpSmsSender,
    RetryPolicy,
    SendGen,
    SmsMessage,
    SmsReceipt,
    SmsSender,
    mask_phone,
)
from .gatewayapi import GatewayApiSender
from .messages import LANGUAGES, render_code_message
from .outbox import OutboxMessage, OutboxSender
from .twilio import TwilioSender

__all__ = [
    "CONFIG_SECTION",
    "LANGUAGES",
    "GatewayApiSender",
    "HttpSmsSender",
    "OutboxMessage",
    "OutboxSender",
    "RetryPolicy",
    "SendGen",
    "SmsMessage",
    "SmsReceipt",
    "SmsSender",
    "TwilioSender",
    "mask_phone",
    "render_code_message",
    "sender_from_config",
]


def _secret(
    table: Mapping[str, Any], key: str, environ: Mapping[str, str], environment: str
) -> str:
    env_name = table.get(f"{key}_env")
    if env_name:
        value = environ.get(str(env_name))
        if not value:
            raise ConfigError(f"environment variable {env_name} is not set", key=f"sms.{key}_env")
        return value
    if key in table:
        if environment != "simulator":
            raise ConfigError("secrets must come from the environment", key=f"sms.{key}")
        return str(table[key])
    raise ConfigError("is required", key=f"sms.{key}_env")


#: ``[sms].retry``: the fields of :class:`RetryPolicy`.
_RETRY_SECTION = Schema(
    "sms.retry",
    "Retries of transient gateway failures.",
    (
        Option("max_attempts", "integer", 3, "sends tried at most (1..10)"),
        Option("base_delay", "number", 0.5, "first back-off ceiling in seconds"),
        Option("max_delay", "number", 4.0, "largest back-off in seconds (<= 60)"),
        Option("max_wait", "number", 10.0, "longest Retry-After honoured, seconds"),
        Option("retry_ambiguous", "boolean", False, "retry 5xx/timeouts that may have sent"),
    ),
)

#: The ``[sms]`` table: :func:`sender_from_config` reads these keys and nothing else.
CONFIG_SECTION = Schema(
    "sms",
    "The SMS sender of direct links.",
    (
        Option(
            "backend", "string", "outbox", "SMS gateway", choices=("outbox", "twilio", "gatewayapi")
        ),
        Option("timeout", "number", 10.0, "HTTP timeout in seconds"),
        Option("retry", "table", {}, "retry policy", fields=_RETRY_SECTION),
        Option("base_url", "string", None, "gateway API URL (default: the backend's)"),
        Option("account_sid", "string", None, "twilio: account SID"),
        Option("auth_token", "string", None, "twilio: auth token", secret=True),
        Option("from_number", "string", None, "twilio: sender number"),
        Option(
            "messaging_service_sid",
            "string",
            None,
            "twilio: messaging service instead of from_number",
        ),
        Option("api_key_sid", "string", None, "twilio: API key SID used with auth_token"),
        Option("token", "string", None, "gatewayapi: API token", secret=True),
        Option("sender", "string", None, "gatewayapi: sender name or number"),
    ),
)


def sender_from_config(
    table: Mapping[str, Any],
    *,
    environment: str,
    environ: Mapping[str, str] | None = None,
) -> SmsSender:
    """Build the sender an ``[sms]`` table describes (outbox when empty).

    ``environment`` (the broker's ``Settings.environment``) has no default on purpose:
    the outbox and secrets written inline in the file are refused in production, and
    that promise must not depend on a caller remembering to pass it.
    """
    env = os.environ if environ is None else environ
    backend = str(table.get("backend", "outbox"))
    retry_table = table.get("retry", {})
    if not isinstance(retry_table, Mapping):
        raise ConfigError("must be a table", key="sms.retry")
    try:
        retry = RetryPolicy(**dict(retry_table))
        timeout = float(table.get("timeout", 10.0))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad value ({type(exc).__name__})", key="sms") from None
    if backend == "outbox":
        if environment == "production":
            raise ConfigError("the outbox sends nothing; not for production", key="sms.backend")
        return OutboxSender()
    if backend == "twilio":
        return TwilioSender(
            account_sid=str(table.get("account_sid", "")),
            auth_token=_secret(table, "auth_token", env, environment),
            from_number=table.get("from_number"),
            messaging_service_sid=table.get("messaging_service_sid"),
            api_key_sid=table.get("api_key_sid"),
            base_url=str(table.get("base_url", "https://api.twilio.com")),
            timeout=timeout,
            retry=retry,
        )
    if backend == "gatewayapi":
        return GatewayApiSender(
            token=_secret(table, "token", env, environment),
            sender=str(table.get("sender", "")),
            base_url=str(table.get("base_url", "https://gatewayapi.com")),
            timeout=timeout,
            retry=retry,
        )
    raise ConfigError("must be outbox, twilio or gatewayapi", key="sms.backend")
