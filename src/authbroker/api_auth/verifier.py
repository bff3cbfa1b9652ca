"""Verifying signed API requests: RFC 9421 signature, RFC 9530 body digest, a
single-use nonce, then the two access levels (user, company).

The verification is one routine (:meth:`ApiVerifier.authenticate`) that yields store
operations and calls into the application's resolvers with the kernel's ``call``
effect (:mod:`authbroker.kernel`); :meth:`ApiVerifier.verify_sync` and
:meth:`ApiVerifier.verify_async` run it in a ``SyncRuntime`` / ``AsyncRuntime``, so
the WSGI and ASGI adapters share every check. The order of the checks is deliberate:

1. shape and size of ``Signature-Input``/``Signature`` before any parsing;
2. parameters, required coverage (RFC 9421 §7.2.1) and the time window (§7.2.2),
   cheap checks that need no key;
3. the key record (unknown, revoked, retired), then ``alg`` must equal the key's
   algorithm (§3.2 step 6, §7.3.6);
4. the signature over the rebuilt signature base, then the body against
   ``Content-Digest``;
5. the nonce is consumed only now, so nobody without the key can burn nonces;
6. the user must exist and be active, the credential must be authorised for the
   company named in the request.

Every outcome is audited (``api.authenticated`` / ``api.denied``).
"""

from __future__ import annotations

import email.utils
import hashlib
import inspect
import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeAlias

from ..audit import AuditLog
from ..errors import (
    AlreadyUsed,
    AuthBrokerError,
    ConfigError,
    Expired,
    InvalidInput,
    InvalidSignature,
    ProviderUnavailable,
)
from ..kernel import AsyncRuntime, Gen, SyncRuntime, call
from ..store.base import AsyncStateStore, PutIfAbsent, StateStore
from . import sfv
from .components import Message, SignatureParams, signature_base
from .digest import check_content_digest
from .errors import CompanyDenied, KeyRevoked, UserInactive
from .keys import IntegrationCredential, KeyResolver, ResolvedKey, verify_base

__all__ = [
    "ApiPrincipal",
    "ApiVerifier",
    "CompanyResolver",
    "SignaturePolicy",
    "UserResolver",
]

#: ``users(user_id)``: True = active, False = inactive, None = no such user. May be async.
UserResolver: TypeAlias = Callable[[str], "bool | Awaitable[bool | None] | None"]
#: ``companies(credential, company_id)``: may this credential act for the company?
CompanyResolver: TypeAlias = Callable[[IntegrationCredential, str], "bool | Awaitable[bool]"]

_MAX_SIGNATURE_BYTES = 512
_MAX_FIELD_LINES = 8


@dataclass(frozen=True, slots=True)
class SignaturePolicy:
    """What a request must carry to be accepted.

    ``required_components`` are always required; ``company_header`` is added to them,
    and ``content-digest`` too whenever the request has a body. ``@target-uri`` is
    required instead of ``@authority``+``@path``+``@query``: one component binds
    scheme, host, path and query together, so no part can be left out by mistake.
    ``label`` picks the signature when a request carries several (e.g. one added by
    a proxy); without it exactly one signature is expected. ``tag`` (RFC 9421 §2.3)
    is an application-specific value the signature must carry, so signatures made for
    another protocol using the same keys cannot be replayed here.
    """

    company_header: str = "x-company-id"
    required_components: tuple[str, ...] = ("@method", "@target-uri", "date")
    max_skew: float = 30.0
    max_age: float = 300.0
    label: str | None = None
    tag: str | None = None
    max_header_bytes: int = 8192
    max_signatures: int = 4
    max_components: int = 24
    min_nonce_length: int = 16
    max_nonce_length: int = 128
    max_company_length: int = 128
    nonce_prefix: str = "api:nonce:"

    def __post_init__(self) -> None:
        if not self.company_header or self.company_header != self.company_header.lower():
            raise ConfigError("must be a lowercase header name", key="api_auth.company_header")
        if not 0 <= self.max_skew <= 600:
            raise ConfigError("must be between 0 and 600 seconds", key="api_auth.max_skew")
        if not 0 < self.max_age <= 3600:
            raise ConfigError("must be between 1 and 3600 seconds", key="api_auth.max_age")
        if self.min_nonce_length < 16:
            raise ConfigError("nonces need at least 16 characters", key="api_auth.nonce")

    def required(self, has_body: bool) -> tuple[str, ...]:
        names = [*self.required_components, self.company_header]
        if has_body:
            names.append("content-digest")
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True, slots=True)
class ApiPrincipal:
    """Who made an authenticated API call, and for which company."""

    user_id: str
    company_id: str
    credential_id: str
    partner_id: str
    key_id: str
    algorithm: str
    label: str
    created: int
    expires: int | None = None


