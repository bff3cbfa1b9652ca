"""The ``authbroker`` command: run and debug any provider flow from a terminal.

Exit codes (documented in ``docs/cli.md``): 0 success, 1 authentication failed or
cancelled, 2 usage or configuration error.

``authbroker flow P --env simulator`` acts as the browser and the user itself: it
follows redirects and posts forms to the simulator, signs Web eID challenges with
the simulator's test card and lets the simulated BankID / Mobile ID user approve,
so every provider can be exercised end to end with no browser. In the ``test`` and
``production`` environments it opens the system browser (or prints the URL) and
catches the callback on a loopback listener.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import webbrowser
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlsplit

import click
import httpx
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from . import __version__
from .config import Settings, load_config
from .engines.flows import Broker
from .errors import (
    AccessDenied,
    AuthBrokerError,
    ConfigError,
    Expired,
    InvalidInput,
    ProviderError,
    UserCancelled,
)
from .http import HttpRequest, HttpResponse, SyncDriver
from .keys_cli import group as keys_group
from .links_cli import group as link_group
from .redact import redact_body, redact_url
from .steps import AutoPost, Challenge, Done, Poll, Redirect, Step
from .testing import SimulatedBroker, simulated_broker
from .testing.simulators.autopilot import Autopilot
from .testing.simulators.server import LoopbackServer, SimRequest, SimResponse

__all__ = ["main"]

EXIT_OK, EXIT_AUTH, EXIT_USAGE = 0, 1, 2
_AUTH_ERRORS = (UserCancelled, Expired, InvalidInput, ProviderError, AccessDenied)


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def _console(json_mode: bool) -> Console:
    # JSON goes to stdout; human chatter to stderr so pipes stay clean.
    return Console(stderr=True, quiet=False) if json_mode else Console()


def _fail(console: Console, exc: AuthBrokerError) -> NoReturn:
    code = EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_AUTH
    console.print(f"[bold red]{type(exc).__name__}[/] ({exc.code}): {exc}")
    raise _Exit(code)


# --- verbose protocol tracing -------------------------------------------------------


class TracingDriver(SyncDriver):
    """A driver that prints each protocol message, secrets and identity codes redacted."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def send(self, req: HttpRequest) -> HttpResponse:
        self.console.print(
            f"[cyan]→ {req.method} {redact_url(req.url)}[/] [dim]{req.tag}[/]"
            + (f"\n  {redact_body(req.body)}" if req.body else "")
        )
        resp = super().send(req)
        self.console.print(
            f"[magenta]← {resp.status}[/] {resp.content_type}"
            + (f"\n  {redact_body(resp.body)}" if resp.body else "")
        )
        return resp


# --- the simulated browser ----------------------------------------------------------


@dataclass
class Catcher:
    """Loopback listener that catches the provider's redirect back to the callback."""

    params: dict[str, str] = field(default_factory=dict)
    event: threading.Event = field(default_factory=threading.Event)
    autopost: AutoPost | None = None

    def __call__(self, req: SimRequest) -> SimResponse:
        if req.path == "/start" and self.autopost is not None:
            return SimResponse.html(_autopost_html(self.autopost))
        if "/callback/" in req.path:
            self.params = {k: v[0] for k, v in req.query.items()}
            if req.method == "POST":
                self.params.update(req.form())
            self.event.set()
            return SimResponse.html(
                "<!doctype html><title>authbroker</title>"
                "<p>Done. You can close this window and return to the terminal.</p>"
            )
        return SimResponse(404, b"not found")


def _autopost_html(step: AutoPost) -> str:
    from html import escape

    inputs = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
        for k, v in step.fields.items()
    )
    return (
        "<!doctype html><title>authbroker</title>"
        f'<form id="f" method="post" action="{escape(step.url)}">{inputs}'
        "<noscript><button>Continue</button></noscript></form>"
        "<script>document.getElementById('f').submit()</script>"
    )


