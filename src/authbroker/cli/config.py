"""``authbroker check-config``: every configuration error with its exact key."""

from __future__ import annotations

import click
from rich.console import Console

from ..config import load_config
from ..errors import ConfigError
from .output import EXIT_USAGE, CliExit

__all__ = ["check_config_cmd"]


@click.command("check-config")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--env",
    "env",
    type=click.Choice(["simulator", "test", "production"]),
    default=None,
    help="Check as if this environment were chosen.",
)
def check_config_cmd(file: str | None, env: str | None) -> None:
    """Validate FILE (or $AUTHBROKER_CONFIG): every error with its exact key and reason."""
    from ..health import validate_settings

    console = Console(stderr=True)
    try:
        settings = load_config(file, environment=env)
    except ConfigError as exc:
        for error in exc.errors:
            console.print(f"[red]✗[/] {error.key or 'configuration'}: {error.reason}")
        console.print(f"{len(exc.errors)} error(s)")
        raise CliExit(EXIT_USAGE) from None
    problems = validate_settings(settings)
    for problem in problems:
        console.print(f"[red]✗[/] {problem.key}: {problem.message}")
    if problems:
        raise CliExit(EXIT_USAGE)
    click.echo(
        f"configuration OK: environment {settings.environment}, "
        f"{len(settings.providers)} provider(s): {', '.join(settings.providers)}"
    )
