"""``settings.AUTHBROKER``: how the Django app builds its broker and guards.

Keys (unknown keys are refused, so a typo cannot silently drop a guard):

``CONFIG``       path of the authbroker TOML configuration (else ``$AUTHBROKER_CONFIG``
                 or the embedded defaults), read by :func:`authbroker.config.load_config`;
``ENVIRONMENT``  ``simulator`` / ``test`` / ``production`` (overrides the file's);
``OVERRIDES``    inline options merged over the file's tables, e.g.
                 ``{"broker": {"store": "redis://127.0.0.1:6379/0"}}``;
``SERVICES``     dotted path of a callable returning the adapter's keyword arguments
                 (``{"broker": Broker(...), "links": DirectLinks(...), "tokens": ...}``);
                 when set, ``CONFIG``/``ENVIRONMENT``/``OVERRIDES`` are not used;
``RULES``        the path-rule table (``[route("/", PUBLIC), ...]``);
``DEFAULT_GUARD`` the guard of views with neither a decorator nor a rule (default
                 ``require()``: any full session, WEB-05);
``USER_MAPPER``  dotted path of ``callable(principal) -> User | None`` deciding which
                 existing user a first-time identity belongs to (:mod:`.users`);
``OPTIONS``      further :class:`~authbroker.web.core.WebCore` keyword arguments
                 (``link_landing``, ``trusted_proxies``, ``mobile_audience``, ...).
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ...config import Settings, load_config
from ...engines.flows import Broker
from ...web.wsgi import WsgiAuthMiddleware

__all__ = ["KEYS", "adapter", "broker_settings", "options", "reset"]

KEYS = frozenset(
    {
        "CONFIG",
        "ENVIRONMENT",
        "OVERRIDES",
        "SERVICES",
        "RULES",
        "DEFAULT_GUARD",
        "USER_MAPPER",
        "OPTIONS",
    }
)

_lock = threading.Lock()
#: The one adapter of the process (a dict, so no ``global`` statement is needed).
_built: dict[str, WsgiAuthMiddleware] = {}


def options() -> dict[str, Any]:
    """``settings.AUTHBROKER``, checked against :data:`KEYS`."""
    conf = dict(getattr(settings, "AUTHBROKER", {}) or {})
    unknown = sorted(set(conf) - KEYS)
    if unknown:
        raise ImproperlyConfigured(f"unknown AUTHBROKER keys: {', '.join(unknown)}")
    return conf


def broker_settings() -> Settings:
    """The broker configuration ``CONFIG``/``ENVIRONMENT``/``OVERRIDES`` describe."""
    conf = options()
    return load_config(
        conf.get("CONFIG"), environment=conf.get("ENVIRONMENT"), overrides=conf.get("OVERRIDES")
    )


def _no_app(environ: Any, start_response: Any) -> Any:
    """The adapter's inner app, never called: Django routes the request itself."""
    raise RuntimeError("unreachable")  # pragma: no cover


def adapter() -> WsgiAuthMiddleware:
    """The process's one adapter (web core, runtime, engines), built on first use."""
    with _lock:
        if "adapter" not in _built:
            conf = options()
            if conf.get("SERVICES"):
                services = dict(import_string(conf["SERVICES"])())
            else:
                services = {"broker": Broker(broker_settings())}
            services.update(conf.get("OPTIONS") or {})
            _built["adapter"] = WsgiAuthMiddleware(
                _no_app,
                rules=list(conf.get("RULES") or ()),
                default_guard=conf.get("DEFAULT_GUARD"),
                **services,
            )
        return _built["adapter"]


def reset() -> None:
    """Forget the adapter (tests changing ``AUTHBROKER`` with ``override_settings``)."""
    with _lock:
        _built.clear()


def connect_signals() -> None:
    from django.core.signals import setting_changed

    def changed(*, setting: str, **kwargs: Any) -> None:
        if setting == "AUTHBROKER":
            reset()

    setting_changed.connect(changed, weak=False, dispatch_uid="authbroker-settings")
