"""Which code speaks which protocol.

A provider profile names a ``protocol``; this registry maps it to a factory
``from_config(config: ProviderConfig, settings: Settings) -> Provider``. Built-in
protocols are imported lazily (an app that uses only OIDC never imports the BankID
or TUPAS code); third-party packages add protocols through the
``authbroker.providers`` entry-point group.

The same holds for simulators: ``start(config, settings) -> RunningSimulator``
starts the provider side on loopback and returns the option overrides (endpoints,
trust anchors) that point the adapter at it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..config import ProviderConfig, Settings
from ..config_schema import Schema
from ..errors import ConfigError
from .base import Provider

__all__ = [
    "BUILTIN_PROTOCOLS",
    "BUILTIN_SIMULATORS",
    "RunningSimulator",
    "create_provider",
    "protocol_factory",
    "protocol_options",
    "start_simulator",
]

BUILTIN_PROTOCOLS: Mapping[str, str] = {
    "oidc": "authbroker.providers.oidc:from_config",
    "bankid-se": "authbroker.providers.bankid_se:from_config",
    "tupas": "authbroker.providers.tupas:from_config",
    "mobiilivarmenne": "authbroker.providers.mobiilivarmenne:from_config",
    "web-eid": "authbroker.providers.web_eid:from_config",
}

BUILTIN_SIMULATORS: Mapping[str, str] = {
    "oidc": "authbroker.simulators.oidc:start",
    "bankid-se": "authbroker.simulators.bankid_se:start",
    "tupas": "authbroker.simulators.tupas:start",
    "mobiilivarmenne": "authbroker.simulators.mobiilivarmenne:start",
    "web-eid": "authbroker.simulators.web_eid:start",
}


class _Stoppable(Protocol):
    def stop(self) -> None: ...


@dataclass
class RunningSimulator:
    """A started simulator: the options to merge into the provider config, and a stop."""

    overrides: dict[str, Any]
    server: _Stoppable | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def _load(target: str, what: str) -> Callable[..., Any]:
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
    return _load(_protocol_target(protocol), "provider factory")


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


def start_simulator(config: ProviderConfig, settings: Settings) -> RunningSimulator:
    """Start the simulator of ``config``'s protocol on loopback."""
    target = BUILTIN_SIMULATORS.get(config.protocol)
    if target is None:
        raise ConfigError(
            f"protocol '{config.protocol}' has no simulator", key=config.key("environment")
        )
    result = _load(target, "simulator")(config, settings)
    if not isinstance(result, RunningSimulator):
        raise ConfigError(f"simulator for {config.protocol} returned {type(result).__name__}")
    return result
