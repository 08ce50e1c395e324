"""Owner-signed ban lists, the I/O edge: signing, signature recovery and the land check.

The model, canonical text and wire form are `fluxnode.core.session.bans`. `verify_ban_list`
applies the same checks as `fluxnode.chain.records.verify_record`, cheapest first: not from the
future; the EIP-191 signature recovers (``bad_signature``) to the list's `owner`
(``signer_mismatch``); a personal world's list is signed by that address; a land world's by its
owner, approved address or operator at a confirmed block (``not_world_owner``), and without a
readable chain the list is refused (``chain_unavailable``, fail closed: nothing unverified is
stored or relayed). Verified lists go to a `BanBook`.
"""

from __future__ import annotations

from collections.abc import Iterable

from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from fluxnode.chain.oracle import Oracle
from fluxnode.chain.records import check_land_signer
from fluxnode.chain.siwe_verify import recover_address
from fluxnode.core.errors import BanListInvalid, SiweError
from fluxnode.core.session.bans import (
    BanList,
    UnsignedBanList,
    check_ban_not_from_future,
    check_ban_owner_matches_id,
    normalize_banned,
)
from fluxnode.core.world_record import DEFAULT_MAX_FUTURE_SKEW

__all__ = ["sign_ban_list", "verify_ban_list"]


def sign_ban_list(
    *,
    world_id: str,
    seq: int,
    banned: Iterable[str],
    issued_at: int,
    account: LocalAccount,
) -> BanList:
    """Build and sign a ban list with `account` (its address becomes `owner`)."""
    unsigned = UnsignedBanList(
        world_id=world_id,
        seq=seq,
        banned=normalize_banned(banned),
        owner=str(account.address),
        issued_at=issued_at,
    )
    signed = account.sign_message(encode_defunct(text=unsigned.signing_text()))
    return unsigned.signed(bytes(signed.signature))


async def verify_ban_list(
    ban_list: BanList,
    *,
    oracle: Oracle | None,
    now: int,
    max_future_skew: int = DEFAULT_MAX_FUTURE_SKEW,
) -> None:
    """Return if `ban_list` may be stored, enforced and relayed; else raise BanListInvalid."""
    check_ban_not_from_future(ban_list, now, max_future_skew=max_future_skew)
    try:
        signer = recover_address(ban_list.signing_text(), ban_list.signature)
    except SiweError as exc:
        raise BanListInvalid("bad_signature", exc.message) from None
    if signer != ban_list.owner:
        raise BanListInvalid(
            "signer_mismatch", f"ban list names owner {ban_list.owner} but {signer} signed it"
        )
    check_ban_owner_matches_id(ban_list)
    await check_land_signer(
        ban_list.ref.land_token, signer, oracle, BanListInvalid, "ban list", ban_list.world_id
    )
