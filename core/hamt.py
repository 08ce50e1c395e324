"""HAMT-sharded UnixFS directories: build them byte-identically to the JS reference importer
(`ipfs-unixfs-importer` 17.1.1 with `hamt-sharding` 3.0.8), and resolve names inside them.

Layout (the UnixFS HAMT as Kubo and the JS importer write it):
- the key is the entry name as UTF-8, hashed with murmur3-x64-64 (multihash code 0x22): the
  first 64-bit word `h1` of MurmurHash3_x64_128 with seed 0, as 8 big-endian bytes;
- each level consumes the next log2(fanout) bits of that hash, most significant bit first
  (fanout 256: level 0 uses hash byte 0, level 1 byte 1, ...). JS gets there in two steps: it
  reverses the first 8 bytes of `murmur3128` ("because that's how Go impl does it") and
  `hamt-sharding` then reads that buffer from its last byte;
- a slot holding exactly one entry is a leaf link named `<index as %02X><name>`; a slot where
  several entries land is a sub-shard link named `<index as %02X>` alone (the name length is what
  tells the two apart);
- links are in slot order; each node's UnixFS Data is `{HAMTShard, Data=bitfield, hashType=0x22,
  fanout}` where the bitfield has bit `i` set for every occupied slot `i`, written big-endian with
  leading zero bytes dropped (`int.to_bytes` of the minimal length);
- Tsize of a sub-shard link = its block length + the sum of its links' Tsizes.
Past 64 bits (two names agreeing on all of `h1`) the JS `InfiniteHash` continues with
murmur3-x64-64(name + bytes([n])) for the n-th further 64 bits; we do the same up to
MAX_HASH_BITS. Go's boxo stops at 64 bits ("sharded directory too deep"). By accident this never
happens, but murmur3 collisions are easy to craft: the JS importer would recurse without end on
names that collide fully, our builder raises ValueError.

Sans-IO: the builder returns blocks; the readers take an injected `get_node(cid) -> PBNode`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from typing import Literal

from fluxnode.core.cid import DAG_PB, Cid
from fluxnode.core.dagpb import (
    DataType,
    InvalidBlock,
    PBLink,
    PBNode,
    UnixFSData,
    decode_unixfs,
    encode_link,
    encode_node,
    encode_unixfs,
)
from fluxnode.core.unixfs import DIRECTORY_DATA, Block, Link

MURMUR3_X64_64 = 0x22
DEFAULT_FANOUT = 256
#: `shardSplitThresholdBytes` default of ipfs-unixfs-importer (and boxo's `HAMTShardingSize`).
SHARD_SPLIT_THRESHOLD_BYTES = 262_144
#: How many hash bits a lookup may consume before the shard counts as malformed: 16 levels at
#: fanout 256. Real shards need at most 8 (Go cannot even build deeper ones).
MAX_HASH_BITS = 128
MAX_FANOUT = 1024

_M64 = (1 << 64) - 1
_C1 = 0x87C37B91114253D5
_C2 = 0x4CF5AD432745937F


# -- murmur3 ---------------------------------------------------------------------------------
def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M64


def _fmix(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & _M64
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & _M64
    return k ^ (k >> 33)


def murmur3_x64_128(data: bytes) -> tuple[int, int]:
    """MurmurHash3_x64_128 with seed 0, as the two 64-bit words (h1, h2)."""
    h1 = h2 = 0
    n = len(data)
    end = n - n % 16
    for i in range(0, end, 16):
        k1 = int.from_bytes(data[i : i + 8], "little")
        k2 = int.from_bytes(data[i + 8 : i + 16], "little")
        h1 ^= _rotl((k1 * _C1) & _M64, 31) * _C2 & _M64
        h1 = (_rotl(h1, 27) + h2) & _M64
        h1 = (h1 * 5 + 0x52DCE729) & _M64
        h2 ^= _rotl((k2 * _C2) & _M64, 33) * _C1 & _M64
        h2 = (_rotl(h2, 31) + h1) & _M64
        h2 = (h2 * 5 + 0x38495AB5) & _M64
    # Tail: mixing a zero word is a no-op, so both words are mixed unconditionally.
    k1 = int.from_bytes(data[end : end + 8], "little")
    k2 = int.from_bytes(data[end + 8 : n], "little")
    h2 ^= _rotl((k2 * _C2) & _M64, 33) * _C1 & _M64
    h1 ^= _rotl((k1 * _C1) & _M64, 31) * _C2 & _M64
    h1 ^= n
    h2 ^= n
    h1 = (h1 + h2) & _M64
    h2 = (h2 + h1) & _M64
    h1, h2 = _fmix(h1), _fmix(h2)
    h1 = (h1 + h2) & _M64
    h2 = (h2 + h1) & _M64
    return h1, h2


def murmur3_x64_64(data: bytes) -> bytes:
    """The UnixFS HAMT hash: h1 of MurmurHash3_x64_128 (seed 0) as 8 big-endian bytes.

    Equal to `murmur364` / the first 8 bytes of `murmur3128` in JS `@multiformats/murmur3` 2.x
    (whose 128-bit output is h1 then h2, each big-endian), and to Go's `murmur3.New64().Sum(nil)`.
    NB: the C reference writes the words little-endian, so its first 8 bytes are these reversed.
    """
    return murmur3_x64_128(data)[0].to_bytes(8, "big")


class _HashBits:
    """The endless bit stream a key is placed by, read most significant bit first."""

    __slots__ = ("buf", "key")

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.buf = bytearray()

    def take(self, start: int, nbits: int) -> int:
        stop = start + nbits
        while len(self.buf) * 8 < stop:
            rounds = len(self.buf) // 8  # JS InfiniteHash: key, then key + bytes([round])
            self.buf += murmur3_x64_64(self.key + bytes([rounds & 0xFF]) if rounds else self.key)
        first, last = start // 8, (stop + 7) // 8
        word = int.from_bytes(self.buf[first:last], "big")
        return (word >> (last * 8 - stop)) & ((1 << nbits) - 1)


def _fanout_bits(fanout: int) -> int:
    if fanout < 8 or fanout > MAX_FANOUT or fanout & (fanout - 1):
        raise ValueError(f"fanout must be a power of two in 8..{MAX_FANOUT}, not {fanout}")
    return fanout.bit_length() - 1


def _prefix_len(fanout: int) -> int:
    return len(f"{fanout - 1:X}")


# -- when to shard ---------------------------------------------------------------------------
Strategy = Literal["links-bytes", "block-bytes"]
#: Encoded size of the dag-pb Data field of a plain directory, and of an empty directory block.
_DIR_DATA_FIELD = len(encode_node([], DIRECTORY_DATA))


def _entry_size(name: str, cid: Cid, tsize: int, strategy: Strategy) -> int:
    if strategy == "links-bytes":
        return len(name.encode()) + len(cid.to_bytes())
    return len(encode_link(cid.to_bytes(), name, tsize))


def should_shard(
    entries: list[tuple[str, Link]],
    cid_version: int,
    *,
    threshold: int = SHARD_SPLIT_THRESHOLD_BYTES,
    strategy: Strategy = "links-bytes",
    subdirectories: Collection[str] = (),
) -> bool:
    """True when ipfs-unixfs-importer 17.1.1 (Kubo-default options, fed like `ipfs add -r`)
    makes this directory a HAMT shard.

    The importer re-estimates the flat directory after every entry it adds and converts it for
    good as soon as the estimate is `> threshold` (strictly: exactly 262,144 stays flat). With
    the default "links-bytes" strategy an entry counts UTF-8 name bytes + binary CID bytes (34 for
    CIDv0, 36 for a sha2-256 CIDv1); "block-bytes" (the `unixfs-v1-2025` profile) counts the
    exact encoded dag-pb size instead. Entries arrive sorted by name (JS sort: UTF-16 code
    units), each directory before its contents. A non-empty sub-directory counts only at the
    moment it is added (as the empty directory it then is); once its first child arrives it is
    replaced by an in-memory directory without a CID, which counts 0. So list in
    `subdirectories` the names of entries that are non-empty directories; empty ones count like
    files. Kubo/boxo instead always count sub-directories: pass no `subdirectories` to get its
    rule (boxo before the `>` fix used `>=`: use `threshold=262_143` for that).
    `cid_version` is only used for the empty-directory size under "block-bytes".
    """
    empty_dir = Cid.hash_block(encode_node([], DIRECTORY_DATA), cid_version, DAG_PB)
    running = 0 if strategy == "links-bytes" else _DIR_DATA_FIELD
    for name, link in sorted(entries, key=lambda e: e[0].encode("utf-16-be")):
        if name in subdirectories:
            if running + _entry_size(name, empty_dir, _DIR_DATA_FIELD, strategy) > threshold:
                return True
            continue
        running += _entry_size(name, link.cid, link.tsize, strategy)
        if running > threshold:
            return True
    return False


# -- building --------------------------------------------------------------------------------
_Item = tuple[str, _HashBits, Link]


def hamt_directory(
    entries: list[tuple[str, Link]], cid_version: int, *, fanout: int = DEFAULT_FANOUT
) -> tuple[list[Block], Link]:
    """Build a HAMT-sharded directory; return its blocks (children first, root last) and root.

    Raises ValueError on duplicate names (a directory maps each name once).
    """
    bits = _fanout_bits(fanout)
    items: list[_Item] = []
    seen: set[str] = set()
    for name, link in entries:
        if name in seen:
            raise ValueError(f"duplicate directory entry {name!r}")
        seen.add(name)
        items.append((name, _HashBits(name.encode()), link))
    blocks: list[Block] = []
    root = _build_shard(items, 0, bits, fanout, cid_version, blocks)
    return blocks, root


def _build_shard(
    items: list[_Item], level: int, bits: int, fanout: int, cid_version: int, out: list[Block]
) -> Link:
    if (level + 1) * bits > MAX_HASH_BITS:  # distinct names never get here by accident
        raise ValueError("HAMT would be deeper than MAX_HASH_BITS allows")
    slots: dict[int, list[_Item]] = {}
    for item in items:
        slots.setdefault(item[1].take(level * bits, bits), []).append(item)
    pad = _prefix_len(fanout)
    links: list[bytes] = []
    bitfield = children_size = 0
    for index in sorted(slots):
        bitfield |= 1 << index
        prefix = f"{index:0{pad}X}"
        group = slots[index]
        if len(group) == 1:
            name, _, child = group[0]
            label = prefix + name
        else:
            child = _build_shard(group, level + 1, bits, fanout, cid_version, out)
            label = prefix
        links.append(encode_link(child.cid.to_bytes(), label, child.tsize))
        children_size += child.tsize
    field = bitfield.to_bytes((bitfield.bit_length() + 7) // 8, "big") or None
    data = encode_unixfs(
        UnixFSData(DataType.HAMT_SHARD, data=field, hash_type=MURMUR3_X64_64, fanout=fanout)
    )
    block = encode_node(links, data)
    cid = Cid.hash_block(block, cid_version, DAG_PB)
    out.append(Block(cid, block))
    return Link(cid, len(block) + children_size, 0)


# -- reading ---------------------------------------------------------------------------------
def _shard_slots(node: PBNode, fanout: int | None) -> tuple[int, dict[int, PBLink]]:
    """Validate one shard node; return its fanout and {slot index: link}.

    `fanout`, when given, is the parent's: sub-shards must use the same one (Go assumes so).
    """
    unixfs = decode_unixfs(node.data)
    if unixfs.type != DataType.HAMT_SHARD:
        raise InvalidBlock(f"expected a HAMT shard, got UnixFS {unixfs.type.name}")
    if unixfs.hash_type != MURMUR3_X64_64:
        raise InvalidBlock(f"unsupported HAMT hash type {unixfs.hash_type!r}")
    if unixfs.fanout is None:
        raise InvalidBlock("HAMT shard without fanout")
    try:
        _fanout_bits(unixfs.fanout)
    except ValueError as exc:
        raise InvalidBlock(str(exc)) from None
    if fanout is not None and unixfs.fanout != fanout:
        raise InvalidBlock("sub-shard fanout differs from its parent's")
    fanout = unixfs.fanout
    bitfield = int.from_bytes(unixfs.data or b"", "big")
    if bitfield >> fanout:
        raise InvalidBlock("HAMT bitfield longer than the fanout")
    pad = _prefix_len(fanout)
    slots: dict[int, PBLink] = {}
    last = -1
    for link in node.links:
        prefix = (link.name or "")[:pad]
        if len(prefix) != pad or prefix.strip("0123456789ABCDEF"):
            raise InvalidBlock(f"bad HAMT link name {link.name!r}")
        index = int(prefix, 16)
        if index <= last or index >= fanout or not (bitfield >> index) & 1:
            raise InvalidBlock(f"HAMT link {link.name!r} out of order or not in the bitfield")
        last = index
        slots[index] = link
    if bitfield.bit_count() != len(slots):
        raise InvalidBlock("HAMT bitfield and links disagree")
    return fanout, slots


def _sub_shard(link: PBLink, get_node: Callable[[Cid], PBNode]) -> PBNode:
    if link.cid.codec != DAG_PB:
        raise InvalidBlock("HAMT sub-shard link is not dag-pb")
    return get_node(link.cid)


def find_in_shard(root: PBNode, name: str, get_node: Callable[[Cid], PBNode]) -> Cid | None:
    """The CID stored under `name` in the sharded directory `root`, or None if absent.

    Follows only the hash path of `name` (one block per level). Raises InvalidBlock on malformed
    shards, including ones deeper than MAX_HASH_BITS allows.
    """
    hashed = _HashBits(name.encode())
    node, fanout, used = root, None, 0
    while True:
        fanout, slots = _shard_slots(node, fanout)
        bits, pad = fanout.bit_length() - 1, _prefix_len(fanout)
        link = slots.get(hashed.take(used, bits))
        used += bits
        if link is None:
            return None
        label = link.name or ""
        if len(label) > pad:
            return link.cid if label[pad:] == name else None
        if used + bits > MAX_HASH_BITS:
            raise InvalidBlock("HAMT shard too deep")
        node = _sub_shard(link, get_node)


def iter_shard_entries(
    root: PBNode, get_node: Callable[[Cid], PBNode]
) -> Iterator[tuple[str, Cid, int]]:
    """Every (name, cid, tsize) of the sharded directory `root`, in shard order (depth first).

    Fetches every sub-shard. Raises InvalidBlock on malformed shards, on shards deeper than
    MAX_HASH_BITS allows, and on a sub-shard CID met twice (sharing would let a few tiny blocks
    list an exponential number of entries).
    """
    fanout, slots = _shard_slots(root, None)
    bits, pad = fanout.bit_length() - 1, _prefix_len(fanout)
    stack: list[Iterator[PBLink]] = [iter(slots.values())]
    seen: set[Cid] = set()
    while stack:
        link = next(stack[-1], None)
        if link is None:
            stack.pop()
            continue
        label = link.name or ""
        if len(label) > pad:
            yield label[pad:], link.cid, link.tsize or 0
            continue
        if link.cid in seen:
            raise InvalidBlock("HAMT sub-shard appears twice")
        seen.add(link.cid)
        if (len(stack) + 1) * bits > MAX_HASH_BITS:
            raise InvalidBlock("HAMT shard too deep")
        _, sub = _shard_slots(_sub_shard(link, get_node), fanout)
        stack.append(iter(sub.values()))
