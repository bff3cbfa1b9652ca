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

from ..config import ProviderConfig, load_config
from ..crypto.jose import Key, KeySet
from ..errors import AuthBrokerError, ConfigError

__all__ = ["generate_keys", "group", "public_jwks", "rotate_keys"]

Purpose = Literal["rp", "tokens", "federation"]


def generate_keys(
    purpose: Purpose, kty: str | None = None, config: ProviderConfig | None = None
) -> list[Key]:
    """Fresh keys: an RP gets a signing and an encryption key; tokens one signing key;
    federation one signing key for the signed JWKS (OpenID Federation).

    RP keys come from :func:`authbroker.providers.oidc.generate_rp_keys`: with the
    provider's ``config`` they are bound to the algorithms that provider accepts
    (FTN through Telia: RS256 and RSA-OAEP); without it PS256 and RSA-OAEP-256.
    Own keys are RSA-3072, P-256 or Ed25519 (ASVS 11.2.3).
    """
    from ..providers.oidc import generate_rp_keys, rp_signing_algs

    if purpose == "tokens":
        if kty in (None, "OKP"):
            return [Key.generate("OKP", use="sig", alg="EdDSA")]
        if kty == "EC":
            return [Key.generate("EC", use="sig", alg="ES256")]
        raise ConfigError("token keys are OKP (EdDSA) or EC (ES256)", key="kty")
    if kty not in (None, "RSA", "EC"):
        raise ConfigError("RP keys are RSA or EC", key="kty")
    if purpose == "federation":
        # Signs the JWKS the provider fetches; it must accept its algorithm too.
        algs = rp_signing_algs(config) if config else ("PS256", "ES256")
        family = ("ES",) if kty == "EC" else ("RS", "PS")
        alg = next((a for a in algs if a.startswith(family)), None)
        if alg is None:
            raise ConfigError("the provider accepts no such key type", key="kty")
        return [Key.generate("EC" if kty == "EC" else "RSA", use="sig", alg=alg)]
    document = generate_rp_keys(config, kty="EC" if kty == "EC" else "RSA")
    return [Key.from_jwk(member) for member in document["keys"]]


def _provider_config(provider: str | None, config: str | None, env: str | None) -> Any:
    if provider is None:
        return None
    return load_config(config, environment=env).provider(provider)


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
    type=click.Choice(["rp", "tokens", "federation"]),
    default="rp",
    show_default=True,
    help="rp: FTN/OIDC signing + encryption; tokens: mobile JWTs; "
    "federation: the key that signs the RP's signed JWKS.",
)
@click.option(
    "--provider",
    help="Make rp/federation keys with the algorithms this OIDC provider accepts "
    "(e.g. ftn: RS256 + RSA-OAEP).",
)
@click.option("--config", type=click.Path(dir_okay=False), help="authbroker.toml to use.")
@click.option(
    "--env",
    type=click.Choice(["simulator", "test", "production"]),
    default=None,
    help="Environment whose provider settings apply (default: the file's).",
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
def generate_cmd(
    purpose: Purpose,
    provider: str | None,
    config: str | None,
    env: str | None,
    kty: str | None,
    out: Path,
) -> None:
    """Create a private JWKS file and print its public JWKS."""
    if out.exists():
        raise click.UsageError(f"{out} exists; use `authbroker keys rotate`")
    try:
        keys = generate_keys(purpose, kty, _provider_config(provider, config, env))
    except AuthBrokerError as exc:
        raise click.UsageError(str(exc)) from None
    write_private_jwks(out, keys)
    click.echo(json.dumps(public_jwks(keys), indent=2))


@group.command("jwks")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--provider", help="Print the RP JWKS configured for this OIDC provider.")
@click.option("--config", type=click.Path(dir_okay=False), help="authbroker.toml to use.")
@click.option(
    "--signed",
    is_flag=True,
    help="Print the signed JWK Set (OpenID Federation signed_jwks_uri) of --provider, "
    "signed with its federation key.",
)
def jwks_cmd(file: Path | None, provider: str | None, config: str | None, signed: bool) -> None:
    """Print the public JWKS of FILE, or of the RP keys configured for --provider."""
    try:
        if signed:
            if provider is None or file is not None:
                raise click.UsageError("--signed needs --provider (and no FILE)")
            from ..providers.oidc import signed_rp_jwks

            click.echo(signed_rp_jwks(load_config(config).provider(provider)))
            return
        if file is not None:
            document = public_jwks(read_private_jwks(file))
        elif provider is not None:
            from ..providers.oidc import rp_public_jwks

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
