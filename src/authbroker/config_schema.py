"""The declarative schema of ``authbroker.toml`` and of provider profiles.

One :class:`Schema` per section (``[broker]``, ``[links]``, ``[sms]``) and per
provider protocol (declared as ``CONFIG_OPTIONS`` beside each provider's option
parsing, e.g. :data:`authbroker.providers.oidc.CONFIG_OPTIONS`) lists every key the
library reads: name, type, default and a one-line meaning. It is used twice:

* :func:`authbroker.config.load_config` checks every table against it, so a misspelt
  key (``broker.enviroment``) is an error with a "did you mean" suggestion instead
  of a silently ignored line that leaves a production site on its simulators;
* the option reference is generated from it (``Schema.options`` is plain data).

Every problem is collected into a list and raised once as a combined
:class:`~authbroker.errors.ConfigError`, so an operator sees all of them at once.

Why a small in-project schema rather than a validation library: measured on the
project machine (CPython 3.11, 2 cores), ``python -X importtime -c "import
authbroker"`` takes ~79 ms. msgspec 0.23 would add ~8.5 ms and pydantic 2.14 ~42 ms
(``pydantic.BaseModel`` on top of authbroker's own imports), which breaks the
~110 ms goal. msgspec fits the budget, but its ``ValidationError`` stops at the
first bad path and knows no suggestions, so reporting every error with a "did you
mean" would still need this walk over every key; the library would add a
dependency and nothing else. These ~250 lines cost nothing at import time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .errors import ConfigError

__all__ = [
    "BROKER_SECTION",
    "ENVIRONMENTS",
    "PROVIDER_COMMON",
    "SECTIONS",
    "Kind",
    "Option",
    "Schema",
    "did_you_mean",
    "refuse_loopback_http",
    "refuse_preproduction_acr",
    "section_schema",
]

ENVIRONMENTS = ("simulator", "test", "production")

#: The value types a key may have (TOML types, some keys accept two).
Kind = Literal[
    "string",
    "boolean",
    "integer",
    "number",
    "table",
    "list",
    "string list",
    "string or string list",
    "string or integer",
    "string or table",
]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


_CHECKS: Mapping[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": _is_int,
    "number": lambda v: _is_int(v) or isinstance(v, float),
    "table": lambda v: isinstance(v, Mapping),
    "list": lambda v: isinstance(v, list),
    "string list": _is_str_list,
    "string or string list": lambda v: isinstance(v, str) or _is_str_list(v),
    "string or integer": lambda v: isinstance(v, str) or _is_int(v),
    "string or table": lambda v: isinstance(v, str | Mapping),
}


_KIND_TEXT: Mapping[str, str] = {
    "string": "a string",
    "boolean": "true or false",
    "integer": "an integer",
    "number": "a number",
    "table": "a table",
    "list": "an array",
    "string list": "an array of strings",
    "string or string list": "a string or an array of strings",
    "string or integer": "a string or an integer",
    "string or table": "a string or a table",
}


def _toml_type(value: Any) -> str:
    """The TOML name of a parsed value's type, for "must be X, not Y" messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    return type(value).__name__


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``"; did you mean `x`?"`` for the closest candidate, or ``""``."""
    import difflib  # ~4 ms: imported only when a configuration is actually wrong

    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


def _within(value: Any, bounds: tuple[float | None, float | None]) -> bool:
    low, high = bounds
    return (low is None or value >= low) and (high is None or value <= high)


def _bounds_text(bounds: tuple[float | None, float | None]) -> str:
    low, high = bounds
    if low is not None and high is not None:
        return f"must be a number between {low:g} and {high:g}"
    return f"must be at least {low:g}" if low is not None else f"must be at most {high:g}"


def _value(kind: Kind, value: Any) -> Any:
    """A checked (or default) value in the form the typed options hold.

    Lists become tuples (options are immutable), a string where a list of strings is
    allowed is split on whitespace (``scopes = "openid profile"``), numbers are
    floats and tables plain dicts.
    """
    if kind == "string or string list" and isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list):
        return tuple(value)
    if kind == "number" and value is not None:
        return float(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


@dataclass(frozen=True, slots=True)
class Option:
    """One configuration key.

    ``secret``: the value may instead be named by ``<key>_env`` (the environment
    variable holding it); the literal form is accepted only in the simulator, which
    the reading code enforces. ``pattern``: the key names a family (``secret_v<N>``)
    whose members fully match this regular expression. ``fields``: a nested table
    with its own schema. ``production``: returns why a value is refused when the
    provider runs in the production environment, or ``None``. ``bounds``: the
    inclusive range of a number (``None`` leaves that side open). ``required``: the
    key must be present and not empty; its default is then never used.
    """

    key: str
    kind: Kind
    default: Any = None
    meaning: str = ""
    choices: tuple[str, ...] = ()
    secret: bool = False
    pattern: str | None = None
    fields: Schema | None = None
    production: Callable[[Any], str | None] | None = None
    bounds: tuple[float | None, float | None] | None = None
    required: bool = False

    def matches(self, key: str) -> bool:
        names = (key, key.removesuffix("_env")) if self.secret else (key,)
        if self.pattern is not None:
            return any(re.fullmatch(self.pattern, n) is not None for n in names)
        return self.key in names

    def check(self, key: str, value: Any, path: str, errors: list[ConfigError]) -> None:
        """Append the problems of ``value`` at key path ``path`` (nothing when fine)."""
        if self.secret and key.endswith("_env"):
            if not isinstance(value, str):
                errors.append(
                    ConfigError(
                        f"must be a string (an environment variable name), not {_toml_type(value)}",
                        key=path,
                    )
                )
            return
        if not _CHECKS[self.kind](value):
            errors.append(
                ConfigError(f"must be {_KIND_TEXT[self.kind]}, not {_toml_type(value)}", key=path)
            )
            return
        if self.choices and value not in self.choices:
            hint = did_you_mean(str(value), self.choices)
            errors.append(ConfigError(f"must be one of {', '.join(self.choices)}{hint}", key=path))
        if self.bounds is not None and not _within(value, self.bounds):
            errors.append(ConfigError(_bounds_text(self.bounds), key=path))
        if self.fields is not None and isinstance(value, Mapping):
            self.fields.check(value, path + ".", errors)


@dataclass(frozen=True, slots=True)
class Schema:
    """The keys of one table: what exists, of which type, with which default."""

    name: str
    meaning: str
    options: tuple[Option, ...]

    def __add__(self, other: Schema) -> Schema:
        """This schema extended by ``other``'s keys (common + per-protocol keys)."""
        return Schema(other.name, other.meaning, self.options + other.options)

    def option(self, key: str) -> Option | None:
        for option in self.options:
            if option.matches(key):
                return option
        return None

    def default(self, key: str) -> Any:
        option = self.option(key)
        if option is None:
            raise KeyError(key)
        return option.default

    def known_keys(self) -> list[str]:
        """Every literal key name, ``*_env`` forms of secrets included (for suggestions)."""
        keys: list[str] = []
        for option in self.options:
            keys.append(option.key)
            if option.secret:
                keys.append(f"{option.key}_env")
        return keys

    def check(self, table: Mapping[str, Any], prefix: str, errors: list[ConfigError]) -> None:
        """Append one error per unknown key and per value of the wrong type.

        ``prefix`` is prepended to each key to give its path (``"broker."``).
        """
        for key, value in table.items():
            where = f"{prefix}{key}"
            option = self.option(str(key))
            if option is None:
                hint = did_you_mean(str(key), self.known_keys())
                errors.append(ConfigError(f"unknown key{hint}", key=where))
                continue
            option.check(str(key), value, where, errors)

    def read(
        self,
        options: Mapping[str, Any],
        key_of: Callable[[str], str],
        *,
        only: Collection[str] | None = None,
    ) -> dict[str, Any]:
        """Every declared option's value: the configured one, type-checked, or its default.

        The single reading of a table: the typed options of a provider or service
        are built from this mapping, so a default lives only in the schema and a
        wrong type, choice or range is the same error here as at ``load_config``.
        ``key_of`` turns a key into its full path for errors
        (``ProviderConfig.key``). Key families (``pattern``) and secrets are not
        included: their modules read them (secrets only from the environment).
        Every problem is raised at once (:meth:`ConfigError.combine`); only the
        rules between keys remain for the caller. ``only`` reads just those keys (a
        helper that needs one option of a table that may be incomplete).
        """
        values: dict[str, Any] = {}
        errors: list[ConfigError] = []
        for option in self.options:
            if option.pattern is not None or option.secret:
                continue
            if only is not None and option.key not in only:
                continue
            value = options.get(option.key)
            if value is None or (option.required and value == ""):
                if option.required:
                    errors.append(ConfigError("is required", key=key_of(option.key)))
                values[option.key] = _value(option.kind, option.default)
                continue
            before = len(errors)
            option.check(option.key, value, key_of(option.key), errors)
            if len(errors) == before:
                values[option.key] = _value(option.kind, value)
        if errors:
            raise ConfigError.combine(errors)
        return values

    def production_problems(
        self, options: Mapping[str, Any], key_of: Callable[[str], str]
    ) -> list[ConfigError]:
        """Values refused in production (pre-production acr values, loopback http)."""
        problems: list[ConfigError] = []
        for key, value in options.items():
            option = self.option(key)
            if option is not None and option.production is not None:
                reason = option.production(value)
                if reason:
                    problems.append(ConfigError(reason, key=key_of(key)))
        return problems


