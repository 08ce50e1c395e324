"""Per-instance text chat: bounded messages, a rate per visitor, history for late joiners.

A `ChatMessage` is signed by the author's session key over `signing_bytes()`; the check is the
injected ``verify(message) -> bool`` as for state operations. `ChatRoom.receive` takes a message
from a client or another member node and refuses it (`ChatRejected`, nothing changes) when the
text is empty or blank, longer than 500 characters, holds control characters other than tab and
newline, is dated more than ``max_drift`` away from our clock, is signed badly, or its author is
over their rate (a token bucket per author: ``rate`` per second, ``burst`` saved up — applied by
every node, so a flooding node cannot push one author past it either). A message already seen
(same id) is ignored. `history()` is the last 50 messages, ordered by (sent time, id) so every
node shows them in the same order.
"""

from __future__ import annotations

import collections
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from fluxnode.core.errors import ChatRejected
from fluxnode.core.session.ratelimit import TokenBucket

MAX_CHARS: Final = 500
HISTORY: Final = 50
RATE: Final = 1.0  # messages per second, sustained
BURST: Final = 5
MAX_DRIFT: Final = 30.0
MAX_AUTHORS: Final = 1000  # rate buckets kept; an instance has at most 100 visitors
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]")


@dataclass(frozen=True)
class ChatMessage:
    instance: str
    author: str
    text: str
    sent_ms: int
    signature: bytes = b""

    def signing_bytes(self) -> bytes:
        body = ["flux-chat/1", self.instance, self.author, self.text, self.sent_ms]
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()

    @property
    def id(self) -> str:
        return hashlib.sha256(self.signing_bytes()).hexdigest()[:32]


def text_problem(text: object) -> str | None:
    if not isinstance(text, str):
        return "chat text must be a string"
    if not text.strip():
        return "chat text is empty"
    if len(text) > MAX_CHARS:
        return f"chat text is {len(text)} characters, over the {MAX_CHARS}-character limit"
    if _CONTROL.search(text):
        return "chat text holds control characters"
    return None


class ChatRoom:
    def __init__(
        self,
        instance: str,
        verify: Callable[[ChatMessage], bool],
        *,
        rate: float = RATE,
        burst: int = BURST,
        history: int = HISTORY,
        max_drift: float = MAX_DRIFT,
    ) -> None:
        self.instance = instance
        self._verify = verify
        self.rate, self.burst, self.max_drift = rate, burst, max_drift
        self._history: list[ChatMessage] = []
        self._limit = history
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._buckets: collections.OrderedDict[str, TokenBucket] = collections.OrderedDict()

    def history(self) -> list[ChatMessage]:
        return list(self._history)

    def receive(self, message: ChatMessage, now: float) -> bool:
        """Check and keep `message`; False for a duplicate. Raises `ChatRejected`."""
        if message.instance != self.instance:
            raise ChatRejected("chat message is for another instance")
        if not isinstance(message.author, str) or not 1 <= len(message.author) <= 128:
            raise ChatRejected("chat author must be 1..128 characters")
        if problem := text_problem(message.text):
            raise ChatRejected(problem)
        if type(message.sent_ms) is not int or abs(message.sent_ms / 1000 - now) > self.max_drift:
            raise ChatRejected("chat message is dated too far from now")
        if message.id in self._seen:
            return False
        if not isinstance(message.signature, bytes) or not self._verify(message):
            raise ChatRejected("bad signature")
        bucket = self._buckets.get(message.author)
        if bucket is None:
            bucket = self._buckets[message.author] = TokenBucket(self.rate, self.burst, now)
            while len(self._buckets) > MAX_AUTHORS:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(message.author)
        if not bucket.allow(now):
            wait = bucket.retry_after(now)
            raise ChatRejected(f"too many chat messages; wait {wait:.1f} s")
        self._keep(message)
        return True

    def merge_history(self, message: ChatMessage) -> bool:
        """Take one line of another member's history (a late joiner's sync); False for a
        duplicate. Checked like `receive` except for the clock and the rate: history is old by
        nature, and its lines were rate-limited when they were first said."""
        if message.instance != self.instance:
            raise ChatRejected("chat message is for another instance")
        if not isinstance(message.author, str) or not 1 <= len(message.author) <= 128:
            raise ChatRejected("chat author must be 1..128 characters")
        if problem := text_problem(message.text):
            raise ChatRejected(problem)
        if type(message.sent_ms) is not int:
            raise ChatRejected("chat message has no time")
        if message.id in self._seen:
            return False
        if not isinstance(message.signature, bytes) or not self._verify(message):
            raise ChatRejected("bad signature")
        self._keep(message)
        return True

    def _keep(self, message: ChatMessage) -> None:
        self._seen[message.id] = None
        while len(self._seen) > 4 * self._limit:
            self._seen.popitem(last=False)
        self._history.append(message)
        self._history.sort(key=lambda m: (m.sent_ms, m.id))
        del self._history[: -self._limit]
