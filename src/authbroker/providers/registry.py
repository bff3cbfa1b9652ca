"""Which code speaks which protocol.

A provider profile names a ``protocol``; this registry maps it to a factory
``from_config(config: ProviderConfig, settings: Settings) -> Provider``. Built-in
protocols are imported lazily (an app that uses only OIDC never imports the BankID
or TUPAS code); third-party packages add protocols through the
``authbroker.providers`` entry-point group.

Simulators are not here: they are test equipment (:mod:`authbroker.testing`), and
nothing on the production path starts one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from ..config import ProviderConfig, Settings
from ..config_schema import Schema
from ..errors import ConfigError
from .base import Provider

__all__ = [
    "BUILTIN_PROTOCOLS",
    "create_provider",
    "load_callable",
    "protocol_factory",
    "protocol_options",
]

BUILTIN_PROTOCOLS: Mapping[str, str] = {
    "oidc": "authbroker.providers.oidc:from_config",
    "bankid-se": "authbroker.providers.bankid_se:from_config",
    "tupas": "authbroker.providers.tupas:from_config",
    "mobiilivarmenne": "authbroker.providers.mobiilivarmenne:from_config",
    "web-eid": "authbroker.providers.web_eid:from_config",
}


def load_callable(target: str, what: str) -> Callable[..., Any]:
    """Import ``module:attr`` and check it is callable (a ConfigError otherwise)."""
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        obj = getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{what} {target} cannot be loaded ({type(exc).__name__})") from None
    if not callable(obj):
        raise ConfigError(f"{what} {target} is not callable")
    return obj  # type: ignore[no-any-return]


def _protocol_target(protocol: str) -> str:
    target = BUILTIN_PROTOCOLS.get(protocol)
    if target is None:
        from importlib.metadata import entry_points  # only for third-party protocols

        for ep in entry_points(group="authbroker.providers"):
            if ep.name == protocol:
                target = ep.value
                break
    if target is None:
        raise ConfigError(f"unknown protocol '{protocol}'", key="protocol")
    return target


def protocol_factory(protocol: str) -> Callable[[ProviderConfig, Settings], Provider]:
    return load_callable(_protocol_target(protocol), "provider factory")


def protocol_options(protocol: str) -> Schema | None:
    """The option schema a protocol declares as ``CONFIG_OPTIONS`` beside its factory.

    ``None`` for a third-party protocol that declares none (its keys cannot be
    checked); unknown protocols and modules that fail to import are ConfigErrors.
    """
    target = _protocol_target(protocol)
    module_name = target.partition(":")[0]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{module_name} cannot be loaded ({type(exc).__name__})") from None
    schema = getattr(module, "CONFIG_OPTIONS", None)
    return schema if isinstance(schema, Schema) else None


def create_provider(config: ProviderConfig, settings: Settings) -> Provider:
    """Build the adapter for one configured provider."""
    return protocol_factory(config.protocol)(config, settings)


_MOVED = frozenset({"BUILTIN_SIMULATORS", "RunningSimulator", "start_simulator"})


def __getattr__(name: str) -> Any:
    """The simulator table moved to :mod:`authbroker.testing` (kept one minor release)."""
    if name in _MOVED:
        import warnings

        warnings.warn(
            f"authbroker.providers.registry.{name} moved to authbroker.testing",
            DeprecationWarning,
            stacklevel=2,
        )
        from .. import testing

        return getattr(testing, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
