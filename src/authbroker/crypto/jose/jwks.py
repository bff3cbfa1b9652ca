"""One issuer's JWKS, fetched from its configured ``jwks_uri`` only (JOSE-12).

The cache is sans-I/O: it yields its GET as an effect, and refetches on an unknown
``kid`` are single-flight (callers join the refetch in flight) and rate limited.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

from ...errors import (
    ConfigError,
    InvalidInput,
    ProviderUnavailable,
)
from ...http import HttpRequest
from ...kernel.effects import Gen, fetch
from .algorithms import (
    _allowed,
)
from .codec import _DECODER, _json_object
from .jws import _header_alg, _parse_jws, _verify_signature
from .keys import Key, KeyNotFound, KeySet
from .limits import (
    MAX_JWKS_BYTES,
    MAX_JWS_CHARS,
)

__all__ = ["JwksCache"]


def _max_age(cache_control: str) -> float | None:
    for part in cache_control.split(","):
        name, _, value = part.strip().partition("=")
        if name.lower() == "max-age" and value.isdigit():
            return float(value)
    return None


class JwksCache:
    """One issuer's JWKS, fetched from its configured ``jwks_uri`` only (JOSE-12).

    Keys are cached for ``ttl`` seconds (or the response's ``Cache-Control:
    max-age``, clamped to [``min_refetch_interval``, ``ttl``]). An unknown kid
    triggers one forced refetch, and forced refetches are spaced at least
    ``min_refetch_interval`` apart (R-07), whatever the traffic. A failed fetch
    leaves the cached keys in place until their TTL.

    The cache is sans-I/O: :meth:`key_for` and :meth:`verify_jwt` yield the GET
    (tag ``"jwks"``) and are driven by a runtime
    (:class:`authbroker.kernel.runtime.SyncRuntime` or ``AsyncRuntime``), or composed
    into a caller's routine with ``yield from``. Callers that meet an unknown kid while a
    forced refetch is in flight join it rather than being refused; the GET is marked
    ``shareable`` so the driver turns all of them into one network request.
    """

    def __init__(
        self,
        jwks_uri: str,
        *,
        ttl: float = 3600,
        min_refetch_interval: float = 60,
        now: Callable[[], float] = time.monotonic,
        timeout: float = 10.0,
        provider: str | None = None,
    ) -> None:
        parts = urlsplit(jwks_uri)
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            # JOSE-12 / FAPI2: JWKS only over TLS (plain HTTP only for loopback simulators).
            raise ConfigError("jwks_uri must use https", key="jwks_uri", code="insecure_url")
        self.jwks_uri = jwks_uri
        #: Named in errors about the documents served (a JWKS with private keys).
        self.provider = provider
        self.ttl = ttl
        self.min_refetch_interval = min_refetch_interval
        self.timeout = timeout
        self._now = now
        self._keys: KeySet | None = None
        self._expires_at = 0.0
        #: When the cached keys were fetched (``now`` clock), None before the first
        #: fetch: the health endpoint reports the cache's age without fetching.
        self.fetched_at: float | None = None
        self._last_forced: float | None = None
        self._forcing_since: float | None = None
        #: Number of JWKS fetches started (for tests and metrics).
        self.fetch_count = 0

    @property
    def fresh(self) -> bool:
        """Keys are cached and within their TTL (no fetch would be needed now)."""
        return self._keys is not None and self._now() < self._expires_at

    def set_keys(self, keyset: KeySet) -> None:
        """Prime the cache (tests, benchmarks, warm start)."""
        self._keys = keyset
        self.fetched_at = self._now()
        self._expires_at = self.fetched_at + self.ttl

    def _fetch(self) -> Gen[KeySet]:
        self.fetch_count += 1
        request = HttpRequest.get(
            self.jwks_uri,
            headers={"Accept": "application/json"},
            timeout=self.timeout,
            tag="jwks",
            shareable=True,
        )
        response = yield from fetch(request)
        if response.status != 200:
            raise ProviderUnavailable(
                "JWKS endpoint answered with an error",
                code="jwks_unavailable",
                details={"status": response.status},
            )
        if len(response.body) > MAX_JWKS_BYTES:
            raise InvalidInput("JWKS exceeds the size limit", code="jwks_too_large")
        try:
            document = _DECODER.decode(response.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise InvalidInput("JWKS is not valid JSON", code="bad_json") from exc
        keyset = KeySet.from_jwks(document, provider=self.provider)
        ttl = self.ttl
        max_age = _max_age(response.headers.get("cache-control", ""))
        if max_age is not None:
            ttl = min(self.ttl, max(self.min_refetch_interval, max_age))
        self._keys = keyset
        self.fetched_at = self._now()
        self._expires_at = self.fetched_at + ttl
        return keyset

    def key_for(self, header: Mapping[str, Any], *, use: str = "sig") -> Gen[Key]:
        """The key for a token header, fetching or refetching the JWKS as needed."""
        alg = header.get("alg")
        kid = header.get("kid")
        if not isinstance(alg, str) or (kid is not None and not isinstance(kid, str)):
            raise InvalidInput("token header has no valid alg/kid", code="bad_header")
        keys = self._keys
        fetched = False
        if keys is None or self._now() >= self._expires_at:
            keys = yield from self._fetch()
            fetched = True
        try:
            return keys._select(kid, alg, use, private=False)
        except KeyNotFound as exc:
            # Rotation: only an unknown kid (or, without kid, no fitting key at all)
            # justifies a refetch; a known kid with the wrong alg does not.
            if kid is not None and exc.code != "unknown_kid":
                raise
            if fetched:
                raise KeyNotFound("no key with this kid", code="unknown_kid") from exc
        now = self._now()
        joining = self._forcing_since is not None and now - self._forcing_since < self.timeout
        if (
            not joining
            and self._last_forced is not None
            and now - self._last_forced < self.min_refetch_interval
        ):
            raise KeyNotFound("no key with this kid", code="unknown_kid")
        # Callers arriving while a forced refetch is in flight join it: their GET is
        # marked shareable, so the driver sends one request for all of them.
        if not joining:
            self._forcing_since = now
        self._last_forced = now
        try:
            keys = yield from self._fetch()
        finally:
            self._forcing_since = None
        try:
            return keys._select(kid, alg, use, private=False)
        except KeyNotFound as exc:
            raise KeyNotFound("no key with this kid", code="unknown_kid") from exc

    def verify_jwt(
        self,
        token: str,
        *,
        algorithms: Collection[str],
        max_size: int = MAX_JWS_CHARS,
    ) -> Gen[tuple[dict[str, Any], dict[str, Any]]]:
        """Verify a JWT signed with one of this issuer's keys."""
        allowed = _allowed(algorithms, "algorithms")
        header, signing_input, payload, signature = _parse_jws(token, max_size)
        alg, kid = _header_alg(header, allowed)  # refuse before any fetch
        # The common case of every login, answered without entering a routine: the
        # cached JWKS is fresh and has the key. Anything else (first fetch, expiry,
        # rotation refetch, the error to raise) is key_for's to decide.
        key: Key | None = None
        keys = self._keys
        if keys is not None and self._now() < self._expires_at:
            try:
                key = keys._select(kid, alg, "sig", private=False)
            except KeyNotFound:
                key = None
        if key is None:
            key = yield from self.key_for(header)
        _verify_signature(key, alg, signing_input, signature)
        return header, _json_object(payload, "token payload")
