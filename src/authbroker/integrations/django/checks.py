"""``manage.py check``: the broker's own configuration validation
(:func:`authbroker.health.validate_settings`), each problem with its exact key."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from ...errors import ConfigError
from ...health import validate_settings
from . import conf


def check_config(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        if conf.options().get("SERVICES"):
            settings = conf.adapter().broker.settings
        else:
            settings = conf.broker_settings()
    except (ConfigError, ImproperlyConfigured) as exc:
        return [checks.Error(str(exc), id="authbroker.E001")]
    return [
        checks.Error(f"{p.key}: {p.message}", id="authbroker.E002")
        for p in validate_settings(settings)
    ]


def register() -> None:
    checks.register(check_config, checks.Tags.security, "authbroker")
