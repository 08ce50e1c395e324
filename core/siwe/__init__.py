"""Sign-In with Ethereum (EIP-4361) messages: strict parser, canonical writer, checks, nonces.

Pure and sans-IO: stdlib only, the clock is always passed in. Signature recovery (eth-account)
and the EIP-1271 contract-wallet call live in `fluxnode.chain.siwe_verify`.

Grammar (EIP-4361's ABNF, lines joined by LF only, no trailing LF)::

    [ scheme "://" ] domain " wants you to sign in with your Ethereum account:"
    address
    (empty line)
    [ statement LF ]
    (empty line)
    "URI: " uri
    "Version: 1"
    "Chain ID: " chain-id
    "Nonce: " nonce
    "Issued At: " issued-at
    [ "Expiration Time: " expiration-time ]
    [ "Not Before: " not-before ]
    [ "Request ID: " request-id ]
    [ "Resources:" *( LF "- " URI ) ]

Where we are stricter than the ABNF (each refusal is a clear `SiweError`): the address must be
EIP-55 checksummed (the ABNF leaves it "where applicable"), the domain needs a non-empty host,
the chain id has no leading zeros (so the text is the canonical form of the parsed value) and is
at most 2**256 - 1, years start at 0001 (Python's `datetime`), and the whole message is at most
`MAX_MESSAGE_CHARS` characters. Everything else the ABNF allows is accepted, including an empty
statement (kept apart from an absent one), an empty request id and a "Resources:" line with no
resources, because JS libraries produce those and the signed text must round-trip exactly.

Timestamps are kept as the exact text that was signed (`issued_at` etc.); `*_dt` properties give
them as aware UTC datetimes. A leap second (":60") is read as the next second.

Modules, importing one way: `grammar` (RFC 3986 / RFC 3339 and the field patterns) <- `address`
(keccak-256, EIP-55) <- `message` (`SiweMessage`, `parse_siwe`, `validate`); `nonces`
(`NonceBook`) needs only `grammar`. `SiweError` and `SiweUsageError` live in
`fluxnode.core.errors`; this `__init__` re-exports every public name.
"""

from fluxnode.core.errors import SiweError, SiweUsageError
from fluxnode.core.siwe.address import is_checksum_address, keccak256, to_checksum_address
from fluxnode.core.siwe.grammar import format_timestamp, is_uri, parse_timestamp
from fluxnode.core.siwe.message import (
    HEADER_SUFFIX,
    MAX_MESSAGE_CHARS,
    SiweMessage,
    parse_siwe,
    validate,
)
from fluxnode.core.siwe.nonces import NonceBook, NonceStats

__all__ = [
    "HEADER_SUFFIX",
    "MAX_MESSAGE_CHARS",
    "NonceBook",
    "NonceStats",
    "SiweError",
    "SiweMessage",
    "SiweUsageError",
    "format_timestamp",
    "is_checksum_address",
    "is_uri",
    "keccak256",
    "parse_siwe",
    "parse_timestamp",
    "to_checksum_address",
    "validate",
]
