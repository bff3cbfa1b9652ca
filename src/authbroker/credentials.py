"""Email/password logins for the mobile apps.

A user sets up a mobile login (an e-mail address and a password) in the web UI
*after* a strong electronic identification, and the apps then log in with it to get
the tokens of :mod:`authbroker.tokens`. The password is the only factor of that
login, so:

* **Setting, changing and removing** it needs a strong session (LoA substantial or
  high, not a direct-link session) whose authentication is recent (PWD-01, ASVS
  7.5.1); a strong re-authentication replaces "enter your current password".
* **Password rules** follow NIST SP 800-63B-4 §3.1.1.2 (PWD-02, PWD-03): at least 15
  characters (single-factor), up to 1 024 accepted, counted in code points after
  Unicode NFKC normalisation, no composition rules, no truncation; refused when it
  is a common/breached password (the shipped list ``data/common-passwords.txt`` and
  trivial variations of its entries) or contains the e-mail local part, the user's
  names or the service name. The refusal says why.
* **Storage** is argon2id via argon2-cffi at OWASP's parameters (m = 19 MiB, t = 2,
  p = 1; configurable, never below an OWASP row unless explicitly marked insecure
  for tests) with a 16-byte salt; after a successful login a hash made with older
  parameters is replaced transparently (PWD-04).
* **Login throttling** (PWD-05, 63B-4 §3.2.2): per account, a few free failures, then
  an exponentially growing delay, then a temporary lock; an absolute cap of
  consecutive failures (100) that only a strong-session password change or
  :meth:`CredentialManager.unlock` clears; per client IP (IPv6 by /64) a cap of
  failures per window. Counters live in the shared :mod:`authbroker.store`
  (``incr``), so they hold across application instances.
* **No user enumeration** (PWD-06): an unknown address, a wrong password and a
  removed credential end in the same error (class, message, code), and an unknown
  address still runs one argon2 verification against a dummy hash made with the
  current parameters. Throttling is keyed by the address, so a non-existent account
  throttles exactly like a real one. Addresses are compared in one canonical form
  (NFKC + case folding) and forms that are not stable under case mapping (the
  dotless ``ı`` class of collisions) are refused.

:class:`CredentialManager` is blocking; :class:`AsyncCredentialManager` runs the
database and argon2 work in a worker thread and the throttle counters on an
:class:`~authbroker.store.base.AsyncStateStore`. The throttle logic is written once
as sans-I/O generators (``*_gen``) and driven by :func:`authbroker.flow.run_sync` /
:func:`~authbroker.flow.run_async`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ipaddress
import itertools
import logging
import re
import secrets
import time
import unicodedata
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from .audit import AuditLog
from .errors import (
    AccessDenied,
    ConfigError,
    InsufficientLoa,
    InvalidInput,
    Locked,
    RateLimited,
)
from .flow import (
    Gen,
    run_async,
    run_sync,
    store_delete,
    store_get,
    store_incr,
    store_put,
    store_put_if_absent,
)
from .store.base import AsyncStateStore, StateStore
from .tokens import TokenIssuer, TokenPair

if TYPE_CHECKING:
    from .credential_store import CredentialRecord, CredentialStore, DeviceRecord
    from .sessions import Session

__all__ = [
    "Argon2Params",
    "AsyncCredentialManager",
    "Blocklist",
    "CredentialInfo",
    "CredentialManager",
    "PasswordPolicy",
    "ThrottlePolicy",
    "canonical_email",
    "normalize_password",
]

_log = logging.getLogger("authbroker.credentials")

#: Refused before any normalisation, so NFKC (which can expand text ~18x) and
#: hashing stay bounded whatever a client sends.
MAX_RAW_PASSWORD_CHARS: Final = 4096
MAX_EMAIL_CHARS: Final = 254  # RFC 5321 §4.5.3.1.3 path limit minus the brackets

# One error for every failed password login (PWD-06): same class, message and code.
_BAD_LOGIN_MESSAGE: Final = "email or password is incorrect"
_BAD_LOGIN_CODE: Final = "invalid_credentials"


def _bad_login() -> AccessDenied:
    return AccessDenied(_BAD_LOGIN_MESSAGE, code=_BAD_LOGIN_CODE)


# --- canonical forms ---------------------------------------------------------------------


def canonical_email(email: str) -> str:
    """NFKC + casefold; :class:`InvalidInput` ``email_invalid`` if unusable.

    The canonical form must be stable under a round trip through upper case: an
    address such as ``jöhn@gıthub.com`` (dotless ı) is refused rather than risking a
    collision with another address in some other layer (security requirements C22).
    """
    if not isinstance(email, str) or len(email) > 4 * MAX_EMAIL_CHARS:
        raise InvalidInput("e-mail address is not valid", code="email_invalid")
    canonical = unicodedata.normalize("NFKC", email.strip()).casefold()
    stable = unicodedata.normalize("NFKC", canonical.upper()).casefold()
    local, at, domain = canonical.rpartition("@")
    if (
        stable != canonical
        or not at
        or not local
        or "." not in domain.strip(".")
        or domain.startswith(".")
        or domain.endswith(".")
        or len(canonical) > MAX_EMAIL_CHARS
        or "@" in local
        or any(ch.isspace() or unicodedata.category(ch)[0] in "CZ" for ch in canonical)
    ):
        raise InvalidInput("e-mail address is not valid", code="email_invalid")
    return canonical


def normalize_password(password: str) -> str:
    """NFKC form of a password (63B-4 §3.1.1.2: normalise before hashing).

    :class:`InvalidInput` when it is not a string, is absurdly long or contains
    lone surrogates (it could not be encoded as UTF-8).
    """
    if not isinstance(password, str):
        raise InvalidInput("password must be text", code="password_invalid")
    if len(password) > MAX_RAW_PASSWORD_CHARS:
        raise InvalidInput("password is too long", code="password_too_long")
    normalized = unicodedata.normalize("NFKC", password)
    try:
        normalized.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput("password contains invalid characters", code="password_invalid") from exc
    return normalized


# --- blocklist ---------------------------------------------------------------------------

_SEPARATORS = re.compile(r"[\s._\-+,;:]+")
# Leading and trailing non-letters (Unicode letters: [^\W\d_]).
_AFFIX = re.compile(r"^([\W\d_]*)(.*?)([\W\d_]*)$", re.DOTALL)
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)
_KEYBOARD_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm", "qwertzuiop", "azertyuiop")


def _is_run(text: str) -> bool:
    """One repeated character, or consecutive code points up or down (``abcd``,
    ``9876``), also wrapping ``0123456789012``; or a slice of a keyboard row."""
    if len(text) <= 1:
        return True
    if len(set(text)) == 1:
        return True
    if text.isdigit():
        steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(text)}
        if steps in ({1}, {9}):
            return True
    diffs = {ord(b) - ord(a) for a, b in itertools.pairwise(text)}
    if diffs in ({1}, {-1}):
        return True
    return any(text in row or text in row[::-1] for row in _KEYBOARD_ROWS)


def _trivial_affix(text: str) -> bool:
    """Digits/symbols a person typically bolts onto a word: a run, a year, a short
    number, a little punctuation, or a combination of two of those."""
    if not text or _is_run(text) or _is_repeat(text):
        return True
    digits = "".join(ch for ch in text if ch.isdigit())
    others = "".join(ch for ch in text if not ch.isdigit())
    return (len(others) <= 3 or _is_run(others) or _is_repeat(others)) and (
        len(digits) <= 4 or _is_run(digits) or _is_repeat(digits)
    )


def _is_repeat(text: str) -> bool:
    """Made of one unit of at most half its length repeated (``abcabcabc``)."""
    n = len(text)
    return any(n % k == 0 and text[:k] * (n // k) == text for k in range(1, n // 2 + 1))


class Blocklist:
    """Whole-password blocklist (PWD-03) with the common manglings of its entries.

    An entry matches after NFKC + casefold, with separators removed, and with
    "leetspeak" undone; it also matches wrapped in trivial affixes
    (``Password123456789``, ``!!dragon2024!!``), repeated (``monkeymonkeymonkey``)
    or as two entries joined (``sunshinebaseball``). Passwords that are one long
    run (``123456789012345``, ``aaaaaaaaaaaaaaa``, keyboard rows) are refused too.
    """

    def __init__(self, words: Iterable[str]) -> None:
        self.words = frozenset(
            w for w in (unicodedata.normalize("NFKC", x).casefold().strip() for x in words) if w
        )
        self._joined = frozenset(_SEPARATORS.sub("", w) for w in self.words)
        self._max = max((len(w) for w in self._joined), default=0)

    @classmethod
    @functools.cache
    def default(cls) -> Blocklist:
        """The list shipped in ``authbroker/data/common-passwords.txt`` (loaded once)."""
        text = (
            resources.files("authbroker")
            .joinpath("data/common-passwords.txt")
            .read_text(encoding="utf-8")
        )
        return cls(line for line in text.splitlines() if line and not line.startswith("#"))

    def __len__(self) -> int:
        return len(self.words)

    def _word(self, text: str, *, min_len: int = 1) -> bool:
        if len(text) < min_len:
            return False
        return text in self._joined or text.translate(_LEET) in self._joined

    def _two_words(self, text: str) -> bool:
        if len(text) > 2 * self._max:
            return False
        for cut in range(3, len(text) - 2):
            if self._word(text[:cut], min_len=3) and self._word(text[cut:], min_len=3):
                return True
        return False

    def matches(self, password: str) -> bool:
        """Whether ``password`` (already NFKC) is a listed password or a trivial variant."""
        folded = password.casefold()
        if folded.strip() in self.words:
            return True
        joined = _SEPARATORS.sub("", folded)
        if not joined or _is_run(joined) or self._word(joined):
            return True
        if _is_repeat(joined):
            unit = next(
                joined[:k]
                for k in range(1, len(joined) // 2 + 1)
                if len(joined) % k == 0 and joined[:k] * (len(joined) // k) == joined
            )
            if len(unit) <= 4 or self._word(unit) or _is_run(unit):
                return True
        m = _AFFIX.match(joined)
        assert m is not None
        head, core, tail = m.groups()
        if _trivial_affix(head) and _trivial_affix(tail):
            if not core:
                return _is_run(head + tail) or _is_repeat(head + tail)
            if (
                self._word(core)
                or self._two_words(core)
                or _is_run(core)
                or (_is_repeat(core) and self._word(core[: len(core) // 2]))
            ):
                return True
        # A mangled stem with a number in the middle ("pass1234word") is left to the
        # length rule: the list targets what attackers try first.
        return self._two_words(joined)


# --- policy ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """NIST SP 800-63B-4 §3.1.1.2 password rules for a single-factor password.

    ``min_length`` defaults to 15 (single-factor) and may never go below 8;
    ``max_length`` is at least 64 and defaults to 1 024 code points (bounds the
    hashing cost). ``context_words`` names the service (always refused inside a
    password), the user's e-mail local part and names are added per check.
    """

    min_length: int = 15
    max_length: int = 1024
    blocklist: Blocklist | None = field(default=None, repr=False)
    context_words: tuple[str, ...] = ("authbroker",)
    #: Names and address parts shorter than this are not checked (``Li``, ``Bo``).
    min_context_length: int = 3

    def __post_init__(self) -> None:
        if self.min_length < 8:
            raise ConfigError(
                "minimum password length is never below 8", key="passwords.min_length"
            )
        if self.max_length < 64 or self.max_length < self.min_length:
            raise ConfigError(
                "maximum password length must be at least 64", key="passwords.max_length"
            )

    def _blocklist(self) -> Blocklist:
        return self.blocklist if self.blocklist is not None else Blocklist.default()

    def context(self, email: str | None, names: Iterable[str]) -> list[str]:
        """The context words for one user, case-folded."""
        words: list[str] = []
        for word in self.context_words:
            words.append(word)
        if email:
            local = email.rpartition("@")[0]
            words.append(local)
            words.extend(_SEPARATORS.split(local))
        for name in names:
            words.append(name)
            words.extend(_SEPARATORS.split(name))
        out: list[str] = []
        for word in words:
            folded = unicodedata.normalize("NFKC", word).casefold().strip()
            if len(folded) >= self.min_context_length and folded not in out:
                out.append(folded)
        return out

    def check(self, password: str, *, email: str | None = None, names: Iterable[str] = ()) -> str:
        """Return the NFKC password if acceptable, else :class:`InvalidInput` whose
        ``code`` says why: ``password_too_short``, ``password_too_long``,
        ``password_blocklisted``, ``password_contains_context``, ``password_invalid``."""
        normalized = normalize_password(password)
        length = len(normalized)  # code points (63B-4: each counts as one character)
        if length < self.min_length:
            raise InvalidInput(
                f"password must have at least {self.min_length} characters",
                code="password_too_short",
                details={"min_length": self.min_length},
            )
        if length > self.max_length:
            raise InvalidInput(
                f"password must have at most {self.max_length} characters",
                code="password_too_long",
                details={"max_length": self.max_length},
            )
        if not normalized.strip():
            raise InvalidInput("password cannot be only spaces", code="password_blocklisted")
        if self._blocklist().matches(normalized):
            raise InvalidInput(
                "this password is too common or was exposed in a breach; choose another",
                code="password_blocklisted",
            )
        folded = normalized.casefold()
        squeezed = _SEPARATORS.sub("", folded)
        for word in self.context(email, names):
            if word in folded or _SEPARATORS.sub("", word) in squeezed:
                raise InvalidInput(
                    "password must not contain your e-mail address, your name or the "
                    "name of the service",
                    code="password_contains_context",
                )
        return normalized


# --- hashing -----------------------------------------------------------------------------

#: OWASP Password Storage Cheat Sheet argon2id rows (memory KiB, iterations), p = 1.
OWASP_ARGON2_ROWS: Final = ((47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5))


@dataclass(frozen=True, slots=True)
class Argon2Params:
    """argon2id parameters; defaults are OWASP's m = 19 MiB, t = 2, p = 1 (PWD-04)."""

    time_cost: int = 2
    memory_cost: int = 19456  # KiB
    parallelism: int = 1
    hash_len: int = 32
    salt_len: int = 16
    #: Allow parameters below every OWASP row (tests only).
    insecure: bool = False

    def __post_init__(self) -> None:
        strong = any(self.memory_cost >= m and self.time_cost >= t for m, t in OWASP_ARGON2_ROWS)
        if not strong and not self.insecure:
            raise ConfigError(
                "argon2id parameters are below the OWASP minimum (m=19 MiB, t=2, p=1)",
                key="passwords.argon2",
            )
        if self.salt_len < 16 or self.hash_len < 16:
            raise ConfigError("argon2 salt and hash need at least 16 bytes", key="passwords.argon2")

    @classmethod
    def insecure_for_tests(cls, time_cost: int = 1, memory_cost: int = 64) -> Argon2Params:
        return cls(time_cost=time_cost, memory_cost=memory_cost, insecure=True)

    def hasher(self) -> PasswordHasher:
        return PasswordHasher(
            time_cost=self.time_cost,
            memory_cost=self.memory_cost,
            parallelism=self.parallelism,
            hash_len=self.hash_len,
            salt_len=self.salt_len,
            type=Type.ID,
        )