# --- production hygiene (issue 15 §2) -------------------------------------------------

#: FTN pre-production assurance levels are ``http://ftn.ficora.fi/2017/loatest2`` and
#: ``.../loatest3`` (see the test environment of providers/ftn.toml); any ``loatest``
#: value asks the broker for a test identification and never belongs in production.
_PREPRODUCTION_ACR = re.compile(r"loatest", re.IGNORECASE)


def _acr_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    if isinstance(value, Mapping):  # extra_auth_params / broker-oidc methods
        found: list[str] = []
        for name, inner in value.items():
            if name in ("acr", "acr_values") or isinstance(inner, Mapping):
                found += _acr_strings(inner)
        return found
    return []


def refuse_preproduction_acr(value: Any) -> str | None:
    """Production must not request or accept pre-production (``loatest*``) acr values."""
    if any(_PREPRODUCTION_ACR.search(acr) for acr in _acr_strings(value)):
        return "pre-production acr value (loatest*) is refused in production"
    return None


def refuse_loopback_http(value: Any) -> str | None:
    """Plain-http loopback endpoints are for simulators; production refuses them."""
    if value is True:
        return "plain-http loopback endpoints are refused in production"
    return None


# --- broker-wide sections --------------------------------------------------------------

BROKER_SECTION = Schema(
    "broker",
    "Broker-wide settings.",
    (
        Option(
            "environment",
            "string",
            "simulator",
            "simulator, test or production; every provider uses it unless its table says",
            choices=ENVIRONMENTS,
        ),
        Option("base_url", "string", "http://127.0.0.1:8000", "public URL of the application"),
        Option("route_prefix", "string", "/auth", "path under which the broker's routes live"),
        Option(
            "store",
            "string",
            "memory://",
            "state store URL (memory://, sqlite:///path, redis://...); $AUTHBROKER_STORE_URL wins",
        ),
        Option(
            "return_to_origins",
            "string list",
            [],
            "origins (scheme://host[:port]) a flow may return to besides same-site paths",
        ),
        Option("flow_ttl", "number", 600.0, "seconds a flow may stay open (0 < ttl <= 3600)"),
        Option("default_language", "string", "en", "language of pages when none is asked"),
        Option("languages", "string list", ["fi", "sv", "en"], "languages offered to users"),
        Option("profile_dirs", "string list", [], "extra folders of provider profiles (*.toml)"),
        Option(
            "telemetry",
            "boolean",
            False,
            "OpenTelemetry spans and metrics (needs the otel extra; see docs/operations.md)",
        ),
    ),
)

