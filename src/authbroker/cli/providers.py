"""``authbroker providers``: the configured providers with their health checks.

A failing check is a failing command (exit 1), so ``authbroker providers`` can gate
a deploy.
"""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from ..config import load_config
from ..errors import AuthBrokerError, ConfigError
from ..testing import simulated_broker
from .output import EXIT_AUTH, CliExit, console_for, fail

__all__ = ["providers_cmd"]


@click.command("providers")
@click.option(
    "--env",
    "env",
    type=click.Choice(["simulator", "test", "production"]),
    default=None,
    help="Provider environment (default: the configuration's).",
)
@click.option("--config", type=click.Path(dir_okay=False), help="authbroker.toml to use.")
@click.option("--json", "json_mode", is_flag=True, help="Machine-readable output.")
@click.option(
    "--check/--no-check", default=True, show_default=True, help="Check endpoints and certificates."
)
def providers_cmd(env: str | None, config: str | None, json_mode: bool, check: bool) -> None:
    """List configured providers with their environment, LoA and health."""
    from ..health import check_provider

    console = console_for(json_mode)
    try:
        settings = load_config(config, environment=env)
    except ConfigError as exc:
        fail(console, exc)
    rows: list[dict[str, Any]] = []
    broker = simulated_broker(settings) if check and settings.environment == "simulator" else None
    try:
        for name, pc in settings.providers.items():
            row: dict[str, Any] = {
                "name": name,
                "protocol": pc.protocol,
                "environment": pc.environment,
                "loa": pc.loa.name.lower(),
                "country": pc.country,
                "display_name": dict(pc.display_name),
            }
            if check:
                cfg = pc
                if broker is not None and pc.environment == "simulator":
                    try:
                        sim = broker.simulator(name)
                        if sim is not None:
                            cfg = pc.with_options(**sim.overrides)
                    except AuthBrokerError as exc:
                        row["checks"] = [{"check": "simulator", "ok": False, "detail": str(exc)}]
                        rows.append(row)
                        continue
                row["checks"] = [c.to_dict() for c in check_provider(cfg)]
            rows.append(row)
    finally:
        if broker is not None:
            broker.close()
    # A failing check is a failing command, so `authbroker providers` can gate a deploy.
    failed = any(not c["ok"] for row in rows for c in row.get("checks", []))
    if json_mode:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        if failed:
            raise CliExit(EXIT_AUTH)
        return
    table = Table(title=f"Providers ({settings.environment})")
    # Names are what an operator acts on: never cut short, folded when narrow.
    table.add_column("name", overflow="fold", min_width=len(max(settings.providers, key=len)))
    for col in ("protocol", "env", "LoA", "country", "health"):
        table.add_column(col, overflow="fold")
    for row in rows:
        checks = row.get("checks", [])
        health = (
            ", ".join(
                f"{'[green]✓' if c['ok'] else '[red]✗'}[/] {c['check']}"
                + (f" ({c['detail']})" if c.get("detail") else "")
                for c in checks
            )
            or "-"
        )
        table.add_row(
            row["name"],
            row["protocol"],
            row["environment"],
            row["loa"],
            row["country"] or "-",
            health,
        )
    console.print(table)
    if failed:
        raise CliExit(EXIT_AUTH)
