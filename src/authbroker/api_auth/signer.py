"""The client side: sign outgoing API requests (RFC 9421) for integrators.

Two lines with httpx (sync or async client alike)::

    auth = ApiSigner("partner-key-2025", load_private_key(pem), company="1234567-8")
    httpx.post("https://api.example.com/v1/invoices", json=invoice, auth=auth)

:class:`ApiSigner` adds ``Date``, the company header, ``Content-Digest`` (RFC 9530)
when there is a body, and ``Signature-Input``/``Signature`` with a fresh 256-bit nonce
and a short ``created``/``expires`` window. :func:`sign_message` does the same for
any HTTP client, given the request's parts.
"""

from __future__ import annotations

import base64
import email.utils
import secrets
import time
from collections.abc import Callable, Generator, Sequence

import httpx

from ..errors import ConfigError
from .components import Component, Message, SignatureParams, signature_base
from .digest import content_digest
from .keys import SigningKey, algorithm_of, sign_base

__all__ = ["ApiSigner", "sign_message"]

DEFAULT_COMPONENTS = ("@method", "@target-uri", "date")


def sign_message(
    message: Message,
    *,
    key_id: str,
    key: SigningKey,
    label: str = "sig1",
    components: Sequence[str] = DEFAULT_COMPONENTS,
    created: int,
    expires: int | None = None,
    nonce: str | None = None,
    tag: str | None = None,
    include_alg: bool = True,
) -> tuple[str, str]:
    """``(Signature-Input, Signature)`` field values for ``message``.

    The covered headers must already be in ``message.headers``.
    """
    params = SignatureParams.build(
        [Component.of(c) for c in components],
        created=created,
        expires=expires,
        nonce=nonce if nonce is not None else secrets.token_urlsafe(32),
        keyid=key_id,
        alg=algorithm_of(key) if include_alg else None,
        tag=tag,
    )
    signature = sign_base(key, signature_base(message, params))
    return (
        f"{label}={params.serialize()}",
        f"{label}=:{base64.b64encode(signature).decode('ascii')}:",
    )


class ApiSigner(httpx.Auth):
    """``httpx`` authentication that signs every request (``httpx.Client`` and
    ``httpx.AsyncClient``: the flow does no I/O of its own).

    ``company`` fills the company header unless the request sets it itself (one
    client can then serve several companies by setting the header per call).
    """

    requires_request_body = True

    def __init__(
        self,
        key_id: str,
        key: SigningKey,
        *,
        company: str | None = None,
        company_header: str = "x-company-id",
        label: str = "sig1",
        lifetime: int = 60,
        digest: str = "sha-256",
        extra_components: Sequence[str] = (),
        tag: str | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not key_id:
            raise ConfigError("a key id is required", key="api_auth.key_id")
        if not 0 < lifetime <= 3600:
            raise ConfigError("must be between 1 and 3600 seconds", key="api_auth.lifetime")
        algorithm_of(key)
        content_digest(b"", digest)
        self.key_id = key_id
        self._key = key
        self.company = company
        self.company_header = company_header.lower()
        self.label = label
        self.lifetime = lifetime
        self.digest = digest
        self.extra_components = tuple(extra_components)
        self.tag = tag
        self.now = now

    def __repr__(self) -> str:
        return f"ApiSigner(key_id={self.key_id!r}, algorithm={algorithm_of(self._key)!r})"

    def sign_request(self, request: httpx.Request) -> None:
        """Add the signing headers to ``request`` in place."""
        now = self.now()
        headers = request.headers
        headers["Date"] = email.utils.formatdate(now, usegmt=True)
        if self.company is not None and self.company_header not in headers:
            headers[self.company_header] = self.company
        components = [*DEFAULT_COMPONENTS]
        if self.company_header in headers:
            components.append(self.company_header)
        body = request.content
        if body:
            headers["Content-Digest"] = content_digest(body, self.digest)
            components.append("content-digest")
        components.extend(c for c in self.extra_components if c not in components)
        url = request.url
        # The target URI as the server sees it: scheme, the Host header httpx sends
        # (default port omitted), and the raw path + query.
        target = f"{url.scheme}://{headers['host']}{url.raw_path.decode('ascii')}"
        message = Message(
            method=request.method,
            target_uri=target,
            headers=list(headers.items()),
            body=body,
        )
        created = int(now)
        signature_input, signature = sign_message(
            message,
            key_id=self.key_id,
            key=self._key,
            label=self.label,
            components=components,
            created=created,
            expires=created + self.lifetime,
            tag=self.tag,
        )
        headers["Signature-Input"] = signature_input
        headers["Signature"] = signature

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign_request(request)
        yield request