# --- throttling --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """Login throttling (PWD-05). Times in seconds.

    Per account: ``free_failures`` failures cost nothing; each further attempt must
    wait ``base_delay * 2**(failures - free_failures)`` (at most ``max_delay``) after
    the previous failure; ``lock_after`` failures lock the account for
    ``lock_duration``; ``hard_limit`` consecutive failures (63B-4 §3.2.2: never more
    than 100) lock it until a strong-session password change or unlock
    (``None`` disables). Per client IP: ``ip_max_failures`` per ``ip_window``.
    Attempts refused by the delay are not counted, so a victim cannot be locked
    out faster than the delays allow.
    """

    free_failures: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    lock_after: int = 10
    lock_duration: float = 15 * 60
    window: float = 3600.0
    hard_limit: int | None = 100
    hard_window: float = 30 * 24 * 3600.0
    ip_max_failures: int | None = 100
    ip_window: float = 3600.0

    def __post_init__(self) -> None:
        if self.hard_limit is not None and not 0 < self.hard_limit <= 100:
            raise ConfigError("hard_limit must be within 1..100", key="passwords.throttle")
        if not 0 <= self.free_failures < self.lock_after:
            raise ConfigError("need 0 <= free_failures < lock_after", key="passwords.throttle")

    def delay_after(self, failures: int) -> float:
        if failures < self.free_failures:
            return 0.0
        return float(min(self.base_delay * 2 ** (failures - self.free_failures), self.max_delay))


def _ip_bucket(client_ip: str | None) -> str | None:
    """The throttling bucket of a client address: IPv4 as is, IPv6 by /64."""
    if client_ip is None:
        return None
    try:
        addr = ipaddress.ip_address(client_ip.strip())
    except ValueError:
        return "invalid"
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


@dataclass(frozen=True, slots=True)
class _Attempt:
    account: str  # hash of the canonical (or folded) address: no address in keys
    ip: str | None


@dataclass(frozen=True, slots=True)
class _Reservation:
    """What :meth:`_Throttle.before_gen` reserved for one attempt (to settle or refund).

    ``gen`` is the account's counter generation: a success, a reset or a temporary
    lock starts a new one, so a late refund or failure of an attempt that began
    before lands in the old generation and cannot push the new counters below zero.
    """

    gen: int
    n: int  # this attempt's number among the generation's reserved failures
    total: int | None  # its number towards the hard cap (None: no hard cap)
    ip_key: str | None  # the per-IP counter it reserved on
    wrote_lock: bool  # it crossed ``lock_after`` and wrote the lock itself


class _Throttle:
    """Sans-I/O throttle routines over the StateStore primitives.

    Every limit is counted by reserving first (atomic ``incr``) and deciding on the
    value that reservation returned, so concurrent attempts can never all see the
    same "still under the limit" value (read-then-increment). Keys of an account:
    ``gen`` (the counter generation) and, per generation, ``fails`` (reserved
    failures), ``done`` (evaluated failures), ``last`` (time of the latest evaluated
    failure) and ``total`` (towards the hard cap); ``lock`` (temporary lock, until).
    """

    def __init__(self, policy: ThrottlePolicy, now: Callable[[], float]) -> None:
        self.policy = policy
        self.now = now

    @staticmethod
    def _k(attempt: _Attempt, what: str, gen: int | None = None) -> str:
        if gen is None:
            return f"pwd:acct:{attempt.account}:{what}"
        return f"pwd:acct:{attempt.account}:{gen}:{what}"

    @staticmethod
    def _ip_key(attempt: _Attempt) -> str:
        return f"pwd:ip:{attempt.ip}"

    def _gen(self, attempt: _Attempt) -> Gen[int]:
        raw = yield from store_get(self._k(attempt, "gen"))
        return int(raw) if raw else 0

    def _new_gen(self, attempt: _Attempt) -> Gen[int]:
        # Outlives every key of the generations it numbers (window, hard_window).
        return (yield from store_incr(self._k(attempt, "gen"), 2 * self.policy.hard_window))

    def before_gen(self, attempt: _Attempt) -> Gen[_Reservation]:
        """Refuse a throttled attempt, or reserve its place on every counter.

        Order: read-only refusals (hard cap, lock); then the per-IP reservation, the
        account reservation and its delay rule, the hard-cap reservation and, for the
        attempt that reaches ``lock_after``, the lock itself. A refusal at any step
        gives back what the earlier steps reserved, so nothing is evaluated and the
        counters are left as they were.
        """
        p, now = self.policy, self.now()
        gen = yield from self._gen(attempt)
        if p.hard_limit is not None:
            total = yield from store_get(self._k(attempt, "total", gen))
            if total is not None and int(total) >= p.hard_limit:
                raise _hard_locked()
        lock = yield from store_get(self._k(attempt, "lock"))
        if lock is not None:
            raise _temporarily_locked(float(lock) - now)
        ip_key: str | None = None
        if attempt.ip is not None and p.ip_max_failures is not None:
            ip_key = self._ip_key(attempt)
            ip_fails = yield from store_incr(ip_key, p.ip_window)
            if ip_fails > p.ip_max_failures:
                yield from store_incr(ip_key, p.ip_window, -1)
                raise RateLimited(
                    "too many attempts from this network; try again later",
                    code="too_many_attempts",
                    retry_after=p.ip_window,
                )
        fails_key = self._k(attempt, "fails", gen)
        n = yield from store_incr(fails_key, p.window)
        refused = yield from self._delay_refusal(attempt, gen, n - 1, now)
        if refused is not None:
            yield from store_incr(fails_key, p.window, -1)
            if ip_key is not None:
                yield from store_incr(ip_key, p.ip_window, -1)
            raise refused
        total_n: int | None = None
        if p.hard_limit is not None:
            total_key = self._k(attempt, "total", gen)
            total_n = yield from store_incr(total_key, p.hard_window)
            if total_n > p.hard_limit:
                yield from store_incr(total_key, p.hard_window, -1)
                yield from store_incr(fails_key, p.window, -1)
                if ip_key is not None:
                    yield from store_incr(ip_key, p.ip_window, -1)
                raise _hard_locked()
        res = _Reservation(gen, n, total_n, ip_key, False)
        if n >= p.lock_after:
            # This attempt's failure locks the account: the lock is written with the
            # reservation, so nothing else runs while its password is checked.
            until = repr(now + p.lock_duration).encode()
            if not (
                yield from store_put_if_absent(self._k(attempt, "lock"), until, p.lock_duration)
            ):
                yield from self.before_undo_gen(attempt, res)
                raise _temporarily_locked(p.lock_duration)
            res = _Reservation(gen, n, total_n, ip_key, True)
        return res

    def _delay_refusal(
        self, attempt: _Attempt, gen: int, prior: int, now: float
    ) -> Gen[RateLimited | None]:
        """Why reservation number ``prior + 1`` may not run now (None: it may).

        The first ``free_failures`` run freely. After them the policy allows one
        attempt per delay after the *previous failure*, so an attempt runs only when
        every earlier reservation has been evaluated (``done == prior``: none still in
        flight) and the delay since the latest failure has passed. Of a burst released
        together at most one attempt is therefore evaluated, whatever the timing.
        """
        p = self.policy
        if prior < p.free_failures:
            return None
        delay = p.delay_after(prior)
        done_raw = yield from store_get(self._k(attempt, "done", gen))
        last_raw = yield from store_get(self._k(attempt, "last", gen))
        done = int(done_raw) if done_raw else 0
        if done != prior or (prior > 0 and last_raw is None):
            # An earlier attempt is still being evaluated: its failure sets the clock.
            return RateLimited(
                "too many attempts; try again later",
                code="too_many_attempts",
                retry_after=max(1.0, delay),
            )
        waited = now - float(last_raw) if last_raw is not None else delay
        if waited < delay:
            return RateLimited(
                "too many attempts; try again later",
                code="too_many_attempts",
                retry_after=max(1.0, delay - waited),
            )
        return None

    def before_undo_gen(self, attempt: _Attempt, res: _Reservation) -> Gen[None]:
        """Give back every reservation of an attempt that was not evaluated."""
        p = self.policy
        if res.wrote_lock:
            yield from store_delete(self._k(attempt, "lock"))
        if res.total is not None:
            yield from store_incr(self._k(attempt, "total", res.gen), p.hard_window, -1)
        yield from store_incr(self._k(attempt, "fails", res.gen), p.window, -1)
        if res.ip_key is not None:
            yield from store_incr(res.ip_key, p.ip_window, -1)

    def failed_gen(self, attempt: _Attempt, res: _Reservation) -> Gen[str | None]:
        """Record an evaluated failure; return ``"temporary"``/``"hard"`` on a lockout.

        The counters were already taken by :meth:`before_gen`; this marks the
        reservation evaluated (``done``) and sets the time the next delay runs from.
        """
        p, now = self.policy, self.now()
        # ``last`` before ``done``: whoever sees this failure counted in ``done`` (read
        # first by :meth:`_delay_refusal`) also sees its time, never an older one.
        yield from store_put(self._k(attempt, "last", res.gen), repr(now).encode(), p.window)
        yield from store_incr(self._k(attempt, "done", res.gen), p.window)
        locked: str | None = None
        if p.hard_limit is not None and res.total == p.hard_limit:
            locked = "hard"
        if res.wrote_lock:
            until = now + p.lock_duration
            yield from store_put(self._k(attempt, "lock"), repr(until).encode(), p.lock_duration)
            # After the lock the free failures start again, in a new generation; the
            # hard-cap count is carried over (consecutive failures, 63B-4 §3.2.2).
            gen = yield from self._new_gen(attempt)
            if res.total is not None:
                yield from store_incr(self._k(attempt, "total", gen), p.hard_window, res.total)
            locked = locked or "temporary"
        return locked

    def reset_gen(self, attempt: _Attempt) -> Gen[None]:
        """Forget the account's failures and lock (password change, unlock)."""
        yield from self._new_gen(attempt)
        yield from store_delete(self._k(attempt, "lock"))

    def succeeded_gen(self, attempt: _Attempt, res: _Reservation) -> Gen[None]:
        """A right password: not a failure for the IP; the account starts afresh."""
        if res.ip_key is not None:
            yield from store_incr(res.ip_key, self.policy.ip_window, -1)
        yield from self._new_gen(attempt)
        if res.wrote_lock:
            yield from store_delete(self._k(attempt, "lock"))


