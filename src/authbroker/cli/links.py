"""``authbroker link``: exercise the direct-link + SMS code flow from a terminal.

Each command is a separate process, so state lives in a file store (SQLite by
default) and the signing secret comes from ``AUTHBROKER_SECRET_KEYS``; for local
experiments a development secret is created next to the store (mode 0600). SMS
messages go to the outbox sender and are printed, code included: this command is a
development tool, never a production sender.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import click

from ..engines.links import DirectLinks
from ..errors import AuthBrokerError, ConfigError
from ..sms.outbox import OutboxMessage, OutboxSender
from ..store import open_store

__all__ = ["group"]

DEFAULT_STORE = "sqlite:///.authbroker-links.db"


def _secret_keys(store_url: str) -> list[str]:
    env = os.environ.get("AUTHBROKER_SECRET_KEYS", "")
    keys = [k.strip() for k in env.split(",") if k.strip()]
    if keys:
        return keys
    if not store_url.startswith("sqlite:///"):
        raise ConfigError("is required with a shared store", key="AUTHBROKER_SECRET_KEYS")
    path = Path(store_url.removeprefix("sqlite:///") + ".secret")
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return [path.read_text().strip()]


def _links(store_url: str, base_url: str, echo: bool) -> DirectLinks:
    def show(msg: OutboxMessage) -> None:
        click.echo(f"[outbox] SMS to {msg.to}:\n{msg.body}", err=True)

    return DirectLinks(
        open_store(store_url),
        OutboxSender(echo=show if echo else None),
        secret_keys=_secret_keys(store_url),
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
    default=DEFAULT_STORE,
    show_default=True,
    help="State store URL shared by the three commands.",
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


@click.group("link")
def group() -> None:
    """Direct links with SMS one-time codes (development: outbox sender)."""


@group.command("issue")
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
    store_url: str,
    base_url: str,
) -> None:
    """Issue a signed link for USER_ID to do SCOPE on RESOURCE; codes go to PHONE."""
    try:
        links = _links(store_url, base_url, echo=False)
        url = links.issue(
            user_id, phone, scope, resource, ttl, single_use=single_use, language=language
        )
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    except AuthBrokerError as exc:
        raise _Failed(f"{type(exc).__name__} ({exc.code}): {exc}") from None
    click.echo(url)


@group.command("open")
@click.argument("link")
@click.option("--client-ip", default="127.0.0.1", show_default=True)
@_store_option
@_base_option
def open_cmd(link: str, client_ip: str, store_url: str, base_url: str) -> None:
    """Open LINK (URL or token): sends a code (printed from the outbox)."""
    try:
        links = _links(store_url, base_url, echo=True)
        challenge = links.open(_token(link), client_ip)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    except AuthBrokerError as exc:
        raise _Failed(f"{type(exc).__name__} ({exc.code}): {exc}") from None
    click.echo(
        json.dumps(
            {
                "challenge_id": challenge.challenge_id,
                "masked_phone": challenge.masked_phone,
                "expires_at": challenge.expires_at,
                "resend_after": challenge.resend_after,
            },
            indent=2,
        )
    )


@group.command("verify")
@click.argument("challenge_id")
@click.argument("code")
@_store_option
@_base_option
def verify_cmd(challenge_id: str, code: str, store_url: str, base_url: str) -> None:
    """Check CODE for CHALLENGE_ID; prints the grant (exactly one scope + resource)."""
    try:
        links = _links(store_url, base_url, echo=False)
        grant = links.verify(challenge_id, code)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    except AuthBrokerError as exc:
        raise _Failed(f"{type(exc).__name__} ({exc.code}): {exc}") from None
    click.echo(
        json.dumps(
            {
                "scope": grant.scope,
                "resource": grant.resource,
                "expires_at": grant.expires_at,
            },
            indent=2,
        )
    )
