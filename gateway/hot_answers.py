"""Whole answers for hot small files, by request path: what lets a world's many small assets
be served at close to the HTTP server's own cost.

A page of a world asks for the same few hundred small files over and over. Answering one the
full way (parse the path, ask the pins, resolve the path through the DAG, join the body, build
the headers) costs several times what aiohttp itself spends on the request. So the first
answer for a path is kept: the entry, its verified body and the headers that do not depend on
the request. A later request with exactly the same raw path (no query string, no `Accept` asking
for a raw block or a CAR) is answered from it, if the content's `version` token is still the one
read before that answer was computed.

Why that is enough to stay correct:
- The body is the bytes the content API returned after verifying every block against its CID,
  kept in memory, never re-read from disk. The gateway also asks `unchanged` per hit (a stat
  per block: is each block file still the one verified?), so a block corrupted or replaced on
  disk is noticed as on the full way, which re-reads it and refuses it.
- What may change what a path means is the pins (an unpin, by this process or another: the
  token includes SQLite's `data_version`, which moves on any commit by another connection, and
  the handle's own commit count) and the operator's denylist (another list is another token).
  The token is read per request, so an unpin is seen by the next request after its commit, as
  on the full path. A CID's content and a path under an immutable root never change otherwise.

Bounded: at most `max_entries` answers and `max_bytes` of bodies, least recently used first
out; files above `max_file` are never kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from multidict import CIMultiDict, CIMultiDictProxy

from fluxnode.core.cid import Cid
from fluxnode.core.content import ContentEntry

DEFAULT_ENTRIES = 4096
DEFAULT_BYTES = 32 << 20
DEFAULT_MAX_FILE = 256 << 10


@dataclass(frozen=True)
class HotAnswer:
    entry: ContentEntry
    body: bytes
    #: The name the Content-Type is guessed from, and the `X-Ipfs-Path` of the answer.
    name: str
    ipfs_path: str
    #: Headers of a plain 200 answer (no Range, no conditional).
    headers: CIMultiDictProxy[str]
    version: Hashable


class HotAnswers:
    def __init__(
        self,
        max_entries: int = DEFAULT_ENTRIES,
        max_bytes: int = DEFAULT_BYTES,
        max_file: int = DEFAULT_MAX_FILE,
    ) -> None:
        self.max_entries, self.max_bytes, self.max_file = max_entries, max_bytes, max_file
        self._answers: OrderedDict[str, HotAnswer] = OrderedDict()
        self._bytes = 0
        self.hits = 0

    def __len__(self) -> int:
        return len(self._answers)

    @property
    def kept_bytes(self) -> int:
        return self._bytes

    def get(
        self, path: str, version: Hashable, unchanged: Callable[[Cid], bool]
    ) -> HotAnswer | None:
        """The answer kept for `path`, if kept under `version` and `unchanged(its file)`."""
        answer = self._answers.get(path)
        if answer is None:
            return None
        if answer.version != version or not unchanged(answer.entry.cid):
            self.drop(path)
            return None
        self._answers.move_to_end(path)
        self.hits += 1
        return answer

    def put(
        self,
        path: str,
        version: Hashable,
        entry: ContentEntry,
        body: bytes,
        name: str,
        ipfs_path: str,
        headers: dict[str, str],
    ) -> None:
        """Keep a 200 answer; `version` is the token read before it was computed."""
        if len(body) != entry.size or len(body) > self.max_file:
            return
        self.drop(path)
        answer = HotAnswer(
            entry, body, name, ipfs_path, CIMultiDictProxy(CIMultiDict(headers)), version
        )
        self._answers[path] = answer
        self._bytes += len(body)
        while self._answers and (
            len(self._answers) > self.max_entries or self._bytes > self.max_bytes
        ):
            _, old = self._answers.popitem(last=False)
            self._bytes -= len(old.body)

    def drop(self, path: str) -> None:
        old = self._answers.pop(path, None)
        if old is not None:
            self._bytes -= len(old.body)