def _hard_locked() -> Locked:
    return Locked(
        "too many failed attempts; set a new password in the web service",
        code="account_locked",
    )


def _temporarily_locked(remaining: float) -> Locked:
    return Locked(
        "too many failed attempts; try again later",
        code="temporarily_locked",
        retry_after=max(1.0, remaining),
    )


def _account_key(email: str) -> str:
    try:
        ident = canonical_email(email)
    except InvalidInput:
        # Still throttled (and hashed), just never found.
        ident = unicodedata.normalize("NFKC", str(email)[: 4 * MAX_EMAIL_CHARS]).casefold()
    return hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:40]


# --- the manager -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CredentialInfo:
    """What the web UI may show about a user's mobile login."""

    user_id: str
    email: str
    created_at: float
    changed_at: float


def _device_name(device: str | None) -> str:
    if device is None:
        return "unnamed device"
    if not isinstance(device, str):
        raise InvalidInput("device name must be text", code="bad_device")
    text = unicodedata.normalize("NFKC", device[:512])
    clean = "".join(ch if ch.isprintable() else " " for ch in text)
    clean = " ".join(clean.split())[:128]
    return clean or "unnamed device"


def _names(session: Session) -> list[str]:
    ident: Mapping[str, Any] = session.identity or {}
    return [str(v) for k in ("given_name", "family_name") if (v := ident.get(k))]