def _callback_params(location: str, callback_base: str) -> dict[str, str] | None:
    if location.startswith(callback_base):
        return dict(parse_qsl(urlsplit(location).query, keep_blank_values=True))
    return None


def browse_to_callback(
    client: httpx.Client, method: str, url: str, callback_base: str, data: Mapping[str, str] | None
) -> dict[str, str]:
    """Act as the browser against a simulator until it redirects to our callback."""
    for _ in range(10):
        resp = client.request(method, url, data=dict(data) if data else None)
        location = resp.headers.get("location")
        if resp.status_code in (301, 302, 303, 307) and location:
            location = str(httpx.URL(url).join(location))
            params = _callback_params(location, callback_base)
            if params is not None:
                return params
            method, url, data = "GET", location, None
            continue
        raise ProviderError(
            f"the simulator answered {resp.status_code} instead of redirecting back",
            code="no_redirect",
        )
    raise ProviderError("too many redirects", code="redirect_loop")


# --- flow runner --------------------------------------------------------------------


def _settings_for(env: str, config: str | None, base_url: str | None) -> Settings:
    overrides: dict[str, Any] = {}
    if base_url:
        overrides["broker"] = {"base_url": base_url}
    return load_config(config, environment=env, overrides=overrides)


def _qr_text(payload: str) -> str:
    """The QR as half-block text (two modules per line) for a terminal."""
    import io

    import segno

    out = io.StringIO()
    segno.make(payload, error="l").terminal(out=out, compact=True, border=2)
    return out.getvalue().rstrip("\n")


def run_flow(
    broker: Broker,
    provider: str,
    *,
    params: Mapping[str, str],
    console: Console,
    simulated: bool,
    interactive: bool,
    language: str,
    timeout: float,
    client_ip: str = "127.0.0.1",
    person: str | None = None,
    user_delay: float = 0.0,
    listener: tuple[Catcher, LoopbackServer] | None = None,
) -> Done:
    """Drive one flow to its end; the terminal stands in for the browser.

    In the simulator the :class:`Autopilot` also stands in for the user. Outside it,
    ``listener`` is the loopback server whose URL is the broker's ``base_url``, so the
    provider's redirect comes back to this process.
    """
    if not simulated and listener is None:
        raise ConfigError("a loopback listener is needed outside the simulator", key="flow")
    catcher, server = listener if listener is not None else (Catcher(), None)
    binding = "cli-" + secrets.token_urlsafe(16)
    deadline = time.monotonic() + timeout
    pilot: Autopilot | None = None
    if simulated:
        if not isinstance(broker, SimulatedBroker):
            raise ConfigError("a simulated flow needs authbroker.testing.simulated_broker()")
        protocol = broker.settings.provider(provider).protocol
        pilot = Autopilot(protocol, broker.simulator(provider), person, user_delay)
        params = pilot.prepare(params)
    step: Step = broker.begin(
        provider,
        params=params,
        binding=binding,
        language=language,
        origin=broker.settings.base_url,
        client_ip=client_ip,
    )
    with httpx.Client(follow_redirects=False, timeout=10.0) as client:
        while not isinstance(step, Done):
            if time.monotonic() > deadline:
                broker.cancel(step.flow_id, binding=binding)
                raise Expired("the flow timed out in the terminal", code="cli_timeout")
            if isinstance(step, Redirect | AutoPost):
                if simulated:
                    if isinstance(step, Redirect):
                        method, url, data = "GET", step.url, None
                    else:
                        method, url, data = "POST", step.url, dict(step.fields)
                    got = browse_to_callback(
                        client, method, url, broker.settings.callback_base, data
                    )
                else:
                    assert server is not None
                    if isinstance(step, AutoPost):
                        catcher.autopost = step
                        target = server.url + "/start"
                    else:
                        target = step.url
                    console.print(f"Open this address in your browser:\n[link]{target}[/link]")
                    if interactive:
                        webbrowser.open(target)
                    if not catcher.event.wait(max(1.0, deadline - time.monotonic())):
                        raise Expired("no callback arrived", code="cli_timeout")
                    got = catcher.params
                step = broker.advance(step.flow_id, got, binding=binding, language=language)
            elif isinstance(step, Challenge):
                if pilot is None:
                    raise ConfigError(
                        "Web eID needs a browser with the Web eID extension; "
                        "use --env simulator or the web demo",
                        key="flow",
                    )
                token = pilot.sign_challenge(broker.settings.base_url, step.nonce)
                step = broker.advance(step.flow_id, {"token": token}, binding=binding)
            elif isinstance(step, Poll):
                step = _poll(broker, step, binding, console, language, deadline, pilot)
    return step