def _resolver_failed(exc: Exception) -> AuthBrokerError:
    """An application resolver's own authbroker error passes; anything else it raises
    (its database is down...) becomes a typed 503, never a bare exception."""
    if isinstance(exc, AuthBrokerError):
        return exc
    return ProviderUnavailable("an application resolver failed", code="resolver_failed")


class _Guarded:
    """The awaitable an async resolver returned, with its failures mapped like a sync
    resolver's; ``close`` closes it when a runtime refuses to await it."""

    def __init__(self, inner: Awaitable[Any]) -> None:
        self.inner = inner

    def __await__(self) -> Generator[Any, Any, Any]:
        try:
            return (yield from self.inner.__await__())
        except Exception as exc:
            raise _resolver_failed(exc) from exc

    def close(self) -> None:
        if inspect.iscoroutine(self.inner):
            self.inner.close()  # no "coroutine was never awaited" warning


def _invoke(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        result = fn(*args)
    except Exception as exc:
        raise _resolver_failed(exc) from exc
    return _Guarded(result) if inspect.isawaitable(result) else result


def _resolve(fn: Callable[..., Any], *args: Any) -> Gen[Any]:
    """Call an application resolver (sync or async) through the runtime.

    The resolver's own failures arrive as authbroker errors (:func:`_invoke`); any
    other exception here comes from the runtime refusing the call, which happens
    only when an async resolver is given to the blocking verifier.
    """
    try:
        return (yield from call(_invoke, fn, *args))
    except AuthBrokerError:
        raise
    except Exception as exc:
        raise ConfigError(
            "an async resolver cannot serve the sync verifier", code="async_resolver"
        ) from exc


class ApiVerifier:
    """Authenticates signed server-to-server requests (see the module docstring).

    ``keys`` resolves a key id to its key and integration credential,
    ``users`` says whether a user exists and is active, ``companies`` whether a
    credential may act for a company (the credential's static ``companies`` set is
    checked too). With neither a static set nor a resolver, every company is denied.
    """

    def __init__(
        self,
        *,
        keys: KeyResolver,
        users: UserResolver,
        companies: CompanyResolver | None = None,
        policy: SignaturePolicy | None = None,
        audit: AuditLog | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self.users = users
        self.companies = companies
        self.policy = policy or SignaturePolicy()
        self.audit = audit
        self.now = now

    # --- runners --------------------------------------------------------------------

    def verify_sync(self, message: Message, store: StateStore) -> ApiPrincipal:
        """Authenticate ``message`` with blocking I/O; ``store`` keeps the nonces."""
        return SyncRuntime(store=store).run(self.authenticate(message))

    async def verify_async(self, message: Message, store: AsyncStateStore) -> ApiPrincipal:
        """Authenticate ``message`` with asyncio; resolvers may be coroutine functions."""
        return await AsyncRuntime(store=store).run(self.authenticate(message))

    # --- the routine ------------------------------------------------------------------

    def authenticate(self, message: Message) -> Gen[ApiPrincipal]:
        """The sans-I/O verification; yields store operations and resolver calls."""
        seen: dict[str, str] = {}
        try:
            principal = yield from self._authenticate(message, seen)
        except AuthBrokerError as exc:
            if self.audit is not None:
                self.audit.emit(
                    "api.denied",
                    "failure",
                    subject=seen.get("user"),
                    reason=exc.code,
                    details={"error": type(exc).__name__, **seen},
                )
            raise
        if self.audit is not None:
            self.audit.emit(
                "api.authenticated",
                "success",
                subject=principal.user_id,
                details=dict(seen),
            )
        return principal

    def _authenticate(self, message: Message, seen: dict[str, str]) -> Gen[ApiPrincipal]:
        policy = self.policy
        label, params, signature = self._parse(message)
        seen["label"] = label

        keyid = params.get_str("keyid")
        created = params.get_int("created")
        expires = params.get_int("expires")
        nonce = params.get_str("nonce")
        alg = params.get_str("alg")
        if keyid is None or not 0 < len(keyid) <= 256:
            raise InvalidInput("the signature names no key", code="bad_parameter")
        if created is None:
            raise InvalidInput("the signature has no creation time", code="bad_parameter")
        if nonce is None or not policy.min_nonce_length <= len(nonce) <= policy.max_nonce_length:
            raise InvalidInput("the signature has no usable nonce", code="bad_nonce")
        if policy.tag is not None and params.get_str("tag") != policy.tag:
            raise InvalidInput("the signature is not for this API", code="wrong_tag")
        seen["kid"] = keyid

        self._check_coverage(message, params)
        now = self.now()
        self._check_time(message, created, expires, now)

        resolved = yield from _resolve(self.keys, keyid)
        if resolved is None:
            raise InvalidSignature("the signing key is not known", code="unknown_key")
        if not isinstance(resolved, ResolvedKey) or resolved.key.key_id != keyid:
            raise ConfigError("the key resolver returned a wrong record", code="bad_resolver")
        key, credential = resolved.key, resolved.credential
        if key.credential_id != credential.credential_id:
            raise ConfigError("the key resolver returned a wrong record", code="bad_resolver")
        seen.update(credential=credential.credential_id, partner=credential.partner_id)
        seen["user"] = credential.user_id
        if credential.revoked:
            raise KeyRevoked("the integration credential is revoked", code="credential_revoked")
        if key.revoked:
            raise KeyRevoked("the signing key is revoked")
        if key.not_before is not None and now + policy.max_skew < key.not_before:
            raise InvalidSignature("the signing key is not active yet", code="key_not_active")
        if key.not_after is not None and now >= key.not_after:
            raise Expired("the signing key was retired", code="key_expired")

        # RFC 9421 §3.2 step 6 and §7.3.6: the key record fixes the algorithm.
        algorithm = key.algorithm
        seen["alg"] = algorithm
        if alg is not None and alg != algorithm:
            raise InvalidSignature(
                "the signature algorithm does not match the key", code="alg_mismatch"
            )

        base = signature_base(message, params)
        verify_base(key.key, base, signature)
        if message.header("content-digest") is not None and "content-digest" in params.names():
            check_content_digest(message.header("content-digest") or "", message.body)

        company = self._company(message)
        seen["company"] = company

        # §7.2.2: the nonce is single-use for as long as the signature could be accepted.
        accept_until = created + policy.max_age
        if expires is not None:
            accept_until = min(accept_until, expires)
        ttl = max(accept_until + policy.max_skew - now, 1.0) + 1.0
        digest = hashlib.sha256(f"{credential.credential_id}\x00{nonce}".encode()).hexdigest()
        fresh = yield PutIfAbsent(policy.nonce_prefix + digest, b"1", ttl)
        if not fresh:
            raise AlreadyUsed("the request was already used", code="nonce_replayed")

        active = yield from _resolve(self.users, credential.user_id)
        if active is None:
            raise UserInactive("the credential's user does not exist", code="user_unknown")
        if active is not True:
            if active is False:
                raise UserInactive("the credential's user is not active")
            raise ConfigError("the user resolver must return True, False or None")

        if credential.companies is not None and company not in credential.companies:
            raise CompanyDenied("the credential is not authorised for this company")
        if self.companies is not None:
            allowed = yield from _resolve(self.companies, credential, company)
            if allowed is not True:
                raise CompanyDenied("the credential is not authorised for this company")
        elif credential.companies is None:
            raise CompanyDenied(
                "no company policy covers this credential", code="no_company_policy"
            )

        return ApiPrincipal(
            user_id=credential.user_id,
            company_id=company,
            credential_id=credential.credential_id,
            partner_id=credential.partner_id,
            key_id=keyid,
            algorithm=algorithm,
            label=label,
            created=created,
            expires=expires,
        )

    # --- steps ------------------------------------------------------------------------

    def _parse(self, message: Message) -> tuple[str, SignatureParams, bytes]:
        policy = self.policy
        for name in ("signature-input", "signature"):
            lines = message.field_lines(name)
            if not lines:
                raise InvalidInput("the request is not signed", code="missing_signature")
            if len(lines) > _MAX_FIELD_LINES:
                raise InvalidInput("too many signature header lines", code="header_too_large")
        raw_input = message.header("signature-input") or ""
        raw_signature = message.header("signature") or ""
        limits = {"max_bytes": policy.max_header_bytes, "max_members": policy.max_signatures}
        inputs = sfv.parse_dictionary(raw_input, code="malformed_signature_input", **limits)
        signatures = sfv.parse_dictionary(raw_signature, code="malformed_signature", **limits)
        if policy.label is not None:
            label = policy.label
        elif len(inputs) == 1:
            label = next(iter(inputs))
        else:
            raise InvalidInput("expected exactly one signature", code="ambiguous_signature")
        if label not in inputs or label not in signatures:
            raise InvalidInput("the expected signature is missing", code="missing_signature")
        params = SignatureParams.from_member(inputs[label], max_components=policy.max_components)
        member = signatures[label]
        signature = sfv.item_bytes(member)
        if signature is None:
            raise InvalidInput("the signature is not a byte sequence", code="malformed_signature")
        if not 0 < len(signature) <= _MAX_SIGNATURE_BYTES:
            raise InvalidInput("the signature has an impossible length", code="malformed_signature")
        return label, params, signature

    def _check_coverage(self, message: Message, params: SignatureParams) -> None:
        # Only plain identifiers count: "content-digest";key="md5" covers less.
        covered = {c.name for c in params.components if not c.params}
        for name in self.policy.required(has_body=bool(message.body)):
            if name not in covered:
                raise InvalidInput(
                    "a required component is not signed",
                    code="missing_component",
                    details={"component": name},
                )

    def _check_time(self, message: Message, created: int, expires: int | None, now: float) -> None:
        policy = self.policy
        skew = policy.max_skew
        if created > now + skew:
            raise InvalidInput("the signature was created in the future", code="created_in_future")
        if expires is not None and expires <= created:
            raise InvalidInput("the signature expires before it was created", code="bad_parameter")
        if created + policy.max_age < now - skew:
            raise Expired("the signature is too old", code="signature_too_old")
        if expires is not None and expires < now - skew:
            raise Expired("the signature has expired", code="signature_expired")
        raw_date = message.header("date")
        if raw_date is not None:
            try:
                date = email.utils.parsedate_to_datetime(raw_date).timestamp()
            except (TypeError, ValueError, IndexError, OverflowError) as exc:
                raise InvalidInput("the Date header is malformed", code="bad_date") from exc
            if date > now + skew:
                raise InvalidInput("the Date header is in the future", code="bad_date")
            if date + policy.max_age < now - skew:
                raise Expired("the Date header is too old", code="stale_date")

    def _company(self, message: Message) -> str:
        lines = message.field_lines(self.policy.company_header)
        if len(lines) != 1:
            raise InvalidInput("the request must name exactly one company", code="bad_company")
        company = lines[0].strip(" \t")
        if not 0 < len(company) <= self.policy.max_company_length or not company.isprintable():
            raise InvalidInput("the company header is malformed", code="bad_company")
        return company