class _Core:
    """Everything except running the throttle routines: shared by sync and async."""

    def __init__(
        self,
        store: CredentialStore,
        issuer: TokenIssuer,
        *,
        policy: PasswordPolicy | None,
        argon2: Argon2Params | None,
        throttle: ThrottlePolicy | None,
        reauth_max_age: float | None,
        audit: AuditLog | None,
        notify: Callable[[str, str], None] | None,
        now: Callable[[], float],
    ) -> None:
        self.store = store
        self.issuer = issuer
        self.policy = policy or PasswordPolicy()
        self.params = argon2 or Argon2Params()
        self.hasher = self.params.hasher()
        self.throttle = _Throttle(throttle or ThrottlePolicy(), now)
        self.reauth_max_age = reauth_max_age
        self.audit = audit or issuer.audit
        self.notify_hook = notify
        self.now = now
        # Verified against for unknown addresses, so they cost one argon2 run too.
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(24))

    # --- sessions and hooks -----------------------------------------------------------

    def require_strong(self, session: Session, *, recent: bool) -> None:
        if not session.is_strong:
            raise InsufficientLoa(
                "managing the mobile password needs a strong identification",
                code="step_up",
            )
        too_old = (
            recent
            and self.reauth_max_age is not None
            and self.now() - session.created_at > self.reauth_max_age
        )
        if too_old:
            raise InsufficientLoa(
                "please identify yourself again to manage the mobile password",
                code="reauthentication_required",
            )

    def notify(self, event: str, user_id: str) -> None:
        """PWD-07 hook: (event, account id); never the address or the password."""
        if self.notify_hook is None:
            return
        try:
            self.notify_hook(event, user_id)
        except Exception:  # a failing notifier must not undo a password change
            _log.exception("credential notification hook failed")

    # --- enrollment and changes (blocking parts) --------------------------------------

    def enroll(self, session: Session, email: str, password: str) -> CredentialInfo:
        self.require_strong(session, recent=True)
        canonical = canonical_email(email)
        normalized = self.policy.check(password, email=canonical, names=_names(session))
        now = self.now()
        self.store.put_credential(session.user, canonical, self.hasher.hash(normalized), now)
        self.audit.emit("credential.enrolled", "success", subject=session.user)
        self.notify("credential.enrolled", session.user)
        return CredentialInfo(session.user, canonical, now, now)

    def active(self, user_id: str) -> CredentialRecord:
        cred = self.store.credential_by_user(user_id)
        if cred is None or cred.status != "active" or cred.email is None:
            raise InvalidInput("no mobile password is set", code="not_enrolled")
        return cred

    def change(self, session: Session, new_password: str) -> _Attempt:
        self.require_strong(session, recent=True)
        cred = self.active(session.user)
        normalized = self.policy.check(new_password, email=cred.email, names=_names(session))
        self.store.set_password_hash(session.user, self.hasher.hash(normalized), self.now())
        # TOK-03 / RFC 9700 §4.14: a password change ends every mobile login.
        self.issuer.revoke_user(session.user, reason="password_changed")
        self.audit.emit("credential.changed", "success", subject=session.user)
        self.notify("credential.changed", session.user)
        return _Attempt(_account_key(cred.email or ""), None)

    def remove(self, session: Session) -> _Attempt:
        self.require_strong(session, recent=True)
        cred = self.active(session.user)
        self.store.remove_credential(session.user, self.now())
        self.issuer.revoke_user(session.user, reason="credential_removed")
        self.store.revoke_all_devices(session.user, self.now())
        self.audit.emit("credential.removed", "success", subject=session.user)
        self.notify("credential.removed", session.user)
        return _Attempt(_account_key(cred.email or ""), None)

    def info(self, session: Session) -> CredentialInfo | None:
        self.require_strong(session, recent=False)
        cred = self.store.credential_by_user(session.user)
        if cred is None or cred.status != "active" or cred.email is None:
            return None
        return CredentialInfo(cred.user_id, cred.email, cred.created_at, cred.changed_at)

    def unlock_attempt(self, session: Session) -> _Attempt:
        self.require_strong(session, recent=False)
        cred = self.active(session.user)
        return _Attempt(_account_key(cred.email or ""), None)

    def list_devices(self, session: Session) -> list[DeviceRecord]:
        self.require_strong(session, recent=False)
        return self.store.list_devices(session.user)

    def revoke_device(self, session: Session, device_id: str) -> bool:
        self.require_strong(session, recent=False)
        if not isinstance(device_id, str) or not device_id or len(device_id) > 64:
            return False
        done = self.store.revoke_device(session.user, device_id, self.now())
        if done:
            self.audit.emit(
                "token.revoked",
                "info",
                subject=session.user,
                reason="device_revoked",
                details={"device": device_id},
            )
        return done

    # --- login (blocking parts) -------------------------------------------------------

    def login_attempt(self, email: str, client_ip: str | None) -> _Attempt:
        return _Attempt(_account_key(email), _ip_bucket(client_ip))

    def verify(self, email: str, password: str) -> tuple[CredentialRecord | None, str | None]:
        """(credential if ``password`` is right, id of the account the address names).

        One argon2 run in every case. The account id of a failed attempt is for the
        audit log and the lockout notice only, never for the caller's answer.
        """
        try:
            canonical: str | None = canonical_email(email)
        except InvalidInput:
            canonical = None
        try:
            normalized: str | None = normalize_password(password)
        except InvalidInput:
            normalized = None
        if normalized is not None and len(normalized) > self.policy.max_length:
            normalized = None
        cred = self.store.credential_by_email(canonical) if canonical is not None else None
        stored = cred.password_hash if cred is not None else None
        known = cred.user_id if cred is not None else None
        # Same work for an unknown address, a removed credential and an unusable
        # password: verify against the dummy hash (PWD-06).
        usable = stored is not None and normalized is not None
        target = stored if usable and stored is not None else self._dummy_hash
        try:
            self.hasher.verify(target, normalized if normalized is not None else "-")
            ok = usable
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or cred is None or stored is None or normalized is None:
            return None, known
        if self.hasher.check_needs_rehash(stored):
            # PWD-04: parameters changed since this hash was made; only replace it
            # if nobody changed the password meanwhile.
            self.store.set_password_hash(
                cred.user_id, self.hasher.hash(normalized), self.now(), expected_old=stored
            )
        return cred, known

    def complete(self, cred: CredentialRecord, device: str, scope: str | None) -> TokenPair:
        device_id = secrets.token_urlsafe(16)
        return self.issuer.issue(cred.user_id, device_id=device_id, scope=scope, device_name=device)

    def audit_failure(self, client_ip: str | None, reason: str, user: str | None = None) -> None:
        self.audit.emit("login.failed", "failure", subject=user, client_ip=client_ip, reason=reason)

    def audit_lockout(self, client_ip: str | None, kind: str, user: str | None) -> None:
        self.audit.emit("lockout", "info", subject=user, client_ip=client_ip, reason=f"{kind}_lock")
        if user is not None:
            self.notify("lockout", user)


