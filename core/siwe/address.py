"""Ethereum addresses: keccak-256 and EIP-55 checksums.

EIP-55 needs keccak-256, which hashlib lacks; a small pure-Python Keccak-f[1600] keeps core free
of third-party packages (one 40-byte hash per message: ~0.25 ms).
"""

from __future__ import annotations

import re

from fluxnode.core.errors import SiweError
from fluxnode.core.siwe.grammar import show

# -- keccak-256 (the original Keccak padding, as Ethereum uses; not NIST SHA3-256) ---------------

_MASK64 = (1 << 64) - 1


def _round_constants() -> tuple[int, ...]:
    out = []
    r = 1  # LFSR x^8 + x^6 + x^5 + x^4 + 1 (FIPS 202, algorithm 5)
    for _ in range(24):
        rc = 0
        for j in range(7):
            if r & 1:
                rc |= 1 << ((1 << j) - 1)
            r = ((r << 1) ^ 0x71) & 0xFF if r & 0x80 else r << 1
        out.append(rc)
    return tuple(out)


def _rho_pi() -> tuple[tuple[int, int, int], ...]:
    """(source lane, destination lane, rotation) for the combined rho and pi steps."""
    rot = [0] * 25
    x, y = 1, 0
    for t in range(24):
        rot[x + 5 * y] = ((t + 1) * (t + 2) // 2) % 64
        x, y = y, (2 * x + 3 * y) % 5
    return tuple(
        (x + 5 * y, y + 5 * ((2 * x + 3 * y) % 5), rot[x + 5 * y])
        for x in range(5)
        for y in range(5)
    )


_RC = _round_constants()
_RHO_PI = _rho_pi()
_RATE = 136  # bytes, for a 256-bit output


def _keccak_f(a: list[int]) -> list[int]:
    for rc in _RC:
        c = [a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20] for x in range(5)]
        d = [
            c[(x - 1) % 5] ^ (((c[(x + 1) % 5] << 1) | (c[(x + 1) % 5] >> 63)) & _MASK64)
            for x in range(5)
        ]
        a = [a[i] ^ d[i % 5] for i in range(25)]
        b = [0] * 25
        for src, dst, n in _RHO_PI:
            v = a[src]
            b[dst] = ((v << n) | (v >> (64 - n))) & _MASK64 if n else v
        a = [b[i] ^ (~b[(i + 1) % 5 + i - i % 5] & b[(i + 2) % 5 + i - i % 5]) for i in range(25)]
        a[0] ^= rc
    return a


def keccak256(data: bytes) -> bytes:
    """Keccak-256 as used by Ethereum (padding 0x01...0x80)."""
    padded = bytearray(data)
    padded.append(0x01)
    padded.extend(b"\x00" * (-len(padded) % _RATE))
    padded[-1] |= 0x80
    state = [0] * 25
    for off in range(0, len(padded), _RATE):
        block = padded[off : off + _RATE]
        for i in range(_RATE // 8):
            state[i] ^= int.from_bytes(block[8 * i : 8 * i + 8], "little")
        state = _keccak_f(state)
    return b"".join(lane.to_bytes(8, "little") for lane in state[:4])


HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def to_checksum_address(address: str) -> str:
    """EIP-55 mixed-case form of a `0x` + 40 hex digit address (any case in)."""
    if not HEX_ADDRESS.fullmatch(address):
        raise SiweError("bad_address", f"not 0x followed by 40 hex digits: {show(address)}")
    body = address[2:].lower()
    digest = keccak256(body.encode("ascii")).hex()
    return "0x" + "".join(
        ch.upper() if ch.isalpha() and int(digest[i], 16) >= 8 else ch for i, ch in enumerate(body)
    )


def is_checksum_address(address: str) -> bool:
    return bool(HEX_ADDRESS.fullmatch(address)) and to_checksum_address(address) == address
