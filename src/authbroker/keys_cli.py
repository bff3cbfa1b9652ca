"""``authbroker keys``: the relying party's own keys (FTN request objects and ID-token
encryption, mobile access tokens) and their public JWKS.

Key files are private JWKS documents. The first key of each ``use`` is the current
one (it signs, or is the preferred encryption key); later keys stay published so
tokens and requests made with them keep verifying during a rotation. Files are
written with mode 0600 and replaced atomically, so a crash never leaves half a key.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

import click

from .config import load_config
from .errors import AuthBrokerError, ConfigError
from .jose import Key, KeySet

__all__ = ["generate_keys", "group", "public_jwks", "rotate_keys"]

Purpose = Literal["rp", "tokens"]


def generate_keys(purpose: Purpose, kty: str | None = None) -> list[Key]:
    """Fresh keys: an RP gets one signing and one encryption key; tokens one signing key.

    Own keys are RSA-3072, P-256 or Ed25519 (ASVS 11.2.3); RSA signs with PS256,
    never RS256 (security requirements, decision 2).
    """
    if purpose == "tokens":
        if kty in (None, "OKP"):
            return [Key.generate("OKP", use="sig", alg="EdDSA")]
        if kty == "EC":
            return [Key.generate("EC", use="sig", alg="ES256")]
        raise ConfigError("token keys are OKP (EdDSA) or EC (ES256)", key="kty")
    if kty in (None, "RSA"):
        return [
            Key.generate("RSA", use="sig", alg="PS256"),
            Key.generate("RSA", use="enc", alg="RSA-OAEP-256"),
        ]
    if kty == "EC":
        return [
            Key.generate("EC", use="sig", alg="ES256"),
            Key.generate("EC", use="enc", alg="ECDH-ES+A256KW", crv="P-256"),
        ]
    raise ConfigError("RP keys are RSA or EC", key="kty")


def read_private_jwks(path: Path) -> list[Key]:
    try:
        document = json.loads(path.read_text("utf-8"))
    except OSError:
        raise ConfigError("cannot be read", key=str(path)) from None
    except ValueError:
        raise ConfigError("is not JSON", key=str(path)) from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ConfigError("is not a JWKS", key=str(path))
    keys = [Key.from_jwk(k) for k in document["keys"]]
    if not keys or not all(k.is_private for k in keys):
        raise ConfigError("must hold private keys", key=str(path))
    return keys


def write_private_jwks(path: Path, keys: list[Key]) -> None:
    data = json.dumps({"keys": [k.private_jwk() for k in keys]}, indent=2).encode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".keys-")
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def rotate_keys(keys: list[Key], *, keep: int = 1) -> list[Key]:
    """New current keys of the same kinds first; at most ``keep`` older keys per use."""
    fresh: list[Key] = []
    for use in ("sig", "enc"):
        current = next((k for k in keys if k.use == use), None)
        if current is not None:
            fresh.append(
                Key.generate(
                    current.kty,  # type: ignore[arg-type]
                    use=use,
                    alg=current.alg or ("PS256" if current.kty == "RSA" else "ES256"),
                    crv=current.crv if current.kty != "RSA" else None,
                )
            )
    kept: list[Key] = []
    for use in ("sig", "enc"):
        kept.extend([k for k in keys if k.use == use][:keep])
    return fresh + kept


def public_jwks(keys: list[Key]) -> dict[str, Any]:
    return KeySet(keys).to_public_jwks()


@click.group("keys")
def group() -> None:
    """The relying party's keys: FTN request signing + ID-token encryption, mobile tokens."""


@group.command("generate")
@click.option(
    "--for",
    "purpose",
    type=click.Choice(["rp", "tokens"]),
    default="rp",
    show_default=True,
    help="rp: FTN/OIDC signing + encryption; tokens: mobile JWTs.",
)
@click.option(
    "--kty",
    type=click.Choice(["RSA", "EC", "OKP"]),
    default=None,
    help="Key type (rp: RSA default; tokens: OKP/Ed25519 default).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Private JWKS file to create (mode 0600; refuses to overwrite).",
)
def generate_cmd(purpose: Purpose, kty: str | None, out: Path) -> None:
    """Create a private JWKS file and print its public JWKS."""
    if out.exists():
        raise click.UsageError(f"{out} exists; use `authbroker keys rotate`")
    try:
        keys = generate_keys(purpose, kty)
    except AuthBrokerError as exc:
        raise click.UsageError(str(exc)) from None
    write_private_jwks(out, keys)
    click.echo(json.dumps(public_jwks(keys), indent=2))


@group.command("jwks")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--provider", help="Print the RP JWKS configured for this OIDC provider.")
@click.option("--config", type=click.Path(dir_okay=False), help="authbroker.toml to use.")
def jwks_cmd(file: Path | None, provider: str | None, config: str | None) -> None:
    """Print the public JWKS of FILE, or of the RP keys configured for --provider."""
    try:
        if file is not None:
            document = public_jwks(read_private_jwks(file))
        elif provider is not None:
            from .providers.oidc import rp_public_jwks

            settings = load_config(config)
            document = rp_public_jwks(settings.provider(provider), settings)
        else:
            raise click.UsageError("give a FILE or --provider")
    except AuthBrokerError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(json.dumps(document, indent=2))


@group.command("rotate")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--keep",
    default=1,
    show_default=True,
    help="Older keys to keep per use (published for verification).",
)
def rotate_cmd(file: Path, keep: int) -> None:
    """Put new current keys in FILE, keeping --keep older ones; print the public JWKS.

    Publish the new JWKS (and let the provider refetch it) before the old key is
    dropped by a later rotation.
    """
    if keep < 0:
        raise click.UsageError("--keep must be 0 or more")
    try:
        keys = rotate_keys(read_private_jwks(file), keep=keep)
    except AuthBrokerError as exc:
        raise click.UsageError(str(exc)) from None
    write_private_jwks(file, keys)
    click.echo(json.dumps(public_jwks(keys), indent=2))