class CredentialManager:
    """Blocking mobile credential service (WSGI apps, CLI, tests).

    ``state`` holds the throttle counters (share it between instances: Redis or
    SQLite); ``store`` is the durable credential database; ``issuer`` issues the
    tokens a successful login returns.
    """

    def __init__(
        self,
        store: CredentialStore,
        state: StateStore,
        issuer: TokenIssuer,
        *,
        policy: PasswordPolicy | None = None,
        argon2: Argon2Params | None = None,
        throttle: ThrottlePolicy | None = None,
        reauth_max_age: float | None = 15 * 60,
        audit: AuditLog | None = None,
        notify: Callable[[str, str], None] | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.core = _Core(
            store,
            issuer,
            policy=policy,
            argon2=argon2,
            throttle=throttle,
            reauth_max_age=reauth_max_age,
            audit=audit,
            notify=notify,
            now=now,
        )

    @property
    def store(self) -> CredentialStore:
        return self.core.store

    @property
    def issuer(self) -> TokenIssuer:
        return self.core.issuer

    def enroll(self, session: Session, email: str, password: str) -> CredentialInfo:
        """Set up the mobile login of ``session.user`` (strong, recent session only)."""
        return self.core.enroll(session, email, password)

    def change_password(self, session: Session, new_password: str) -> None:
        """Replace the password; revokes every refresh-token family and clears locks."""
        attempt = self.core.change(session, new_password)
        run_sync(self.core.throttle.reset_gen(attempt), None, self.state)

    def remove(self, session: Session) -> None:
        """Remove the mobile login, its devices and token families."""
        attempt = self.core.remove(session)
        run_sync(self.core.throttle.reset_gen(attempt), None, self.state)

    def credential(self, session: Session) -> CredentialInfo | None:
        return self.core.info(session)

    def unlock(self, session: Session) -> None:
        """Clear the throttle and lock of the user's own account (strong session)."""
        attempt = self.core.unlock_attempt(session)
        run_sync(self.core.throttle.reset_gen(attempt), None, self.state)

    def list_devices(self, session: Session) -> list[DeviceRecord]:
        return self.core.list_devices(session)

    def revoke_device(self, session: Session, device_id: str) -> bool:
        """Revoke a device of the session's user and its token families."""
        return self.core.revoke_device(session, device_id)

    def login(
        self,
        email: str,
        password: str,
        device: str | None,
        client_ip: str | None,
        *,
        scope: str | Collection[str] | None = None,
    ) -> TokenPair:
        """Password login from a mobile app; a new device and token family.

        Every failure on the credentials is :class:`AccessDenied`
        ``invalid_credentials``; throttling is :class:`RateLimited` /
        :class:`Locked` (identical for existing and unknown addresses).
        """
        core = self.core
        name = _device_name(device)
        attempt = core.login_attempt(email, client_ip)
        try:
            res = run_sync(core.throttle.before_gen(attempt), None, self.state)
        except RateLimited as exc:
            core.audit_failure(client_ip, exc.code)
            raise
        try:
            cred, known = core.verify(email, password)
        except Exception:
            # Not evaluated (database or store failure): give the reservations back.
            run_sync(core.throttle.before_undo_gen(attempt, res), None, self.state)
            raise
        if cred is None:
            lock = run_sync(core.throttle.failed_gen(attempt, res), None, self.state)
            core.audit_failure(client_ip, _BAD_LOGIN_CODE, known)
            if lock is not None:
                core.audit_lockout(client_ip, lock, known)
            raise _bad_login()
        run_sync(core.throttle.succeeded_gen(attempt, res), None, self.state)
        pair = core.complete(cred, name, _scope(scope))
        core.audit.emit("login.succeeded", "success", subject=cred.user_id, client_ip=client_ip)
        return pair


def _scope(scope: str | Collection[str] | None) -> str | None:
    if scope is None or isinstance(scope, str):
        return scope
    return " ".join(scope)


class AsyncCredentialManager:
    """asyncio mobile credential service: the same rules as :class:`CredentialManager`.

    Database and argon2 work run in a worker thread (:func:`asyncio.to_thread`);
    the throttle counters go to an :class:`AsyncStateStore`.
    """

    def __init__(
        self,
        store: CredentialStore,
        state: AsyncStateStore,
        issuer: TokenIssuer,
        *,
        policy: PasswordPolicy | None = None,
        argon2: Argon2Params | None = None,
        throttle: ThrottlePolicy | None = None,
        reauth_max_age: float | None = 15 * 60,
        audit: AuditLog | None = None,
        notify: Callable[[str, str], None] | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.core = _Core(
            store,
            issuer,
            policy=policy,
            argon2=argon2,
            throttle=throttle,
            reauth_max_age=reauth_max_age,
            audit=audit,
            notify=notify,
            now=now,
        )

    async def enroll(self, session: Session, email: str, password: str) -> CredentialInfo:
        return await asyncio.to_thread(self.core.enroll, session, email, password)

    async def change_password(self, session: Session, new_password: str) -> None:
        attempt = await asyncio.to_thread(self.core.change, session, new_password)
        await run_async(self.core.throttle.reset_gen(attempt), None, self.state)

    async def remove(self, session: Session) -> None:
        attempt = await asyncio.to_thread(self.core.remove, session)
        await run_async(self.core.throttle.reset_gen(attempt), None, self.state)

    async def credential(self, session: Session) -> CredentialInfo | None:
        return await asyncio.to_thread(self.core.info, session)

    async def unlock(self, session: Session) -> None:
        attempt = await asyncio.to_thread(self.core.unlock_attempt, session)
        await run_async(self.core.throttle.reset_gen(attempt), None, self.state)

    async def list_devices(self, session: Session) -> list[DeviceRecord]:
        return await asyncio.to_thread(self.core.list_devices, session)

    async def revoke_device(self, session: Session, device_id: str) -> bool:
        return await asyncio.to_thread(self.core.revoke_device, session, device_id)

    async def login(
        self,
        email: str,
        password: str,
        device: str | None,
        client_ip: str | None,
        *,
        scope: str | Collection[str] | None = None,
    ) -> TokenPair:
        core = self.core
        name = _device_name(device)
        attempt = core.login_attempt(email, client_ip)
        try:
            res = await run_async(core.throttle.before_gen(attempt), None, self.state)
        except RateLimited as exc:
            core.audit_failure(client_ip, exc.code)
            raise
        try:
            cred, known = await asyncio.to_thread(core.verify, email, password)
        except Exception:
            # Not evaluated (database or store failure): give the reservations back.
            await run_async(core.throttle.before_undo_gen(attempt, res), None, self.state)
            raise
        if cred is None:
            lock = await run_async(core.throttle.failed_gen(attempt, res), None, self.state)
            core.audit_failure(client_ip, _BAD_LOGIN_CODE, known)
            if lock is not None:
                core.audit_lockout(client_ip, lock, known)
            raise _bad_login()
        await run_async(core.throttle.succeeded_gen(attempt, res), None, self.state)
        pair = await asyncio.to_thread(core.complete, cred, name, _scope(scope))
        core.audit.emit("login.succeeded", "success", subject=cred.user_id, client_ip=client_ip)
        return pair