def _poll(
    broker: Broker,
    step: Poll,
    binding: str,
    console: Console,
    language: str,
    deadline: float,
    pilot: Autopilot | None,
) -> Step:
    """Poll a decoupled flow, redrawing the animated QR every second."""
    current: Step = step
    with Live(console=console, refresh_per_second=4, transient=True) as live:
        next_poll = time.monotonic() + step.interval
        while isinstance(current, Poll):
            display = current.display
            qr = broker.refresh(current.flow_id, binding=binding).display.qr or display.qr
            panel = Text()
            if qr:
                panel.append(_qr_text(qr) + "\n")
            if display.verification_code:
                panel.append(f"Verification code: {display.verification_code}\n", style="bold")
            if display.autostart_url:
                panel.append(f"Same device: {display.autostart_url}\n", style="dim")
            message = display.message.get(language) or display.message.get("en") or ""
            panel.append(f"⠿ {message} [{display.hint_code or display.status}]")
            live.update(panel)
            if pilot is not None:
                pilot.on_poll(replace(display, qr=qr))
            if time.monotonic() > deadline:
                broker.cancel(current.flow_id, binding=binding)
                raise Expired("the flow timed out", code="cli_timeout")
            time.sleep(min(1.0, max(0.05, next_poll - time.monotonic())))
            if time.monotonic() >= next_poll:
                current = broker.advance(current.flow_id, {}, binding=binding, language=language)
                if isinstance(current, Poll):
                    next_poll = time.monotonic() + current.interval
    return current


# --- commands -----------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="authbroker")
def cli() -> None:
    """Run and debug strong-identification flows (FTN, TUPAS, Mobiilivarmenne,
    Web eID, TARA, Swedish and Norwegian BankID)."""


