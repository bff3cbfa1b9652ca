"""``authbroker demo``: the example accounting app with every provider simulated."""

from __future__ import annotations

import click
from rich.console import Console

from .output import EXIT_USAGE, CliExit

__all__ = ["demo_cmd"]


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--base-url", default=None, help="the address browsers use (default: host:port)")
def demo_cmd(host: str, port: int, base_url: str | None) -> None:
    """Run the example accounting app with every provider on its simulator.

    The demo is a web application: it needs the ``web`` extra beside ``cli``. Without
    it the command says so and exits with the usage code instead of failing deep
    inside an import.
    """
    import importlib.util

    missing = [m for m in ("jinja2", "starlette", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        Console(stderr=True).print(
            f"[red]authbroker demo needs the web extra[/] (missing: {', '.join(missing)}): "
            "pip install 'authbroker[web,cli]'"
        )
        raise CliExit(EXIT_USAGE)
    from ..web import demo

    demo.serve(host=host, port=port, base_url=base_url)  # exit 3: address in use
