"""Login throttling (PWD-05, NIST SP 800-63B-4 §3.2.2,
https://pages.nist.gov/800-63-4/sp800-63b.html): the policy values and the exact
reservation logic as routines over the StateStore's atomic programs.

The limits hold exactly under concurrency on every store because each counter is
reserved first (a ``Reserve`` guard) and the decision is taken on the value that
reservation returned, in the same program (``tests/engines/test_limits_attack.py``
pins this). A login costs the store few round trips
(``tests/engines/test_credentials_one_trip.py``): the per-IP ``incr``, one
reservation program (two beyond the free failures) and one settlement program.
"""

from __future__ import annotations

import hashlib
import ipaddress
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from ...errors import ConfigError, InvalidInput, Locked, RateLimited
from ...flow import store_incr
from ...kernel import Gen
from ...store.atomic import atomic
from ...store.base import AtomicResult, Delete, Get, Incr, Put, Require, Reserve, Step
from .policy import MAX_EMAIL_CHARS, canonical_email

__all__ = ["Attempt", "Reservation", "Throttle", "ThrottlePolicy", "account_key", "ip_bucket"]


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


def ip_bucket(client_ip: str | None) -> str | None:
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
class Attempt:
    account: str  # hash of the canonical (or folded) address: no address in keys
    ip: str | None


@dataclass(frozen=True, slots=True)
class Reservation:
    """What :meth:`Throttle.before_gen` reserved for one attempt (to settle or refund).

    ``gen`` is the account's counter generation: a success, a reset or a temporary
    lock starts a new one, and a settlement runs only in the generation it reserved
    in, so a late refund or failure cannot push the new counters below zero.
    """

    gen: int
    n: int  # this attempt's number among the generation's reserved failures
    total: int | None  # its number towards the hard cap (None: no hard cap)
    ip_key: str | None  # the per-IP counter it reserved on


