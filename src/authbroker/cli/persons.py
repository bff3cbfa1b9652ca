"""The simulators' test persons: ``authbroker persons PROVIDER`` and ``--person``.

``authbroker flow P --person X`` hands ``X`` to the simulated user
(:class:`~authbroker.testing.simulators.autopilot.Autopilot`). A person the simulator
does not know used to surface only at the end of the timeout (the BankID simulator
never saw a scan, so the order ended ``startFailed``); here the choice is checked
against the running simulator's own list before the flow begins, and the error names
the valid choices.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..config import load_config
from ..config_schema import did_you_mean
from ..errors import AuthBrokerError
from ..testing import SimulatedBroker, simulated_broker
from .output import console_for, fail, json_dumps, provider_config

__all__ = ["check_person", "persons_cmd", "print_persons", "simulator_persons"]


def simulator_persons(broker: SimulatedBroker, provider: str) -> list[dict[str, str]]:
    """``{"id", "name", "note"}`` for each person ``--person`` accepts, in the
    simulator's order (the first is the default). Identity numbers of the OIDC
    persons are not shown: their ``id`` is what selects them."""
    protocol = broker.settings.provider(provider).protocol
    sim = broker.simulator(provider)
    extra: Mapping[str, Any] = sim.extra if sim is not None else {}
    if protocol == "oidc":
        return [
            {"id": p["id"], "name": f"{p['given_name']} {p['family_name']}", "note": p["country"]}
            for p in extra.get("persons", [])
        ]
    if protocol == "mobiilivarmenne":
        return [
            {"id": str(u["msisdn"]), "name": str(u["name"]), "note": ""}
            for u in extra.get("users", [])
        ]
    if protocol == "tupas":
        return [
            {"id": key, "name": c.name, "note": f"customer type {c.custtype}"}
            for key, c in extra.get("customers", {}).items()
        ]
    if protocol == "bankid-se":
        # The script's last state is how the order ends: handy to pick a failure case.
        return [
            {"id": pn, "name": u.name, "note": f"ends {u.script[-1]}"}
            for pn, u in extra.get("users", {}).items()
        ]
    return []  # Web eID: the simulator's one test card signs; nobody to choose.


def check_person(broker: SimulatedBroker, provider: str, person: str) -> None:
    """A usage error (exit 2) unless ``person`` is one of the simulator's persons."""
    persons = simulator_persons(broker, provider)
    ids = [p["id"] for p in persons]
    if person in ids:
        return
    if not ids:
        raise click.BadParameter(
            f"the {provider} simulator has no test persons to choose from",
            param_hint="--person",
        )
    raise click.BadParameter(
        f"{person!r} is not a test person of the {provider} simulator"
        f"{did_you_mean(person, ids)} (valid: {', '.join(ids)}; "
        f"`authbroker persons {provider}` lists them)",
        param_hint="--person",
    )


def print_persons(
    console: Console, provider: str, persons: list[dict[str, str]], json_mode: bool
) -> None:
    """The persons as JSON on stdout, or as a table."""
    if json_mode:
        click.echo(json_dumps(persons))
        return
    if not persons:
        console.print(f"The {provider} simulator has no test persons to choose from.")
        return
    table = Table(title=f"Test persons of the {provider} simulator (--person ID)")
    for col in ("id", "name", "note"):
        table.add_column(col, overflow="fold")
    for p in persons:
        table.add_row(p["id"], p["name"], p["note"])
    console.print(table)


@click.command("persons")
@click.argument("provider")
@click.option("--config", type=click.Path(dir_okay=False), help="authbroker.toml to use.")
@click.option("--json", "json_mode", is_flag=True, help="Machine-readable output.")
def persons_cmd(provider: str, config: str | None, json_mode: bool) -> None:
    """List the test persons of PROVIDER's simulator (the values --person accepts)."""
    console = console_for(json_mode)
    try:
        settings = load_config(config, environment="simulator")
        provider_config(settings, provider)
        with simulated_broker(settings) as broker:
            persons = simulator_persons(broker, provider)
    except AuthBrokerError as exc:
        fail(console, exc)
    print_persons(console, provider, persons, json_mode)
