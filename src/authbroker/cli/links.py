"""``authbroker link``: exercise the direct-link + SMS code flow from a terminal.

Each command is a separate process, so state lives in a file store (SQLite by
default) and the signing secret comes from ``AUTHBROKER_SECRET_KEYS``; for local
experiments a development secret is created next to the store (mode 0600). SMS
messages go to the outbox sender and are printed, code included: this command is a
development tool, never a production sender.

The default store lives in the per-user state directory (``$XDG_STATE_HOME/authbroker``
or ``~/.local/state/authbroker``, mode 0700), not in the working directory: a
secret file dropped into a project checkout is one ``git add .`` away from a
repository. A store given inside the working directory still works, with a warning.

Results are JSON on stdout with ISO 8601 UTC times; the outbox SMS goes to stderr.
Link tokens and challenge ids may begin with ``-``: the commands take them as
arguments, never as options (``--`` before them works too).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from ..engines.links import DirectLinks
from ..errors import AuthBrokerError, ConfigError
from ..sms.outbox import OutboxMessage, OutboxSender
from ..store import open_store
from .output import iso_time, json_dumps

__all__ = ["default_store_url", "group", "state_dir"]


def state_dir() -> Path:
    """The per-user state directory (XDG Base Directory spec,
    https://specifications.freedesktop.org/basedir-spec/latest/), created mode 0700."""
    base = os.environ.get("XDG_STATE_HOME", "")
    # The spec: a relative path in $XDG_STATE_HOME is invalid and must be ignored.
    root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "state"
    path = root / "authbroker"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def default_store_url() -> str:
    """``sqlite:///`` + the links database in :func:`state_dir`."""
    return f"sqlite:///{state_dir() / 'links.db'}"


def _sqlite_path(store_url: str) -> Path | None:
    return (
        Path(store_url.removeprefix("sqlite:///")) if store_url.startswith("sqlite:///") else None
    )


def _prepare_store(store_url: str | None) -> str:
    """The store URL to use; a SQLite file is created 0600 before SQLite opens it
    (SQLite gives its journal files the database file's mode), and one inside the
    working directory draws a warning (its secret file lands there too)."""
    url = store_url or default_store_url()
    path = _sqlite_path(url)
    if path is None:
        return url
    if store_url and path.resolve().is_relative_to(Path.cwd().resolve()):
        click.echo(
            f"warning: the store {path} and its development secret are inside the working "
            "directory; keep them out of version control (the default store is in "
            f"{state_dir()})",
            err=True,
        )
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return url


def _secret_keys(store_url: str) -> list[str]:
    env = os.environ.get("AUTHBROKER_SECRET_KEYS", "")
    keys = [k.strip() for k in env.split(",") if k.strip()]
    if keys:
        return keys
    path = _sqlite_path(store_url)
    if path is None:
        raise ConfigError("is required with a shared store", key="AUTHBROKER_SECRET_KEYS")
    path = path.with_name(path.name + ".secret")
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return [path.read_text().strip()]


def _links(store_url: str | None, base_url: str, echo: bool) -> DirectLinks:
    url = _prepare_store(store_url)

    def show(msg: OutboxMessage) -> None:
        click.echo(f"[outbox] SMS to {msg.to}:\n{msg.body}", err=True)

    return DirectLinks(
        open_store(url),
        OutboxSender(echo=show if echo else None),
        secret_keys=_secret_keys(url),
        base_url=base_url,
    )


def _token(value: str) -> str:
    """Accept a whole link URL or just its token."""
    if "://" in value:
        return urlsplit(value).path.rstrip("/").rsplit("/", 1)[-1]
    return value


_store_option = click.option(
    "--store",
    "store_url",
    default=None,
    help="State store URL shared by the three commands "
    "[default: sqlite:///$XDG_STATE_HOME/authbroker/links.db].",
)
_base_option = click.option(
    "--base-url",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="Site the links point to (its host goes in the SMS @host line).",
)


class _Failed(click.ClickException):
    """Authentication-side failure: exit code 1 (configuration problems exit 2)."""

    exit_code = 1


#: Tokens and challenge ids are base64url and may begin with "-": an unknown
#: "option" is kept as an argument instead of failing "No such option"; only
#: ``--help`` stays an option (no "-h", which a token could start with).
_ARGS_MAY_START_WITH_DASH: dict[str, Any] = {
    "ignore_unknown_options": True,
    "help_option_names": ["--help"],
}


@click.group("link")
def group() -> None:
    """Direct links with SMS one-time codes (development: outbox sender)."""


@group.command("issue", context_settings=_ARGS_MAY_START_WITH_DASH)
@click.argument("user_id")
@click.argument("phone")
@click.argument("scope")
@click.argument("resource")
@click.option("--ttl", default=3600.0, show_default=True, help="Link lifetime in seconds.")
@click.option("--single-use", is_flag=True, help="The link works for one successful code.")
@click.option("--language", default="fi", show_default=True, help="SMS language.")
@_store_option
@_base_option
def issue_cmd(
    user_id: str,
    phone: str,
    scope: str,
    resource: str,
    ttl: float,
    single_use: bool,
    language: str,
    store_url: str | None,
    base_url: str,
) -> None:
    """Issue a signed link for USER_ID to do SCOPE on RESOURCE; codes go to PHONE.

    Prints {"url", "expires_at"}.
    """
    try:
        links = _links(store_url, base_url, echo=False)
        issued = links.issue_link(
            user_id, phone, scope, resource, ttl, single_use=single_use, language=language
        )
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    except AuthBrokerError as exc:
        raise _Failed(f"{type(exc).__name__} ({exc.code}): {exc}") from None
    click.echo(json_dumps({"url": issued.url, "expires_at": iso_time(issued.expires_at)}))


@group.command("open", context_settings=_ARGS_MAY_START_WITH_DASH)
@click.argument("link")
@click.option("--client-ip", default="127.0.0.1", show_default=True)
@_store_option
@_base_option
def open_cmd(link: str, client_ip: str, store_url: str | None, base_url: str) -> None:
    """Open LINK (URL or token): sends a code (printed from the outbox)."""
    try:
        links = _links(store_url, base_url, echo=True)
        challenge = links.open(_token(link), client_ip)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    except AuthBrokerError as exc:
        raise _Failed(f"{type(exc).__name__} ({exc.code}): {exc}") from None
    click.echo(
        json_dumps(
            {
                "challenge_id": challenge.challenge_id,
                "masked_phone": challenge.masked_phone,
                "expires_at": iso_time(challenge.expires_at),
                "resend_after": iso_time(challenge.resend_after),
            }
        )
    )


@group.command("verify", context_settings=_ARGS_MAY_START_WITH_DASH)
@click.argument("challenge_id")
@click.argument("code")
@_store_option
@_base_option
def verify_cmd(challenge_id: str, code: str, store_url: str | None, base_url: str) -> None:
    """Check CODE for CHALLENGE_ID; prints the grant (exactly one scope + resource)."""
    try:
        links = _links(store_url, base_url, echo=False)
        grant = links.verify(challenge_id, code)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    except AuthBrokerError as exc:
        raise _Failed(f"{type(exc).__name__} ({exc.code}): {exc}") from None
    click.echo(
        json_dumps(
            {
                "scope": grant.scope,
                "resource": grant.resource,
                "expires_at": iso_time(grant.expires_at),
            }
        )
    )
