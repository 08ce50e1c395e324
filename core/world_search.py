"""Searching the world directory: filters, two orders and opaque keyset cursors (sans-IO).

`WorldQuery.parse` checks the query string of `GET /api/worlds` (every field bounded; a bad one
is `BadRequest` naming it); `search` filters and orders `WorldCard`s and cuts one page.

- `q`: case-insensitive substring of the name, description, world id or a tag;
- `tag`: one of the world's tags exactly (case-insensitive); `creator`: the owner's address;
- `sort=popular`: visitors now (the gossiped directory's counts), then the most recent visit,
  then the world id; `sort=new`: the first-seen time (newest first), then the world id.

Cursors are keyset positions, not offsets: the sort key of the last item of a page, in
base64url JSON with the order it belongs to. A page after a cursor holds the items strictly
after that key, so a world that appears or moves between two requests shifts no page boundary
by more than itself and pages never loop. A cursor of another order, or one that does not
decode to a key of the right shape, is `BadRequest`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from fluxnode.core.errors import BadRequest
from fluxnode.core.light_api import WorldCard

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "WorldQuery", "decode_cursor", "encode_cursor", "search"]

DEFAULT_LIMIT: Final = 20
MAX_LIMIT: Final = 100
MAX_Q_CHARS: Final = 100
MAX_TAG_CHARS: Final = 64
MAX_CURSOR_CHARS: Final = 300
PARAMS: Final = frozenset(("q", "tag", "creator", "sort", "limit", "cursor"))

Sort = Literal["popular", "new"]
#: popular: (-visitors, -last_visit, world_id); new: (-first_seen, world_id).
Key = tuple[float | str, ...]

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_CURSOR = re.compile(r"[A-Za-z0-9_-]+")
_LIMIT = re.compile(r"[0-9]{1,3}")


def _text(params: Mapping[str, str], name: str, limit: int) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if len(value) > limit or not value.isprintable():
        raise BadRequest(f"{name} must be at most {limit} printable characters")
    return value


@dataclass(frozen=True)
class WorldQuery:
    q: str | None = None
    tag: str | None = None
    creator: str | None = None
    sort: Sort = "popular"
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> WorldQuery:
        unknown = sorted(set(params) - PARAMS)
        if unknown:
            raise BadRequest(f"unknown query parameter {unknown[0][:40]!r}")
        raw_sort = params.get("sort") or "popular"
        if raw_sort not in ("popular", "new"):
            raise BadRequest("sort must be popular or new")
        sort: Sort = "new" if raw_sort == "new" else "popular"
        raw_limit = params.get("limit") or str(DEFAULT_LIMIT)
        if not _LIMIT.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise BadRequest(f"limit must be an integer from 1 to {MAX_LIMIT}")
        creator = params.get("creator") or None
        if creator is not None and not _ADDRESS.fullmatch(creator):
            raise BadRequest("creator must be a 0x address of 40 hex digits")
        cursor = params.get("cursor") or None
        if cursor is not None:
            decode_cursor(cursor, sort)  # refuse a bad one before any work
        return cls(
            q=_text(params, "q", MAX_Q_CHARS),
            tag=_text(params, "tag", MAX_TAG_CHARS),
            creator=None if creator is None else creator.lower(),
            sort=sort,
            limit=int(raw_limit),
            cursor=cursor,
        )


def sort_key(card: WorldCard, sort: Sort) -> Key:
    if sort == "new":
        return (-float(card.first_seen), card.world_id)
    return (-float(card.visitors), -float(card.last_visit or 0.0), card.world_id)


def encode_cursor(key: Key, sort: Sort) -> str:
    text = json.dumps([sort, *key], separators=(",", ":"), ensure_ascii=True)
    return base64.urlsafe_b64encode(text.encode("ascii")).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, sort: Sort) -> Key:
    bad = BadRequest("cursor is not one this node gave out (or is for another sort)")
    if len(cursor) > MAX_CURSOR_CHARS or not _CURSOR.fullmatch(cursor):
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        items = json.loads(raw.decode("ascii"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    numbers = 1 if sort == "new" else 2
    if not isinstance(items, list) or len(items) != numbers + 2 or items[0] != sort:
        raise bad
    *nums, world_id = items[1:]
    if not all(isinstance(n, int | float) and not isinstance(n, bool) for n in nums):
        raise bad
    if not isinstance(world_id, str):
        raise bad
    return (*(float(n) for n in nums), world_id)


def _matches(card: WorldCard, query: WorldQuery) -> bool:
    if query.creator is not None and card.record.owner.lower() != query.creator:
        return False
    tags = [t.casefold() for t in card.tags]
    if query.tag is not None and query.tag.casefold() not in tags:
        return False
    if query.q is not None:
        needle = query.q.casefold()
        hay = (card.name or "", card.description or "", card.world_id, *tags)
        return any(needle in h.casefold() for h in hay)
    return True


def search(cards: Iterable[WorldCard], query: WorldQuery) -> tuple[list[WorldCard], str | None]:
    """One page of matching cards in the query's order, and the cursor of the next page
    (None on the last page)."""
    keyed = [(sort_key(c, query.sort), c) for c in cards if _matches(c, query)]
    if query.cursor is not None:
        after = decode_cursor(query.cursor, query.sort)
        keyed = [kc for kc in keyed if kc[0] > after]
    keyed.sort(key=lambda kc: kc[0])
    page = keyed[: query.limit]
    more = len(keyed) > query.limit
    cursor = encode_cursor(page[-1][0], query.sort) if more and page else None
    return [c for _, c in page], cursor
