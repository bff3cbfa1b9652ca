"""Direct-link OTP verification on Redis: round trips per verify and verifies/s.

Subject: :meth:`authbroker.engines.links.DirectLinks.verify` with the right code on a
:class:`~authbroker.store.redis.RedisStore` (a benchmark-owned redis-server on
loopback). Each verification needs its own challenge, so challenges are prepared
(issue + open, untimed) and then verified one after another in timed batches.

Floor: one raw Redis round trip on the same connection pool (``GETDEL`` of a key,
the command a single-use check needs at minimum). The target is that a verify costs
one round trip; the figure is the number of commands the verify actually sends,
counted with a wrapper around the client's ``execute_command`` (every command of the
store is one round trip: no pipelines), and the detail gives the time ratio.
"""

from __future__ import annotations

import secrets
import statistics
import time

from ._redis import CommandCounter
from ._report import Figure, skipped

TITLE = "OTP verify on Redis: round trips per verify"
TARGET = "1 round trip"
RATIO_TARGET = 2.5


def bench_otp_verify(redis_url: str | None, *, batches: int, per_batch: int) -> list[Figure]:
    if redis_url is None:
        return [skipped("OTP-redis", TITLE, TARGET, "No redis-server binary on this machine.")]
    try:
        from authbroker.engines.links import DirectLinks, LinkLimits
        from authbroker.sms.outbox import OutboxSender
        from authbroker.store.redis import RedisStore
    except ImportError as exc:  # module still being written
        return [skipped("OTP-redis", TITLE, TARGET, f"links not importable: {exc}")]

    store = RedisStore.from_url(redis_url, prefix=f"bench:{secrets.token_hex(4)}:")
    outbox = OutboxSender()
    limits = LinkLimits(
        sends_per_phone=1_000_000, sends_per_ip=1_000_000, global_daily_sends=1_000_000
    )
    links = DirectLinks(
        store,
        outbox,
        secret_keys=[secrets.token_urlsafe(48)],
        base_url="https://app.bench.example",
        limits=limits,
    )
    try:
        counter = CommandCounter(store.client)

        def prepare(n: int) -> list[tuple[str, str]]:
            out = []
            for i in range(n):
                url = links.issue(f"user-{i}", "+358401234567", "invoice:approve", f"inv-{i}", 3600)
                challenge = links.open(url.rsplit("/", 1)[1], "203.0.113.7")
                message = outbox.last()
                assert message is not None
                code = message.code()
                assert code is not None
                out.append((challenge.challenge_id, code))
            return out

        # Warm-up (connection pool, script cache), and the command count of one verify.
        for challenge_id, code in prepare(20):
            links.verify(challenge_id, code, client_ip="203.0.113.7")
        challenge_id, code = prepare(1)[0]
        before = counter.count
        links.verify(challenge_id, code, client_ip="203.0.113.7")
        commands = counter.count - before

        raw_key = "bench:raw"
        client = store.client
        verify_samples: list[float] = []
        raw_samples: list[float] = []
        for _ in range(batches):
            prepared = prepare(per_batch)
            start = time.perf_counter()
            for challenge_id, code in prepared:
                links.verify(challenge_id, code, client_ip="203.0.113.7")
            verify_samples.append((time.perf_counter() - start) / per_batch)
            start = time.perf_counter()
            for _ in range(per_batch):
                client.getdel(raw_key)
            raw_samples.append((time.perf_counter() - start) / per_batch)
        verify_t = statistics.median(verify_samples)
        raw_t = statistics.median(raw_samples)
    finally:
        links.close()
        store.close()
    ratio = verify_t / raw_t
    note = ""
    if commands > 1:
        note = (
            f"Gap: {commands} round trips instead of 1. The verify reads its challenge "
            f"record (GET), checks the code's HMAC in the process, then runs one atomic "
            f"program (one EVALSHA: guards, the three reservations, consumption; see "
            f"authbroker.store.atomic). Folding the read into the script would need the "
            f"code check server-side (the HMAC key would have to reach Redis) or the "
            f"challenge's user tag in the challenge id; neither was done."
        )
    detail = (
        f"{commands} Redis commands per successful verify (counted on the client). Time: "
        f"{verify_t * 1e6:.0f} µs per verify ({1 / verify_t:,.0f} verifies/s) vs "
        f"{raw_t * 1e6:.0f} µs per raw GETDEL round trip ({1 / raw_t:,.0f}/s). Medians of "
        f"{batches} batches of {per_batch} verifies on a benchmark-owned loopback "
        f"redis-server."
    )
    return [
        Figure(
            "OTP-redis",
            TITLE,
            float(commands),
            "round trips",
            TARGET,
            commands <= 1,
            detail=detail,
            note=note,
        ),
        Figure(
            "OTP-ratio",
            "OTP verify on Redis / one GETDEL",
            ratio,
            "x",
            f"≤ {RATIO_TARGET:.1f}x",
            ratio <= RATIO_TARGET,
            detail=detail,
        ),
    ]
