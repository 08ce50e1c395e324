"""World records, the I/O edge: signing, signature recovery and the on-chain land ownership
check. The model and the rules that need no I/O are `fluxnode.core.world_record`.

`verify_record` runs the checks cheapest first, so junk costs no chain round trip:

1. freshness (``from_future`` / ``expired``), against the caller's clock;
2. the EIP-191 signature of the canonical text must recover (``bad_signature``) to the
   record's `owner` (``signer_mismatch``);
3. a personal world `<address>/<slug>` must be signed by that address (``not_world_owner``);
4. a land world `land:<id>`: at a confirmed block the signer must be the land's owner, the
   token's approved address (`getApproved`) or an operator of the owner (`isApprovedForAll`) —
   the same rule FluxLand.setWorld applies — else ``not_world_owner`` (a token that does not
   exist has no owner). Without a readable chain (no oracle, no endpoint answers, a malformed
   answer) the record is refused with ``chain_unavailable``: fail closed, never stored or
   relayed unverified.

Contract wallets (EIP-1271) cannot sign records: a record must carry a 65-byte EOA signature.

Signing and recovery use `fluxnode.chain.keys` (coincurve), not eth-account, and nothing
chain-heavy is imported at module level: `flux-node publish` imports this module to sign one
record, and eth-account's and web3's imports would cost it about a second (and a node its first
validation). Signatures and recovered addresses are the same as eth-account's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from fluxnode.chain.keys import WalletKey, recover_personal
from fluxnode.core.cid import Cid
from fluxnode.core.errors import ChainCallFailed, ChainUnavailable, ReasonError, RemoteError
from fluxnode.core.world import Visibility
from fluxnode.core.world_record import (
    DEFAULT_MAX_AGE,
    DEFAULT_MAX_FUTURE_SKEW,
    RecordInvalid,
    UnsignedRecord,
    WorldRecord,
    check_freshness,
    check_owner_matches_id,
    normalize_access,
)

if TYPE_CHECKING:
    from fluxnode.chain.oracle import Oracle

__all__ = ["SigningAccount", "recover_owner", "sign_record", "verify_record"]

log = logging.getLogger("fluxnode.chain.records")


class SigningAccount(Protocol):
    """What `sign_record` needs of a key: a `WalletKey`, or eth-account's `LocalAccount`."""

    @property
    def key(self) -> bytes: ...

    @property
    def address(self) -> str: ...


def sign_record(
    *,
    world_id: str,
    cid: Cid | str,
    seq: int,
    visibility: Visibility | str,
    issued_at: int,
    account: SigningAccount,
    access: Iterable[str] = (),
) -> WorldRecord:
    """Build and sign a record with `account` (its address becomes `owner`). `access` may be in
    any order and letter case; `cid` and `visibility` may be given as text. Raises
    RecordInvalid("malformed") for a bad field."""
    try:
        cid_value = cid if isinstance(cid, Cid) else Cid.parse(cid)
    except RemoteError as exc:  # InvalidCid
        raise RecordInvalid("malformed", str(exc)) from None
    try:
        vis = Visibility(visibility)
    except ValueError:
        raise RecordInvalid("malformed", f"unknown visibility {visibility!r}") from None
    wallet = (
        account if isinstance(account, WalletKey) else WalletKey.from_secret(bytes(account.key))
    )
    unsigned = UnsignedRecord(
        world_id=world_id,
        cid=cid_value,
        seq=seq,
        visibility=vis,
        access=normalize_access(access),
        owner=wallet.address,
        issued_at=issued_at,
    )
    return unsigned.signed(wallet.sign_personal(unsigned.signing_text()))


def recover_owner(record: WorldRecord) -> str:
    """The EIP-55 address whose key signed this record's canonical text."""
    try:
        return recover_personal(record.signing_text(), record.signature)
    except ValueError as exc:
        raise RecordInvalid("bad_signature", str(exc)) from None


async def verify_record(
    record: WorldRecord,
    *,
    oracle: Oracle | None,
    now: int,
    max_future_skew: int = DEFAULT_MAX_FUTURE_SKEW,
    max_age: int = DEFAULT_MAX_AGE,
) -> None:
    """Return if `record` may be stored and relayed; raise RecordInvalid (see module doc).
    On success, offer it to a `RecordBook` with ``verified_owner=True``."""
    check_freshness(record, now, max_future_skew=max_future_skew, max_age=max_age)
    signer = recover_owner(record)
    if signer != record.owner:
        raise RecordInvalid(
            "signer_mismatch", f"record names owner {record.owner} but {signer} signed it"
        )
    check_owner_matches_id(record)
    await check_land_signer(
        record.ref.land_token, signer, oracle, RecordInvalid, "record", record.world_id
    )


async def check_land_signer(
    token: int | None,
    signer: str,
    oracle: Oracle | None,
    error: type[ReasonError],
    what: str,
    world_id: str,
) -> None:
    """For a land world (`token` set), `signer` must own the land or be approved for it at a
    confirmed block; fails closed (`error("chain_unavailable")`, 503) when the chain cannot say.
    Shared by every owner-signed record of a world (world records, ban lists)."""
    if token is None:
        return
    if oracle is None:
        raise error(
            "chain_unavailable", f"land {what}s need the chain; none is configured", http_status=503
        )
    try:
        land_owner, authorized = await oracle.land_owner_and_operator(token, signer)
    except (ChainUnavailable, ChainCallFailed) as exc:
        log.warning("cannot verify %s for %s: %s", what, world_id, exc)
        raise error(
            "chain_unavailable", f"cannot read land {token} owner: {exc}", http_status=503
        ) from None
    from fluxnode.chain.oracle import NOBODY

    if land_owner == NOBODY:
        raise error("not_world_owner", f"land {token} does not exist")
    if not authorized:
        raise error("not_world_owner", f"{signer} neither owns land {token} nor is approved for it")
