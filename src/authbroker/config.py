"""Configuration: ``authbroker.toml`` + provider profiles + secrets from the environment.

Three layers, later ones winning:

1. Provider *profiles* (``providers/*.toml``, shipped with the package): the protocol,
   display names, LoA mapping and endpoints per environment (``simulator``, ``test``,
   ``production``). Facts about the provider, the same for every deployment.
2. The deployment's ``authbroker.toml``: which providers are enabled, client ids,
   the environment, base URL, store, redirect allow-list, and per-provider overrides.
3. Secrets never live in files: a key ending in ``_env`` names the environment
   variable that holds the value (``client_secret_env = "FTN_CLIENT_SECRET"``), read
   through :meth:`ProviderConfig.secret`. The broker's own signing secrets come from
   ``AUTHBROKER_SECRET_KEYS`` (comma separated, newest first, for rotation).

Without any file, :func:`load_config` yields the embedded defaults: every built-in
provider on its simulator, an in-memory store and a development secret, which is
what the demo, the CLI's ``--env simulator`` and the tests use. A development secret
is refused outside the simulator environment.

Loading is strict: every table is checked against its declared schema
(:mod:`authbroker.config_schema`; provider keys are declared as ``CONFIG_OPTIONS``
beside each protocol's option parsing). Unknown sections, keys and providers, wrong
types and values refused in production are all collected and raised as one
:class:`~authbroker.errors.ConfigError` whose ``errors`` name each exact key.
"""

from __future__ import annotations

import os
import secrets as _secrets
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from .config_schema import (
    BROKER_SECTION,
    ENVIRONMENTS,
    PROVIDER_COMMON,
    SECTIONS,
    Schema,
    did_you_mean,
    section_schema,
)
from .errors import ConfigError
from .identity import Loa

__all__ = [
    "ENVIRONMENTS",
    "ProviderConfig",
    "ProviderProfile",
    "Settings",
    "builtin_profiles_dir",
    "load_config",
    "load_profiles",
]

#: Minimum length of signing secrets; shorter ones are brute-forceable offline
#: from a captured link or cookie (security requirements C16).
MIN_SECRET_LENGTH = 32


@dataclass(frozen=True, slots=True)
class ProviderProfile:
    """A provider profile file: facts about one provider, not about a deployment."""

    name: str
    protocol: str
    display_name: Mapping[str, str]
    loa: Loa
    country: str | None
    environments: Mapping[str, Mapping[str, Any]]
    settings: Mapping[str, Any]
    path: str = ""


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """A profile resolved for one deployment and environment.

    ``options`` = profile settings, then the environment's block, then the
    deployment's ``[providers.NAME]`` table, merged in that order.
    """

    name: str
    protocol: str
    environment: str
    display_name: Mapping[str, str]
    loa: Loa
    country: str | None
    options: Mapping[str, Any] = field(repr=False)
    environ: Mapping[str, str] = field(repr=False, default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)

    def require(self, key: str) -> Any:
        if key not in self.options or self.options[key] in (None, ""):
            raise ConfigError("is required", key=self.key(key))
        return self.options[key]

    def key(self, key: str) -> str:
        return f"providers.{self.name}.{key}"

    def secret(self, key: str, *, required: bool = True) -> str | None:
        """The secret named by ``<key>_env`` (or, in the simulator, a literal ``key``)."""
        env_name = self.options.get(f"{key}_env")
        if env_name:
            value = self.environ.get(str(env_name))
            if value:
                return value
            if required:
                raise ConfigError(
                    f"environment variable {env_name} is not set", key=self.key(f"{key}_env")
                )
            return None
        if key in self.options:
            if self.environment != "simulator":
                raise ConfigError(
                    "secrets must come from the environment (use a *_env key)",
                    key=self.key(key),
                )
            return str(self.options[key])
        if required:
            raise ConfigError("is required", key=self.key(f"{key}_env"))
        return None

    def with_options(self, **overrides: Any) -> ProviderConfig:
        """A copy with options replaced (simulators inject their loopback endpoints)."""
        return replace(self, options={**self.options, **overrides})


