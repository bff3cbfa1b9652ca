"""What every ``authbroker`` command shares: exit codes, consoles, failure printing.

Exit codes (documented in ``docs/cli.md``): 0 success, 1 authentication failed or
cancelled, 2 usage or configuration error. JSON goes to stdout and human chatter to
stderr, so a command's output can be piped into ``jq`` while progress stays visible.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, NoReturn

from rich.console import Console

from ..config import ProviderConfig, Settings
from ..config_schema import did_you_mean
from ..errors import AuthBrokerError, ConfigError

__all__ = [
    "EXIT_AUTH",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliExit",
    "console_for",
    "fail",
    "iso_time",
    "json_dumps",
    "provider_config",
]

EXIT_OK, EXIT_AUTH, EXIT_USAGE = 0, 1, 2


class CliExit(Exception):
    """Ends a command with ``code`` after it printed its own message."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def console_for(json_mode: bool) -> Console:
    """stderr for human text when stdout carries JSON; stdout otherwise."""
    return Console(stderr=True) if json_mode else Console()


def fail(console: Console, exc: AuthBrokerError) -> NoReturn:
    """Print a library error by type and code; configuration errors are usage errors."""
    code = EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_AUTH
    # soft_wrap: one line however long, so the message can be grepped and copied.
    console.print(f"[bold red]{type(exc).__name__}[/] ({exc.code}): {exc}", soft_wrap=True)
    raise CliExit(code)


def iso_time(epoch: float) -> str:
    """An epoch time as ISO 8601 UTC with seconds (``2025-01-31T12:00:00Z``), the form
    scripts and ``date -d`` read without guessing a unit or a time zone."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def json_dumps(data: Any) -> str:
    """The JSON the CLI prints: indented, UTF-8 text kept readable."""
    return json.dumps(data, indent=2, ensure_ascii=False)


def provider_config(settings: Settings, name: str) -> ProviderConfig:
    """The configured provider ``name``, or a usage error that names the closest
    configured one and lists them all (a typo should not send anyone to the docs)."""
    if name in settings.providers:
        return settings.provider(name)
    hint = did_you_mean(name, settings.providers)
    raise ConfigError(
        f"no such provider is configured{hint} (configured: {', '.join(settings.providers)})",
        key=f"providers.{name}",
    )