class Throttle:
    """Sans-I/O throttle routines: each reservation and each settlement is one
    atomic store program (:mod:`authbroker.store.atomic`), the per-IP counter one
    ``incr`` of its own (another hash slot on a Redis Cluster).

    Keys of an account, all in one ``{hash tag}`` (one slot): ``gen`` (the counter
    generation), ``fails`` (reserved failures of the generation), ``busy`` (attempts
    reserved and not yet settled), ``next`` (epoch milliseconds before which the
    next attempt after the free failures may not run), ``total`` (towards the hard
    cap, kept across temporary locks) and ``lock`` (temporary lock, until).

    Every limit is counted by reserving first (a ``Reserve`` guard) and deciding on
    the value that reservation returned, inside one program, so concurrent attempts
    never all see the same "still under the limit" value.
    """

    def __init__(self, policy: ThrottlePolicy, now: Callable[[], float]) -> None:
        self.policy = policy
        self.now = now

    @staticmethod
    def _k(attempt: Attempt, what: str) -> str:
        return f"pwd:acct:{{{attempt.account}}}:{what}"

    @staticmethod
    def _ip_key(attempt: Attempt) -> str:
        return f"pwd:ip:{attempt.ip}"

    def _gate(self, attempt: Attempt, gen: int) -> Require:
        """Settlements apply only to the generation their attempt reserved in: a
        success, a lock or a reset starts a new one, whose counters a late
        settlement must not touch."""
        if gen == 0:
            return Require(self._k(attempt, "gen"), present=False)
        return Require(self._k(attempt, "gen"), equals=str(gen).encode("ascii"))

    def _new_gen(self, attempt: Attempt, *, total: bool) -> list[Step]:
        """Steps starting a new generation; ``total`` also forgets the hard-cap count."""
        # ``gen`` outlives every key of the generations it numbers (window, hard_window).
        steps: list[Step] = [Incr(self._k(attempt, "gen"), 2 * self.policy.hard_window)]
        steps += [Delete(self._k(attempt, what)) for what in ("fails", "busy", "next")]
        if total:
            steps.append(Delete(self._k(attempt, "total")))
        return steps

    def before_gen(self, attempt: Attempt) -> Gen[Reservation]:
        """Refuse a throttled attempt, or reserve its place on every counter.

        The per-IP reservation first (an address over its limit costs the account
        nothing), then the account program: the hard cap, the lock and, within the
        free failures, the count alone. An attempt beyond them runs a second program
        that also needs every earlier attempt settled (``busy`` 0) and the delay since
        the latest failure passed (``next``), so of a burst at most one is evaluated.
        A refusal gives back the per-IP reservation; a refused program wrote nothing.
        """
        p, now = self.policy, self.now()
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
        try:
            return (yield from self._reserve(attempt, ip_key, now))
        except (RateLimited, Locked):
            if ip_key is not None:
                yield from store_incr(ip_key, p.ip_window, -1)
            raise

    def _reserve(self, attempt: Attempt, ip_key: str | None, now: float) -> Gen[Reservation]:
        p = self.policy
        head: list[Step] = [Get(self._k(attempt, "gen"))]
        if p.hard_limit is not None:
            head.append(Reserve(self._k(attempt, "total"), p.hard_window, p.hard_limit))
        lock_at = len(head)
        head.append(Require(self._k(attempt, "lock"), present=False))
        if p.free_failures > 0:
            # Within the free failures: counted, evaluated concurrently.
            free = yield from atomic(
                *head,
                Incr(self._k(attempt, "busy"), p.window),
                Reserve(self._k(attempt, "fails"), p.window, p.free_failures),
            )
            if free.ok:
                return self._reservation(free.values, ip_key)
            if free.failed != len(head) + 1:
                raise self._refusal(free, lock_at, now)
        # Beyond them: one at a time, after the delay (63B-4 §3.2.2 rate limiting).
        now_ms = int(now * 1000)
        late = yield from atomic(
            *head,
            Incr(self._k(attempt, "fails"), p.window),
            Reserve(self._k(attempt, "next"), p.window, now_ms, 0),
            Reserve(self._k(attempt, "busy"), p.window, 1),
        )
        if not late.ok:
            raise self._refusal(late, lock_at, now)
        return self._reservation(late.values[:-2], ip_key)

    def _reservation(self, values: tuple[object, ...], ip_key: str | None) -> Reservation:
        """From the values of a reservation program: gen first, fails last."""
        raw_gen = values[0]
        gen = int(raw_gen) if isinstance(raw_gen, bytes) else 0
        total = values[1] if self.policy.hard_limit is not None else None
        n = values[-1]
        assert isinstance(n, int) and (total is None or isinstance(total, int))
        return Reservation(gen, n, total, ip_key)

    def _refusal(self, result: AtomicResult, lock_at: int, now: float) -> RateLimited | Locked:
        """The error of the guard that stopped a reservation program."""
        p, failed, values = self.policy, result.failed, result.values
        if failed is not None and failed < lock_at:
            return _hard_locked()
        if failed == lock_at:
            until = values[lock_at]
            assert isinstance(until, bytes)
            return _temporarily_locked(float(until) - now)
        if failed == lock_at + 2:  # ``next``: the delay since the latest failure
            waited = (int(cast(int, values[-1])) - int(now * 1000)) / 1000
        else:  # ``busy``: an earlier attempt is still being evaluated
            waited = p.delay_after(max(0, cast(int, values[lock_at + 1]) - 1))
        return RateLimited(
            "too many attempts; try again later",
            code="too_many_attempts",
            retry_after=max(1.0, waited),
        )

    def before_undo_gen(self, attempt: Attempt, res: Reservation) -> Gen[None]:
        """Give back every reservation of an attempt that was not evaluated."""
        p = self.policy
        steps: list[Step] = [
            self._gate(attempt, res.gen),
            Incr(self._k(attempt, "busy"), p.window, -1),
            Incr(self._k(attempt, "fails"), p.window, -1),
        ]
        if res.total is not None:
            steps.append(Incr(self._k(attempt, "total"), p.hard_window, -1))
        yield from atomic(*steps)
        if res.ip_key is not None:
            yield from store_incr(res.ip_key, p.ip_window, -1)

    def failed_gen(self, attempt: Attempt, res: Reservation) -> Gen[str | None]:
        """Settle an evaluated failure; return ``"temporary"``/``"hard"`` on a lockout.

        The counters were taken by :meth:`before_gen`; this ends the attempt
        (``busy``), starts the delay of the next one (``next``) and, at
        ``lock_after``, writes the lock and starts a new generation (the free
        failures start again; the hard-cap count is kept: consecutive failures,
        63B-4 §3.2.2). Nothing happens if the generation changed meanwhile.
        """
        p, now = self.policy, self.now()
        steps: list[Step] = [self._gate(attempt, res.gen)]
        temporary = res.n >= p.lock_after
        if temporary:
            until = repr(now + p.lock_duration).encode()
            steps.append(Put(self._k(attempt, "lock"), until, p.lock_duration))
            steps += self._new_gen(attempt, total=False)
        else:
            steps.append(Incr(self._k(attempt, "busy"), p.window, -1))
            delay = p.delay_after(res.n)
            if delay > 0:
                next_ms = str(int(now * 1000) + int(delay * 1000)).encode("ascii")
                steps.append(Put(self._k(attempt, "next"), next_ms, p.window))
        settled = yield from atomic(*steps)
        if p.hard_limit is not None and res.total == p.hard_limit:
            return "hard"
        return "temporary" if temporary and settled.ok else None

    def reset_gen(self, attempt: Attempt) -> Gen[None]:
        """Forget the account's failures and lock (password change, unlock)."""
        yield from atomic(*self._new_gen(attempt, total=True), Delete(self._k(attempt, "lock")))

    def succeeded_gen(self, attempt: Attempt, res: Reservation) -> Gen[None]:
        """A right password: not a failure for the IP; the account starts afresh."""
        yield from atomic(self._gate(attempt, res.gen), *self._new_gen(attempt, total=True))
        if res.ip_key is not None:
            yield from store_incr(res.ip_key, self.policy.ip_window, -1)


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


def account_key(email: str) -> str:
    try:
        ident = canonical_email(email)
    except InvalidInput:
        # Still throttled (and hashed), just never found.
        ident = unicodedata.normalize("NFKC", str(email)[: 4 * MAX_EMAIL_CHARS]).casefold()
    return hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:40]