#: Keys every ``[providers.NAME]`` table may have, whatever its protocol.
PROVIDER_COMMON = Schema(
    "providers.<name>",
    "Keys of every provider table.",
    (
        Option("enabled", "boolean", True, "false keeps the table but does not load the provider"),
        Option(
            "environment",
            "string",
            None,
            "this provider's environment (default: broker.environment)",
            choices=ENVIRONMENTS,
        ),
        Option("profile", "string", None, "profile to use when the table's name differs"),
        Option("loa", "string or integer", None, "level of assurance (overrides the profile's)"),
        Option(
            "profile_dir",
            "string",
            ".",
            "folder relative certificate paths are checked against (authbroker providers)",
        ),
    ),
)

#: Where each top-level table of authbroker.toml is declared ("module:attribute"
#: for sections owned by an optional module, imported only when the table is present).
#: ``providers`` is checked per provider against its protocol's ``CONFIG_OPTIONS``.
SECTIONS: Mapping[str, str] = {
    "broker": "authbroker.config_schema:BROKER_SECTION",
    "providers": "",
    "links": "authbroker.engines.links:CONFIG_SECTION",
    "sms": "authbroker.sms:CONFIG_SECTION",
}


def section_schema(name: str) -> Schema:
    """The schema of top-level table ``name`` (imports its module when needed)."""
    import importlib

    module_name, _, attr = SECTIONS[name].partition(":")
    schema = getattr(importlib.import_module(module_name), attr)
    if not isinstance(schema, Schema):  # pragma: no cover - a programming error
        raise TypeError(f"{SECTIONS[name]} is not a Schema")
    return schema
