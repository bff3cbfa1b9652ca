"""Sending a code: the send caps (OTP-06, C11) and the SMS itself, as routines.

:func:`claim_send` reserves the cooldown and every cap *before* anything is sent;
:func:`send_code` then composes the sender's own routine (its HTTP requests and
retry waits, :mod:`authbroker.sms.base`) into the same operation, so opening a link
is one routine from token to receipt under either runtime.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from ...audit import AuditLog
from ...errors import AuthBrokerError, ProviderError, RateLimited
from ...flow import store_delete, store_get, store_incr, store_put_if_absent
from ...kernel import Gen
from ...sms.base import SmsMessage, SmsSender
from .limits import LinkLimits
from .records import (
    K_COOLDOWN,
    K_SENDS_DAY,
    K_SENDS_IP,
    K_SENDS_LINK,
    K_SENDS_PHONE,
    short,
)
from .tokens import LinkKeys
from .values import OtpChallenge

__all__ = ["Outgoing", "claim_send", "send_code"]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A stored challenge whose code is about to be sent: what to send, what to answer."""

    challenge: OtpChallenge
    message: SmsMessage
    link_id: str
    subject: str
    client_ip: str | None
    #: The challenge's store keys, deleted when the send fails.
    withdraw: tuple[str, ...] = ()


def claim_send(
    limits: LinkLimits,
    keys: LinkKeys,
    link_id: str,
    phone: str,
    client_ip: str | None,
    now: float,
) -> Gen[None]:
    """Cooldown, then each cap as one atomic counter; a refusal returns its tokens."""
    if limits.resend_cooldown > 0:
        until = str(now + limits.resend_cooldown).encode()
        claimed = yield from store_put_if_absent(
            K_COOLDOWN + link_id, until, limits.resend_cooldown
        )
        if not claimed:
            raw = yield from store_get(K_COOLDOWN + link_id)
            wait = limits.resend_cooldown
            if raw is not None:
                with contextlib.suppress(ValueError):
                    wait = max(0.0, min(wait, float(raw) - now))
            raise RateLimited(
                "wait before asking for a new code", retry_after=wait, code="sms_cooldown"
            )
    day = time.strftime("%Y%m%d", time.gmtime(now))
    caps = (
        (K_SENDS_LINK + link_id, limits.sends_per_link, limits.send_window, "sms_cap_link"),
        (
            K_SENDS_PHONE + keys.index("phone", phone),
            limits.sends_per_phone,
            limits.send_window,
            "sms_cap_phone",
        ),
        (
            K_SENDS_IP + keys.index("ip", client_ip or "-"),
            limits.sends_per_ip,
            limits.send_window,
            "sms_cap_ip",
        ),
        (K_SENDS_DAY + day, limits.global_daily_sends, 2 * 86400.0, "sms_cap_global"),
    )
    taken: list[tuple[str, float]] = []
    for key, cap, window, code in caps:
        count = yield from store_incr(key, window)
        taken.append((key, window))
        if count > cap:
            # Give back every token this refused request took, so each counter
            # ends equal to the number of messages actually sent.
            for k, w in taken:
                yield from store_incr(k, w, -1)
            raise RateLimited("too many codes requested", retry_after=None, code=code)


def send_code(sms: SmsSender, out: Outgoing, audit: AuditLog) -> Gen[OtpChallenge]:
    """Send the code of a stored challenge; on failure withdraw the challenge.

    The sender's routine runs inside this one (``yield from``): its requests and
    ``Retry-After`` waits are effects of the operation, and its SMS-01 retry rules
    (never repeat a POST the gateway may have acted on) hold unchanged.

    A failed (or possibly failed) send withdraws the challenge, so no code that may
    not have arrived stays answerable, and is audited as ``sms.failed``. Send caps are
    not refunded: an ambiguous failure may still have delivered and billed the
    message, and refunds would let a failing gateway be hammered. A sender that fails
    with an untyped exception (a bug in a custom sender or ``echo`` callback) is
    reported as :class:`ProviderError` ``sms_sender_failed`` after the same clean-up.
    """
    try:
        receipt = yield from sms.send(out.message)
    except Exception as exc:
        error = (
            exc
            if isinstance(exc, AuthBrokerError)
            else ProviderError(f"SMS sender {sms.name} failed", code="sms_sender_failed")
        )
        challenge_id = out.challenge.challenge_id
        for key in out.withdraw:
            yield from store_delete(key)
        audit.emit(
            "sms.failed",
            "failure",
            subject=out.subject,
            client_ip=out.client_ip,
            reason=error.code,
            details={
                "link": short(out.link_id),
                "challenge": short(challenge_id),
                "to": out.challenge.masked_phone,
                "gateway": sms.name,
                "error": type(error).__name__,
            },
        )
        if error is exc:
            raise
        raise error from exc
    audit.emit(
        "otp.sent",
        "success",
        subject=out.subject,
        client_ip=out.client_ip,
        details={
            "link": short(out.link_id),
            "challenge": short(out.challenge.challenge_id),
            "to": out.challenge.masked_phone,
            "gateway": receipt.provider,
            "attempts": receipt.attempts,
        },
    )
    return out.challenge