@dataclass(frozen=True, slots=True)
class Settings:
    """The broker-wide settings resolved from all layers."""

    environment: str = "simulator"
    base_url: str = "http://127.0.0.1:8000"
    route_prefix: str = "/auth"
    store_url: str = "memory://"
    secret_keys: tuple[str, ...] = field(default=(), repr=False)
    return_to_origins: tuple[str, ...] = ()
    flow_ttl: float = 600.0
    default_language: str = "en"
    languages: tuple[str, ...] = ("fi", "sv", "en")
    providers: Mapping[str, ProviderConfig] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def callback_base(self) -> str:
        return self.base_url.rstrip("/") + self.route_prefix

    def provider(self, name: str) -> ProviderConfig:
        try:
            return self.providers[name]
        except KeyError:
            raise ConfigError("no such provider is configured", key=f"providers.{name}") from None

    def section(self, name: str) -> Mapping[str, Any]:
        """A top-level table of authbroker.toml (``links``, ``credentials``...)."""
        value = self.raw.get(name, {})
        if not isinstance(value, Mapping):
            raise ConfigError("must be a table", key=name)
        return value


def builtin_profiles_dir() -> Path:
    """Where the shipped provider profiles are: in the wheel or in a source checkout."""
    try:
        packaged = resources.files("authbroker").joinpath("_profiles")
        if packaged.is_dir():
            return Path(str(packaged))
    except (ModuleNotFoundError, OSError):  # pragma: no cover
        pass
    return Path(__file__).resolve().parents[2] / "providers"


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{what} file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} file {path.name} is not valid TOML: {exc}") from None


def _parse_profile(path: Path) -> ProviderProfile:
    data = _read_toml(path, "provider profile")
    name = data.pop("name", path.stem)
    where = f"profile {path.name}"
    protocol = data.pop("protocol", None)
    if not isinstance(protocol, str) or not protocol:
        raise ConfigError("is required", key=f"{where}: protocol")
    display = data.pop("display_name", {"en": name})
    if not isinstance(display, dict):
        raise ConfigError("must be a table of language -> text", key=f"{where}: display_name")
    try:
        loa = Loa.parse(data.pop("loa", "high"))
    except ConfigError as exc:
        raise ConfigError(exc.message, key=f"{where}: loa") from None
    envs = data.pop("environments", {})
    if not isinstance(envs, dict) or not all(isinstance(v, dict) for v in envs.values()):
        raise ConfigError("must be a table of tables", key=f"{where}: environments")
    unknown = set(envs) - set(ENVIRONMENTS)
    if unknown:
        raise ConfigError(f"unknown environment(s) {sorted(unknown)}", key=f"{where}: environments")
    country = data.pop("country", None)
    return ProviderProfile(
        name=str(name),
        protocol=protocol,
        display_name={str(k): str(v) for k, v in display.items()},
        loa=loa,
        country=str(country) if country else None,
        environments=envs,
        settings=data,
        path=str(path),
    )


def load_profiles(*dirs: Path) -> dict[str, ProviderProfile]:
    """All ``*.toml`` profiles of the given folders (later folders override)."""
    profiles: dict[str, ProviderProfile] = {}
    for folder in dirs or (builtin_profiles_dir(),):
        if not folder.is_dir():
            raise ConfigError(f"provider profile folder not found: {folder}")
        for path in sorted(folder.glob("*.toml")):
            profile = _parse_profile(path)
            profiles[profile.name] = profile
    return profiles


