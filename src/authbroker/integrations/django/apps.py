"""The Django app configuration."""

from __future__ import annotations

from django.apps import AppConfig


class AuthBrokerConfig(AppConfig):
    name = "authbroker.integrations.django"
    label = "authbroker"
    verbose_name = "authbroker"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, conf

        checks.register()
        conf.connect_signals()
