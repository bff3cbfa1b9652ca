"""Login throttling (PWD-05, NIST SP 800-63B-4 §3.2.2,
https://pages.nist.gov/800-63-4/sp800-63b.html): the policy values and the exact
reservation logic as routines over the StateStore primitives.

The limits hold exactly under concurrency on every store because each counter is
reserved first (atomic ``incr``) and the decision is taken on the value that
reservation returned (``tests/engines/test_limits_attack.py`` pins this).
"""

from __future__ import annotations

import hashlib
import ipaddress
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from ...errors import ConfigError, InvalidInput, Locked, RateLimited
from ...flow import store_delete, store_get, store_incr, store_put, store_put_if_absent
from ...kernel import Gen
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
    lock starts a new one, so a late refund or failure of an attempt that began
    before lands in the old generation and cannot push the new counters below zero.
    """

    gen: int
    n: int  # this attempt's number among the generation's reserved failures
    total: int | None  # its number towards the hard cap (None: no hard cap)
    ip_key: str | None  # the per-IP counter it reserved on
    wrote_lock: bool  # it crossed ``lock_after`` and wrote the lock itself


class Throttle:
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
    def _k(attempt: Attempt, what: str, gen: int | None = None) -> str:
        if gen is None:
            return f"pwd:acct:{attempt.account}:{what}"
        return f"pwd:acct:{attempt.account}:{gen}:{what}"

    @staticmethod
    def _ip_key(attempt: Attempt) -> str:
        return f"pwd:ip:{attempt.ip}"

    def _gen(self, attempt: Attempt) -> Gen[int]:
        raw = yield from store_get(self._k(attempt, "gen"))
        return int(raw) if raw else 0

    def _new_gen(self, attempt: Attempt) -> Gen[int]:
        # Outlives every key of the generations it numbers (window, hard_window).
        return (yield from store_incr(self._k(attempt, "gen"), 2 * self.policy.hard_window))

    def before_gen(self, attempt: Attempt) -> Gen[Reservation]:
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
        res = Reservation(gen, n, total_n, ip_key, False)
        if n >= p.lock_after:
            # This attempt's failure locks the account: the lock is written with the
            # reservation, so nothing else runs while its password is checked.
            until = repr(now + p.lock_duration).encode()
            if not (
                yield from store_put_if_absent(self._k(attempt, "lock"), until, p.lock_duration)
            ):
                yield from self.before_undo_gen(attempt, res)
                raise _temporarily_locked(p.lock_duration)
            res = Reservation(gen, n, total_n, ip_key, True)
        return res

    def _delay_refusal(
        self, attempt: Attempt, gen: int, prior: int, now: float
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

    def before_undo_gen(self, attempt: Attempt, res: Reservation) -> Gen[None]:
        """Give back every reservation of an attempt that was not evaluated."""
        p = self.policy
        if res.wrote_lock:
            yield from store_delete(self._k(attempt, "lock"))
        if res.total is not None:
            yield from store_incr(self._k(attempt, "total", res.gen), p.hard_window, -1)
        yield from store_incr(self._k(attempt, "fails", res.gen), p.window, -1)
        if res.ip_key is not None:
            yield from store_incr(res.ip_key, p.ip_window, -1)

    def failed_gen(self, attempt: Attempt, res: Reservation) -> Gen[str | None]:
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

    def reset_gen(self, attempt: Attempt) -> Gen[None]:
        """Forget the account's failures and lock (password change, unlock)."""
        yield from self._new_gen(attempt)
        yield from store_delete(self._k(attempt, "lock"))

    def succeeded_gen(self, attempt: Attempt, res: Reservation) -> Gen[None]:
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


def account_key(email: str) -> str:
    try:
        ident = canonical_email(email)
    except InvalidInput:
        # Still throttled (and hashed), just never found.
        ident = unicodedata.normalize("NFKC", str(email)[: 4 * MAX_EMAIL_CHARS]).casefold()
    return hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:40]
