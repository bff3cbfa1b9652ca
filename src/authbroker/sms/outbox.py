"""Outbox sender for development, tests and the demo: messages stay in memory.

Nothing leaves the process. Tests read the code from :attr:`OutboxSender.messages`
(:meth:`OutboxMessage.code` parses the ``@host #code`` line); the demo shows the
outbox on a page or passes ``echo`` to print messages on its own console. The outbox
never *logs* a message: a log line is kept and shipped elsewhere, an outbox is not.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..kernel import call
from .base import SendGen, SmsMessage, SmsReceipt, mask_phone

__all__ = ["OutboxMessage", "OutboxSender"]

_ORIGIN_LINE = re.compile(r"@(\S+) #([0-9A-Za-z]+)")


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One message the outbox "sent"."""

    message_id: str
    to: str = field(repr=False)
    body: str = field(repr=False)
    reference: str
    sent_at: float

    def code(self) -> str | None:
        """The one-time code from the origin-bound last line, if any."""
        last = self.body.rsplit("\n", 1)[-1]
        match = _ORIGIN_LINE.fullmatch(last)
        return match.group(2) if match else None

    def host(self) -> str | None:
        last = self.body.rsplit("\n", 1)[-1]
        match = _ORIGIN_LINE.fullmatch(last)
        return match.group(1) if match else None

    def __repr__(self) -> str:
        return f"OutboxMessage(id={self.message_id!r}, to={mask_phone(self.to)!r})"


class OutboxSender:
    """An :class:`~authbroker.sms.base.SmsSender` that keeps messages in memory.

    ``capacity`` bounds memory in long demo runs (oldest messages drop out).
    ``echo`` is called with each message, e.g. to print it in the demo's terminal.
    """

    name = "outbox"

    def __init__(
        self,
        *,
        capacity: int = 1000,
        echo: Callable[[OutboxMessage], Awaitable[None] | None] | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._messages: deque[OutboxMessage] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._counter = 0
        self._echo = echo
        self._now = now

    def send(self, message: SmsMessage) -> SendGen:
        with self._lock:
            self._counter += 1
            item = OutboxMessage(
                message_id=f"outbox-{self._counter}",
                to=message.to,
                body=message.body,
                reference=message.reference,
                sent_at=self._now(),
            )
            self._messages.append(item)
        if self._echo is not None:
            # The echo is the application's callback (the demo's console printer):
            # an effect, so a coroutine function works under the asyncio runtime.
            yield from call(self._echo, item)
        return SmsReceipt(self.name, item.message_id)

    @property
    def messages(self) -> list[OutboxMessage]:
        with self._lock:
            return list(self._messages)

    def to(self, number: str) -> list[OutboxMessage]:
        """Messages sent to ``number`` (E.164)."""
        return [m for m in self.messages if m.to == number]

    def last(self, number: str | None = None) -> OutboxMessage | None:
        items = self.messages if number is None else self.to(number)
        return items[-1] if items else None

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)

    def __repr__(self) -> str:
        return f"OutboxSender(messages={len(self)})"