def _resolve(
    profile: ProviderProfile,
    environment: str,
    overrides: Mapping[str, Any],
    environ: Mapping[str, str],
) -> ProviderConfig:
    env_block = profile.environments.get(environment)
    if env_block is None:
        raise ConfigError(
            f"profile has no '{environment}' environment",
            key=f"providers.{profile.name}.environment",
        )
    options: dict[str, Any] = {**profile.settings, **env_block}
    options.update({k: v for k, v in overrides.items() if k not in ("enabled", "environment")})
    loa = Loa.parse(options.pop("loa", profile.loa))
    return ProviderConfig(
        name=profile.name,
        protocol=profile.protocol,
        environment=environment,
        display_name=profile.display_name,
        loa=loa,
        country=profile.country,
        options=options,
        environ=environ,
    )


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    environment: str | None = None,
    profiles: Mapping[str, ProviderProfile] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Load settings from ``path`` (or ``$AUTHBROKER_CONFIG``; embedded defaults if none).

    ``environment`` overrides the file's ``environment`` key (the CLI's ``--env``).
    ``overrides`` is merged over the file's top-level tables (tests).

    Every table is checked against its schema (:mod:`authbroker.config_schema`):
    unknown sections, keys and providers, wrong types and production-unsafe values
    are all collected and raised together as one :class:`ConfigError`.
    """
    env = dict(os.environ if environ is None else environ)
    if path is None and env.get("AUTHBROKER_CONFIG"):
        path = env["AUTHBROKER_CONFIG"]
    data: dict[str, Any] = _read_toml(Path(path), "configuration") if path else {}
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping) and isinstance(data.get(key), Mapping):
            data[key] = {**data[key], **value}
        else:
            data[key] = value

    errors: list[ConfigError] = []
    broker = _check_sections(data, errors)
    chosen_env = environment or broker.get("environment", "simulator")
    if chosen_env not in ENVIRONMENTS:
        if environment is not None:
            errors.append(
                ConfigError(f"must be one of {', '.join(ENVIRONMENTS)}", key="broker.environment")
            )
        chosen_env = "simulator"  # keep checking the rest; the error stops the load

    dirs = broker.get("profile_dirs", [])
    extra_dirs = [Path(p) for p in dirs if isinstance(p, str)] if isinstance(dirs, list) else []
    try:
        all_profiles = (
            dict(profiles)
            if profiles is not None
            else load_profiles(builtin_profiles_dir(), *extra_dirs)
        )
    except ConfigError as exc:
        raise ConfigError.combine([*errors, exc]) from None

    provider_tables = data.get("providers")
    if provider_tables is None:
        # Embedded defaults: every built-in provider that has a simulator environment.
        provider_tables = {
            name: {} for name, p in all_profiles.items() if chosen_env in p.environments
        }
    if not isinstance(provider_tables, Mapping):
        errors.append(ConfigError("must be a table of provider tables", key="providers"))
        provider_tables = {}
    resolved = _resolve_providers(provider_tables, all_profiles, chosen_env, env, errors)

    try:
        secret_keys = _secret_keys(env, chosen_env)
    except ConfigError as exc:
        errors.append(exc)
    flow_ttl = broker.get("flow_ttl", BROKER_SECTION.default("flow_ttl"))
    if _is_number(flow_ttl) and not 0 < flow_ttl <= 3600:
        errors.append(ConfigError("must be between 0 and 3600 seconds", key="broker.flow_ttl"))
    if errors:
        raise ConfigError.combine(errors)

    def opt(key: str) -> Any:
        return broker.get(key, BROKER_SECTION.default(key))

    return Settings(
        environment=chosen_env,
        base_url=str(opt("base_url")).rstrip("/"),
        route_prefix="/" + str(opt("route_prefix")).strip("/"),
        store_url=str(env.get("AUTHBROKER_STORE_URL") or opt("store")),
        secret_keys=secret_keys,
        return_to_origins=tuple(str(o) for o in opt("return_to_origins")),
        flow_ttl=float(flow_ttl),
        default_language=str(opt("default_language")),
        languages=tuple(opt("languages")),
        providers=resolved,
        raw=data,
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_sections(data: Mapping[str, Any], errors: list[ConfigError]) -> Mapping[str, Any]:
    """Check every top-level table except ``providers``; return the broker table."""
    for name, table in data.items():
        if name not in SECTIONS:
            errors.append(ConfigError(f"unknown section{did_you_mean(name, SECTIONS)}", key=name))
        elif name == "providers":
            continue  # checked per provider by _resolve_providers
        elif not isinstance(table, Mapping):
            errors.append(ConfigError("must be a table", key=name))
        else:
            section_schema(name).check(table, f"{name}.", errors)
    broker = data.get("broker", {})
    return broker if isinstance(broker, Mapping) else {}


def _resolve_providers(
    tables: Mapping[str, Any],
    profiles: Mapping[str, ProviderProfile],
    environment: str,
    environ: Mapping[str, str],
    errors: list[ConfigError],
) -> dict[str, ProviderConfig]:
    """Check each ``[providers.NAME]`` table and resolve the enabled ones."""
    from .providers.registry import protocol_options  # imports provider modules

    schemas: dict[str, Schema | None] = {}
    checked_profiles: set[str] = set()
    resolved: dict[str, ProviderConfig] = {}
    for name, table in tables.items():
        where = f"providers.{name}"
        if not isinstance(table, Mapping):
            errors.append(ConfigError("must be a table", key=where))
            continue
        profile_name = table.get("profile", name)
        profile = profiles.get(profile_name) if isinstance(profile_name, str) else None
        if profile is None:
            hint = did_you_mean(str(profile_name), profiles)
            if "profile" in table:
                message = f"no provider profile named '{profile_name}'{hint}"
                errors.append(ConfigError(message, key=f"{where}.profile"))
            else:
                errors.append(ConfigError(f"unknown provider{hint}", key=where))
            continue
        if profile.protocol not in schemas:
            try:
                schemas[profile.protocol] = protocol_options(profile.protocol)
            except ConfigError as exc:
                errors.append(ConfigError(exc.reason, key=f"{where}.protocol"))
                schemas[profile.protocol] = None
                continue
        own = schemas[profile.protocol]
        schema = PROVIDER_COMMON + own if own is not None else PROVIDER_COMMON
        before = len(errors)
        # Third-party protocols without CONFIG_OPTIONS: only the common keys' types.
        if own is not None:
            schema.check(table, f"{where}.", errors)
            if profile.name not in checked_profiles:
                checked_profiles.add(profile.name)
                _check_profile(profile, schema, errors)
        if not table.get("enabled", True) or len(errors) > before:
            continue
        if profile_name != name:
            profile = replace(profile, name=name)
        try:
            config = _resolve(profile, table.get("environment", environment), table, environ)
        except ConfigError as exc:
            errors.append(exc)
            continue
        if config.environment == "production":
            errors.extend(schema.production_problems(config.options, config.key))
        resolved[name] = config
    return resolved


def _check_profile(profile: ProviderProfile, schema: Schema, errors: list[ConfigError]) -> None:
    """A profile's settings and environment blocks use the same keys as the table."""
    where = f"profile {Path(profile.path).name or profile.name}: "
    schema.check(profile.settings, where, errors)
    for env_name, block in profile.environments.items():
        schema.check(block, f"{where}environments.{env_name}.", errors)


def _secret_keys(env: Mapping[str, str], environment: str) -> tuple[str, ...]:
    raw = env.get("AUTHBROKER_SECRET_KEYS", "")
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    if not keys:
        if environment != "simulator":
            raise ConfigError(
                "is required outside the simulator environment", key="AUTHBROKER_SECRET_KEYS"
            )
        # A fresh random key per process: fine for the demo, and nobody can ship it.
        return (_secrets.token_urlsafe(48),)
    return check_secret_keys(keys, key="AUTHBROKER_SECRET_KEYS")


def check_secret_keys(keys: Sequence[str], *, key: str) -> tuple[str, ...]:
    """The signing secrets (newest first), each at least :data:`MIN_SECRET_LENGTH`
    characters; :class:`ConfigError` naming ``key`` otherwise (C16: a short secret
    makes every signed cookie and link forgeable offline)."""
    if isinstance(keys, str) or not keys:
        raise ConfigError("needs a list of secret keys, newest first", key=key)
    for k in keys:
        if not isinstance(k, str) or len(k) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"every key must have at least {MIN_SECRET_LENGTH} characters", key=key
            )
    return tuple(keys)