@cli.command("flow")
@click.argument("provider")
@click.option(
    "--env",
    "env",
    type=click.Choice(["simulator", "test", "production"]),
    default="simulator",
    show_default=True,
    help="Provider environment.",
)
@click.option("--config", type=click.Path(dir_okay=False), help="authbroker.toml to use.")
@click.option("--json", "json_mode", is_flag=True, help="Print the Identity as JSON only.")
@click.option("--verbose", "-v", is_flag=True, help="Show each protocol message (redacted).")
@click.option("--show-personal-data", is_flag=True, help="Do not mask the identity number.")
@click.option(
    "--param",
    "-p",
    multiple=True,
    metavar="KEY=VALUE",
    help="Flow parameter (e.g. phone=+358401234567, sign=true).",
)
@click.option("--language", default="en", show_default=True, help="fi, sv or en.")
@click.option("--timeout", default=180.0, show_default=True, help="Seconds before giving up.")
@click.option("--no-browser", is_flag=True, help="Print the URL instead of opening a browser.")
@click.option(
    "--client-ip",
    default="127.0.0.1",
    show_default=True,
    help="End-user IP reported to providers that need it (BankID).",
)
@click.option(
    "--person", default=None, help="Simulator only: the test person who acts (id, MSISDN...)."
)
@click.option(
    "--user-delay",
    default=0.0,
    show_default=True,
    help="Simulator only: seconds the simulated user waits before scanning the QR.",
)
@click.option(
    "--callback-port",
    default=8765,
    show_default=True,
    help="Outside the simulator: loopback port that catches the provider's redirect "
    "(register http://127.0.0.1:PORT/auth/callback/PROVIDER with the provider).",
)
def flow_cmd(
    provider: str,
    env: str,
    config: str | None,
    json_mode: bool,
    verbose: bool,
    show_personal_data: bool,
    param: tuple[str, ...],
    language: str,
    timeout: float,
    no_browser: bool,
    client_ip: str,
    person: str | None,
    user_delay: float,
    callback_port: int,
) -> None:
    """Run the whole PROVIDER flow in the terminal and print the normalized Identity."""
    console = _console(json_mode)
    params = _parse_params(param)
    try:
        listener: tuple[Catcher, LoopbackServer] | None = None
        base_url = None
        if env != "simulator":
            catcher = Catcher()
            listener = (catcher, LoopbackServer(catcher, port=callback_port).start())
            base_url = listener[1].url  # register {base_url}/auth/callback/<provider>
        settings = _settings_for(env, config, base_url)
        driver = TracingDriver(console) if verbose else SyncDriver()
        broker = (
            simulated_broker(settings, driver=driver)
            if env == "simulator"
            else Broker(settings, driver=driver)
        )
        with broker, _stopping(listener):
            done = run_flow(
                broker,
                provider,
                params=params,
                console=console,
                simulated=env == "simulator",
                interactive=not no_browser,
                language=language,
                timeout=timeout,
                client_ip=client_ip,
                person=person,
                user_delay=user_delay,
                listener=listener,
            )
    except AuthBrokerError as exc:
        _fail(console, exc)
    data = done.identity.to_dict(show_personal_data=show_personal_data)
    if json_mode:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        table = Table(title=f"Identity from {provider}", show_header=False)
        for key, value in data.items():
            if value not in (None, {}, ""):
                table.add_row(
                    key,
                    json.dumps(value, ensure_ascii=False)
                    if isinstance(value, dict)
                    else str(value),
                )
        console.print(table)


@contextmanager
def _stopping(listener: tuple[Catcher, LoopbackServer] | None) -> Iterator[None]:
    try:
        yield
    finally:
        if listener is not None:
            listener[1].stop()


def _parse_params(items: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--param")
        out[key] = value
    return out


@cli.command("providers")
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
    from .health import check_provider

    console = _console(json_mode)
    try:
        settings = load_config(config, environment=env)
    except ConfigError as exc:
        _fail(console, exc)
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
            raise _Exit(EXIT_AUTH)
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
        raise _Exit(EXIT_AUTH)


@cli.command("check-config")
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
    from .health import validate_settings

    console = Console(stderr=True)
    try:
        settings = load_config(file, environment=env)
    except ConfigError as exc:
        for error in exc.errors:
            console.print(f"[red]✗[/] {error.key or 'configuration'}: {error.reason}")
        console.print(f"{len(exc.errors)} error(s)")
        raise _Exit(EXIT_USAGE) from None
    problems = validate_settings(settings)
    for problem in problems:
        console.print(f"[red]✗[/] {problem.key}: {problem.message}")
    if problems:
        raise _Exit(EXIT_USAGE)
    click.echo(
        f"configuration OK: environment {settings.environment}, "
        f"{len(settings.providers)} provider(s): {', '.join(settings.providers)}"
    )


@cli.command("demo")
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
        raise _Exit(EXIT_USAGE)
    from .web import demo

    demo.serve(host=host, port=port, base_url=base_url)  # exit 3: address in use


cli.add_command(keys_group)
cli.add_command(link_group)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit code instead of raising."""
    try:
        cli.main(args=argv, prog_name="authbroker", standalone_mode=False)
    except _Exit as exc:
        return exc.code
    except click.exceptions.Abort:
        return EXIT_AUTH
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    return EXIT_OK
