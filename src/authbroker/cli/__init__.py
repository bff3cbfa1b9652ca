"""The ``authbroker`` command: run and debug any provider flow from a terminal.

One module per command family: :mod:`.flow` (``flow``), :mod:`.persons`
(``persons``), :mod:`.providers` (``providers``), :mod:`.config` (``check-config``),
:mod:`.demo` (``demo``), :mod:`.keys` (``keys ...``), :mod:`.links` (``link ...``);
:mod:`.output` holds what they share (exit codes, consoles, JSON).

Exit codes (documented in ``docs/cli.md``): 0 success, 1 authentication failed or
cancelled, 2 usage or configuration error.
"""

from __future__ import annotations

import click

from .. import __version__
from .config import check_config_cmd
from .demo import demo_cmd
from .flow import Catcher, TracingDriver, browse_to_callback, flow_cmd, run_flow
from .keys import group as keys_group
from .links import group as link_group
from .output import EXIT_AUTH, EXIT_OK, EXIT_USAGE, CliExit
from .persons import persons_cmd
from .providers import providers_cmd

__all__ = [
    "EXIT_AUTH",
    "EXIT_OK",
    "EXIT_USAGE",
    "Catcher",
    "TracingDriver",
    "browse_to_callback",
    "cli",
    "main",
    "run_flow",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="authbroker")
def cli() -> None:
    """Run and debug strong-identification flows (FTN, TUPAS, Mobiilivarmenne,
    Web eID, TARA, Swedish and Norwegian BankID)."""


for _command in (
    flow_cmd,
    persons_cmd,
    providers_cmd,
    check_config_cmd,
    demo_cmd,
    keys_group,
    link_group,
):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit code instead of raising."""
    try:
        cli.main(args=argv, prog_name="authbroker", standalone_mode=False)
    except CliExit as exc:
        return exc.code
    except click.exceptions.Abort:
        return EXIT_AUTH
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    return EXIT_OK
