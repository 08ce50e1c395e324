"""Behaviour of the Flux contracts on a real local chain (anvil), through web3 like a node."""

from __future__ import annotations

from typing import Any, cast

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_defunct
from eth_utils.crypto import keccak
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from .conftest import ETH, Chain, rpc

pytestmark = [pytest.mark.slow, pytest.mark.interop]

ZERO = "0x0000000000000000000000000000000000000000"
CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"


def iface(signatures: list[str]) -> bytes:
    """ERC-165 interface id: XOR of the function selectors."""
    out = 0
    for sig in signatures:
        out ^= int.from_bytes(keccak(text=sig)[:4], "big")
    return out.to_bytes(4, "big")


# -- FluxLand ----------------------------------------------------------------------------------


def test_land_mint_transfer_and_approvals(chain: Chain) -> None:
    land = chain.land
    assert land.functions.name().call() == "Flux Land"
    assert land.functions.symbol().call() == "FLAND"
    chain.transact(land.functions.mint(chain.alice.address, 42), chain.deployer)
    assert land.functions.ownerOf(42).call() == chain.alice.address
    assert land.functions.balanceOf(chain.alice.address).call() == 1

    # Only minters mint.
    with chain.reverts(land, "AccessControlUnauthorizedAccount"):
        chain.transact(land.functions.mint(chain.mallory.address, 7), chain.mallory)
    # The same id cannot be minted twice.
    with chain.reverts(land, "ERC721InvalidSender"):
        chain.transact(land.functions.mint(chain.bob.address, 42), chain.deployer)

    # Transfer by the owner; then a per-token approval and an operator both may transfer.
    chain.transact(
        land.functions.transferFrom(chain.alice.address, chain.bob.address, 42), chain.alice
    )
    assert land.functions.ownerOf(42).call() == chain.bob.address
    with chain.reverts(land, "ERC721InsufficientApproval"):
        chain.transact(
            land.functions.transferFrom(chain.bob.address, chain.carol.address, 42), chain.carol
        )
    chain.transact(land.functions.approve(chain.carol.address, 42), chain.bob)
    assert land.functions.getApproved(42).call() == chain.carol.address
    chain.transact(
        land.functions.transferFrom(chain.bob.address, chain.alice.address, 42), chain.carol
    )
    assert land.functions.ownerOf(42).call() == chain.alice.address
    assert land.functions.getApproved(42).call() == ZERO  # cleared by the transfer
    chain.transact(land.functions.setApprovalForAll(chain.bob.address, True), chain.alice)
    assert land.functions.isApprovedForAll(chain.alice.address, chain.bob.address).call()
    chain.transact(
        land.functions.transferFrom(chain.alice.address, chain.carol.address, 42), chain.bob
    )
    assert land.functions.ownerOf(42).call() == chain.carol.address


def test_land_roles_and_interfaces(chain: Chain) -> None:
    land = chain.land
    minter = land.functions.MINTER_ROLE().call()
    assert minter == keccak(text="MINTER_ROLE")
    admin = land.functions.DEFAULT_ADMIN_ROLE().call()
    assert land.functions.hasRole(admin, chain.deployer.address).call()
    assert land.functions.hasRole(minter, chain.deployer.address).call()
    assert not land.functions.hasRole(minter, chain.alice.address).call()
    # The admin can grant minting to someone else.
    chain.transact(land.functions.grantRole(minter, chain.alice.address), chain.deployer)
    chain.transact(land.functions.mint(chain.bob.address, 1), chain.alice)
    assert land.functions.ownerOf(1).call() == chain.bob.address

    assert land.functions.supportsInterface(bytes.fromhex("80ac58cd")).call()  # ERC-721
    assert land.functions.supportsInterface(bytes.fromhex("5b5e139f")).call()  # metadata
    assert land.functions.supportsInterface(bytes.fromhex("7965db0b")).call()  # AccessControl
    assert land.functions.supportsInterface(bytes.fromhex("01ffc9a7")).call()  # ERC-165
    assert not land.functions.supportsInterface(bytes.fromhex("ffffffff")).call()


def test_set_world_permissions_and_event(chain: Chain) -> None:
    land = chain.land
    chain.transact(land.functions.mint(chain.alice.address, 42), chain.deployer)
    assert land.functions.worldOf(42).call() == ""

    # The owner sets it; WorldSet carries the token, the CID and who set it.
    receipt = chain.transact(land.functions.setWorld(42, CID), chain.alice)
    (event,) = land.events.WorldSet().process_receipt(receipt)
    assert event["args"]["tokenId"] == 42
    assert event["args"]["worldCid"] == CID
    assert event["args"]["by"] == chain.alice.address
    assert land.functions.worldOf(42).call() == CID

    # A stranger may not.
    with chain.reverts(land, "FluxLandNotAuthorized"):
        chain.transact(land.functions.setWorld(42, "bafyevil"), chain.mallory)

    # An operator approved for this token may.
    chain.transact(land.functions.approve(chain.bob.address, 42), chain.alice)
    receipt = chain.transact(land.functions.setWorld(42, "bafybob"), chain.bob)
    (event,) = land.events.WorldSet().process_receipt(receipt)
    assert event["args"]["by"] == chain.bob.address
    assert land.functions.worldOf(42).call() == "bafybob"

    # An operator approved for all of the owner's tokens may.
    chain.transact(land.functions.setApprovalForAll(chain.carol.address, True), chain.alice)
    chain.transact(land.functions.setWorld(42, "bafycarol"), chain.carol)
    assert land.functions.worldOf(42).call() == "bafycarol"

    # After a transfer the old owner's approvals are gone; the record stays with the land.
    chain.transact(
        land.functions.transferFrom(chain.alice.address, chain.mallory.address, 42), chain.alice
    )
    with chain.reverts(land, "FluxLandNotAuthorized"):
        chain.transact(land.functions.setWorld(42, "bafybob2"), chain.bob)
    with chain.reverts(land, "FluxLandNotAuthorized"):
        chain.transact(land.functions.setWorld(42, "bafyalice"), chain.alice)
    assert land.functions.worldOf(42).call() == "bafycarol"
    chain.transact(land.functions.setWorld(42, ""), chain.mallory)  # clearing is allowed
    assert land.functions.worldOf(42).call() == ""


def test_set_world_bounds(chain: Chain) -> None:
    land = chain.land
    chain.transact(land.functions.mint(chain.alice.address, 1), chain.deployer)
    limit = land.functions.MAX_CID_LENGTH().call()
    assert limit == 128
    chain.transact(land.functions.setWorld(1, "b" * limit), chain.alice)
    with chain.reverts(land, "FluxLandCidTooLong"):
        chain.transact(land.functions.setWorld(1, "b" * (limit + 1)), chain.alice)
    with chain.reverts(land, "ERC721NonexistentToken"):
        chain.transact(land.functions.setWorld(2, CID), chain.alice)
    with pytest.raises(ContractLogicError):
        land.functions.worldOf(2).call()


# -- FluxItems ---------------------------------------------------------------------------------


def test_items_register_mint_and_supply(chain: Chain) -> None:
    items = chain.items
    receipt = chain.transact(items.functions.registerItem("ipfs://sword", 500, 3), chain.alice)
    (event,) = items.events.ItemRegistered().process_receipt(receipt)
    assert dict(event["args"]) == {
        "itemId": 1,
        "creator": chain.alice.address,
        "uri": "ipfs://sword",
        "royaltyBps": 500,
        "maxSupply": 3,
    }
    receipt = chain.transact(items.functions.registerItem("ipfs://shield", 0, 0), chain.bob)
    assert items.events.ItemRegistered().process_receipt(receipt)[0]["args"]["itemId"] == 2
    assert items.functions.lastItemId().call() == 2
    assert items.functions.uri(1).call() == "ipfs://sword"
    assert items.functions.uri(2).call() == "ipfs://shield"

    chain.transact(items.functions.mint(1, chain.carol.address, 2), chain.alice)
    assert items.functions.balanceOf(chain.carol.address, 1).call() == 2
    with chain.reverts(items, "FluxItemsMaxSupplyExceeded"):
        chain.transact(items.functions.mint(1, chain.carol.address, 2), chain.alice)
    chain.transact(items.functions.mint(1, chain.bob.address, 1), chain.alice)  # exactly 3
    assert items.functions.itemInfo(1).call() == [chain.alice.address, 500, 3, 3]
    with chain.reverts(items, "FluxItemsMaxSupplyExceeded"):
        chain.transact(items.functions.mint(1, chain.bob.address, 1), chain.alice)

    # maxSupply 0 = unlimited.
    chain.transact(items.functions.mint(2, chain.bob.address, 10**30), chain.bob)
    assert items.functions.balanceOf(chain.bob.address, 2).call() == 10**30

    # Holders transfer freely (ERC-1155).
    chain.transact(
        items.functions.safeTransferFrom(chain.carol.address, chain.bob.address, 1, 1, b""),
        chain.carol,
    )
    assert items.functions.balanceOfBatch(
        [chain.carol.address, chain.bob.address], [1, 1]
    ).call() == [1, 2]


def test_items_only_creator_mints(chain: Chain) -> None:
    items = chain.items
    chain.transact(items.functions.registerItem("ipfs://sword", 500, 0), chain.alice)
    with chain.reverts(items, "FluxItemsNotCreator"):
        chain.transact(items.functions.mint(1, chain.mallory.address, 1), chain.mallory)
    with chain.reverts(items, "FluxItemsNotCreator"):
        chain.transact(items.functions.mint(1, chain.alice.address, 1), chain.deployer)
    with chain.reverts(items, "FluxItemsUnknownItem"):
        chain.transact(items.functions.mint(9, chain.alice.address, 1), chain.alice)
    with chain.reverts(items, "FluxItemsZeroAmount"):
        chain.transact(items.functions.mint(1, chain.alice.address, 0), chain.alice)
    with pytest.raises(ContractLogicError):
        items.functions.uri(9).call()


def test_items_royalties_and_interfaces(chain: Chain) -> None:
    items = chain.items
    chain.transact(items.functions.registerItem("ipfs://a", 750, 0), chain.alice)
    chain.transact(items.functions.registerItem("ipfs://b", 0, 0), chain.bob)
    assert items.functions.royaltyInfo(1, 10_000).call() == [chain.alice.address, 750]
    assert items.functions.royaltyInfo(1, 1 * ETH).call() == [chain.alice.address, ETH * 75 // 1000]
    assert items.functions.royaltyInfo(2, 10_000).call() == [ZERO, 0]
    assert items.functions.royaltyInfo(99, 10_000).call() == [ZERO, 0]
    cap = items.functions.MAX_ROYALTY_BPS().call()
    assert cap == 1000
    chain.transact(items.functions.registerItem("ipfs://c", cap, 0), chain.bob)
    with chain.reverts(items, "FluxItemsRoyaltyTooHigh"):
        chain.transact(items.functions.registerItem("ipfs://d", cap + 1, 0), chain.bob)
    with chain.reverts(items, "FluxItemsBadUri"):
        chain.transact(items.functions.registerItem("", 0, 0), chain.bob)
    with chain.reverts(items, "FluxItemsBadUri"):
        chain.transact(items.functions.registerItem("x" * 257, 0, 0), chain.bob)

    assert items.functions.supportsInterface(bytes.fromhex("d9b67a26")).call()  # ERC-1155
    assert items.functions.supportsInterface(bytes.fromhex("0e89341c")).call()  # metadata URI
    assert items.functions.supportsInterface(iface(["royaltyInfo(uint256,uint256)"])).call()
    assert items.functions.supportsInterface(bytes.fromhex("2a55205a")).call()  # ERC-2981
    assert items.functions.supportsInterface(bytes.fromhex("01ffc9a7")).call()  # ERC-165
    assert not items.functions.supportsInterface(bytes.fromhex("80ac58cd")).call()
    assert not items.functions.supportsInterface(bytes.fromhex("ffffffff")).call()


# -- FluxTickets -------------------------------------------------------------------------------


def land_key(token: int) -> bytes:
    return keccak(text=f"land:{token}")


def personal_key(owner: str, slug: str) -> bytes:
    return keccak(text=f"{owner.lower()}/{slug}")


def new_type(
    chain: Chain,
    *,
    owner: Any = None,
    land: int | None = 42,
    slug: str = "my-world",
    lifetime: int = 3600,
    price: int = 10**16,
    capacity: int = 100,
    transferable: bool = False,
) -> int:
    """Create a ticket type (minting land `land` to `owner` first if needed); its id."""
    owner = owner or chain.alice
    tickets = chain.tickets
    expires = chain.now() + lifetime
    if land is not None:
        if chain.land.functions.balanceOf(owner.address).call() == 0:
            chain.transact(chain.land.functions.mint(owner.address, land), chain.deployer)
        call = tickets.functions.createLandTicketType(land, expires, price, capacity, transferable)
    else:
        call = tickets.functions.createPersonalTicketType(
            slug, expires, price, capacity, transferable
        )
    receipt = chain.transact(call, owner)
    (event,) = tickets.events.TicketTypeCreated().process_receipt(receipt)
    return int(event["args"]["ticketId"])


def test_world_keys(chain: Chain) -> None:
    tickets = chain.tickets
    assert tickets.functions.landWorldKey(42).call() == land_key(42)
    assert tickets.functions.landWorldKey(0).call() == land_key(0)
    assert tickets.functions.landWorldKey(2**256 - 1).call() == land_key(2**256 - 1)
    owner = chain.alice.address  # checksummed: the key uses its lower-case form
    assert tickets.functions.personalWorldKey(owner, "my-world").call() == personal_key(
        owner, "my-world"
    )
    for bad in ["", "-x", "My-World", "a/b", "a b", "a" * 64, "é"]:
        with pytest.raises(ContractLogicError):
            tickets.functions.personalWorldKey(owner, bad).call()
    assert tickets.functions.personalWorldKey(owner, "a" * 63).call() == personal_key(
        owner, "a" * 63
    )


def test_ticket_type_creation(chain: Chain) -> None:
    tickets = chain.tickets
    chain.transact(chain.land.functions.mint(chain.alice.address, 42), chain.deployer)
    expires = chain.now() + 3600
    receipt = chain.transact(
        tickets.functions.createLandTicketType(42, expires, 5 * 10**15, 10, True), chain.alice
    )
    (event,) = tickets.events.TicketTypeCreated().process_receipt(receipt)
    assert dict(event["args"]) == {
        "ticketId": 1,
        "worldKey": land_key(42),
        "owner": chain.alice.address,
        "expiresAt": expires,
        "price": 5 * 10**15,
        "capacity": 10,
        "transferable": True,
    }
    assert tickets.functions.ticketType(1).call() == [
        land_key(42),
        chain.alice.address,
        expires,
        5 * 10**15,
        10,
        0,
        True,
    ]
    assert tickets.functions.land().call() == chain.land.address

    # Only the land's owner or its approved operators create types for "land:42".
    with chain.reverts(tickets, "FluxTicketsNotLandOperator"):
        chain.transact(
            tickets.functions.createLandTicketType(42, expires, 0, 10, True), chain.mallory
        )
    with pytest.raises(ContractLogicError):  # no such land: FluxLand's own revert
        chain.transact(tickets.functions.createLandTicketType(7, expires, 0, 1, True), chain.alice)
    chain.transact(chain.land.functions.approve(chain.bob.address, 42), chain.alice)
    receipt = chain.transact(
        tickets.functions.createLandTicketType(42, expires, 0, 1, False), chain.bob
    )
    (event,) = tickets.events.TicketTypeCreated().process_receipt(receipt)
    assert event["args"]["owner"] == chain.bob.address  # the caller is the payee

    # Personal worlds: anyone, for "<own address>/<slug>".
    receipt = chain.transact(
        tickets.functions.createPersonalTicketType("party", expires, 0, 5, False), chain.mallory
    )
    (event,) = tickets.events.TicketTypeCreated().process_receipt(receipt)
    assert event["args"]["worldKey"] == personal_key(chain.mallory.address, "party")
    assert tickets.functions.ticketTypesOf(land_key(42)).call() == [1, 2]
    assert tickets.functions.ticketTypesOf(personal_key(chain.mallory.address, "party")).call() == [
        3
    ]
    assert tickets.functions.lastTicketId().call() == 3

    with chain.reverts(tickets, "FluxTicketsBadExpiry"):
        chain.transact(
            tickets.functions.createLandTicketType(42, chain.now(), 0, 1, True), chain.alice
        )
    with chain.reverts(tickets, "FluxTicketsZeroCapacity"):
        chain.transact(tickets.functions.createLandTicketType(42, expires, 0, 0, True), chain.alice)
    with chain.reverts(tickets, "FluxTicketsBadSlug"):
        chain.transact(
            tickets.functions.createPersonalTicketType("Bad", expires, 0, 1, True), chain.alice
        )
    with pytest.raises(ContractLogicError):
        tickets.functions.ticketType(99).call()


def test_buy_pays_world_owner_exactly(chain: Chain) -> None:
    tickets = chain.tickets
    price = 3 * 10**16
    ticket = new_type(chain, price=price)
    owner_before = chain.balance(chain.alice.address)
    buyer_before = chain.balance(chain.bob.address)
    receipt = chain.transact(tickets.functions.buy(ticket), chain.bob, value=price)
    assert chain.balance(chain.alice.address) - owner_before == price
    gas = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert buyer_before - chain.balance(chain.bob.address) == price + gas
    assert chain.balance(tickets.address) == 0  # nothing stays in the contract
    # Each event decoder skips the receipt's other event (DISCARD: no warning about it).
    (event,) = tickets.events.TicketPurchased().process_receipt(receipt, errors=DISCARD)
    assert dict(event["args"]) == {"ticketId": ticket, "buyer": chain.bob.address, "price": price}
    (minted,) = tickets.events.TransferSingle().process_receipt(receipt, errors=DISCARD)
    assert minted["args"]["from"] == ZERO
    assert minted["args"]["to"] == chain.bob.address
    assert tickets.functions.balanceOf(chain.bob.address, ticket).call() == 1
    assert tickets.functions.isValid(chain.bob.address, ticket).call()
    assert not tickets.functions.isValid(chain.carol.address, ticket).call()
    assert tickets.functions.ticketType(ticket).call()[5] == 1  # sold


def test_buy_wrong_value_reverts(chain: Chain) -> None:
    tickets = chain.tickets
    price = 10**16
    ticket = new_type(chain, price=price)
    for value in (0, price - 1, price + 1, 2 * price):
        with chain.reverts(tickets, "FluxTicketsWrongPayment"):
            chain.transact(tickets.functions.buy(ticket), chain.bob, value=value)
    with chain.reverts(tickets, "FluxTicketsUnknownType"):
        chain.transact(tickets.functions.buy(99), chain.bob, value=price)
    assert tickets.functions.balanceOf(chain.bob.address, ticket).call() == 0

    free = new_type(chain, price=0)
    before = chain.balance(chain.alice.address)
    chain.transact(tickets.functions.buy(free), chain.bob)
    assert chain.balance(chain.alice.address) == before
    assert tickets.functions.isValid(chain.bob.address, free).call()


def test_capacity(chain: Chain) -> None:
    tickets = chain.tickets
    ticket = new_type(chain, price=1, capacity=2)
    chain.transact(tickets.functions.buy(ticket), chain.bob, value=1)
    chain.transact(tickets.functions.buy(ticket), chain.bob, value=1)  # one holder, two tickets
    with chain.reverts(tickets, "FluxTicketsSoldOut"):
        chain.transact(tickets.functions.buy(ticket), chain.carol, value=1)
    assert tickets.functions.balanceOf(chain.bob.address, ticket).call() == 2
    assert tickets.functions.ticketType(ticket).call()[4:6] == [2, 2]


def test_expiry(chain: Chain) -> None:
    tickets = chain.tickets
    ticket = new_type(chain, price=0, lifetime=1000)
    expires = tickets.functions.ticketType(ticket).call()[2]
    chain.transact(tickets.functions.buy(ticket), chain.bob)
    assert tickets.functions.isValid(chain.bob.address, ticket).call()
    assert tickets.functions.validTicketsOf(chain.bob.address, land_key(42)).call() == [ticket]

    chain.mine_at(expires - 1)  # last second of validity
    assert tickets.functions.isValid(chain.bob.address, ticket).call()
    chain.mine_at(expires)  # valid while block.timestamp < expiresAt
    assert not tickets.functions.isValid(chain.bob.address, ticket).call()
    assert tickets.functions.validTicketsOf(chain.bob.address, land_key(42)).call() == []
    with chain.reverts(tickets, "FluxTicketsExpired"):
        chain.transact(tickets.functions.buy(ticket), chain.carol)

    # evm_increaseTime works the same way.
    later = new_type(chain, price=0, lifetime=600)
    chain.transact(tickets.functions.buy(later), chain.bob)
    rpc(chain.w3, "evm_increaseTime", 601)
    rpc(chain.w3, "evm_mine")
    assert not tickets.functions.isValid(chain.bob.address, later).call()


def test_non_transferable(chain: Chain) -> None:
    tickets = chain.tickets
    ticket = new_type(chain, price=0, transferable=False)
    chain.transact(tickets.functions.buy(ticket), chain.bob)
    with chain.reverts(tickets, "FluxTicketsNonTransferable"):
        chain.transact(
            tickets.functions.safeTransferFrom(
                chain.bob.address, chain.carol.address, ticket, 1, b""
            ),
            chain.bob,
        )
    with chain.reverts(tickets, "FluxTicketsNonTransferable"):
        chain.transact(
            tickets.functions.safeBatchTransferFrom(
                chain.bob.address, chain.carol.address, [ticket], [1], b""
            ),
            chain.bob,
        )
    # An approved operator cannot move it either.
    chain.transact(tickets.functions.setApprovalForAll(chain.carol.address, True), chain.bob)
    with chain.reverts(tickets, "FluxTicketsNonTransferable"):
        chain.transact(
            tickets.functions.safeTransferFrom(
                chain.bob.address, chain.carol.address, ticket, 1, b""
            ),
            chain.carol,
        )
    assert tickets.functions.isValid(chain.bob.address, ticket).call()


def test_transferable_moves_validity(chain: Chain) -> None:
    tickets = chain.tickets
    ticket = new_type(chain, price=0, transferable=True)
    chain.transact(tickets.functions.buy(ticket), chain.bob)
    chain.transact(
        tickets.functions.safeTransferFrom(chain.bob.address, chain.carol.address, ticket, 1, b""),
        chain.bob,
    )
    assert not tickets.functions.isValid(chain.bob.address, ticket).call()
    assert tickets.functions.isValid(chain.carol.address, ticket).call()
    key = land_key(42)
    assert tickets.functions.validTicketsOf(chain.bob.address, key).call() == []
    assert tickets.functions.validTicketsOf(chain.carol.address, key).call() == [ticket]


def test_valid_tickets_of(chain: Chain) -> None:
    tickets = chain.tickets
    short = new_type(chain, price=0, lifetime=100)
    long = new_type(chain, price=0, lifetime=10_000, transferable=True)
    unbought = new_type(chain, price=0)
    personal = new_type(chain, land=None, slug="gallery", price=0)
    for t in (short, long, personal):
        chain.transact(tickets.functions.buy(t), chain.bob)
    key = land_key(42)
    assert tickets.functions.ticketTypesOf(key).call() == [short, long, unbought]
    assert tickets.functions.validTicketsOf(chain.bob.address, key).call() == [short, long]
    assert tickets.functions.validTicketsOf(chain.carol.address, key).call() == []
    gallery = personal_key(chain.alice.address, "gallery")
    assert tickets.functions.validTicketsOf(chain.bob.address, gallery).call() == [personal]
    assert tickets.functions.validTicketsOf(chain.bob.address, land_key(43)).call() == []

    chain.mine_at(chain.now() + 101)
    assert tickets.functions.validTicketsOf(chain.bob.address, key).call() == [long]

    # A stranger cannot add a ticket that would count for alice's worlds: his personal world
    # has a different key, and he may not create types for her land.
    spoof = new_type(chain, owner=chain.mallory, land=None, slug="gallery", price=0)
    chain.transact(tickets.functions.buy(spoof), chain.carol)
    assert tickets.functions.validTicketsOf(chain.carol.address, gallery).call() == []
    assert tickets.functions.validTicketsOf(chain.carol.address, key).call() == []


def test_world_list_bound_drops_expired(chain: Chain) -> None:
    tickets = chain.tickets
    limit = tickets.functions.MAX_TYPES_PER_WORLD().call()
    assert limit == 256
    chain.transact(chain.land.functions.mint(chain.alice.address, 42), chain.deployer)
    expires = chain.now() + 100
    # Fill the list quickly: one block of raw transactions with consecutive nonces.
    rpc(chain.w3, "evm_setAutomine", False)
    nonce = chain.w3.eth.get_transaction_count(chain.alice.address)
    call = tickets.functions.createLandTicketType(42, expires, 0, 1, False)
    template = call.build_transaction({"from": chain.alice.address, "nonce": nonce})
    hashes = []
    for i in range(limit):
        tx = dict(template, nonce=nonce + i)
        signed = chain.alice.sign_transaction(cast(Any, tx))
        hashes.append(chain.w3.eth.send_raw_transaction(signed.raw_transaction))
    rpc(chain.w3, "evm_mine")
    rpc(chain.w3, "evm_setAutomine", True)
    assert all(chain.w3.eth.get_transaction_receipt(h)["status"] == 1 for h in hashes)
    assert len(tickets.functions.ticketTypesOf(land_key(42)).call()) == limit

    with chain.reverts(tickets, "FluxTicketsWorldFull"):
        chain.transact(
            tickets.functions.createLandTicketType(42, expires + 50, 0, 1, False), chain.alice
        )
    # Other worlds are unaffected; once the old types expire they make room.
    new_type(chain, owner=chain.bob, land=None, slug="elsewhere")
    chain.mine_at(expires)
    fresh = new_type(chain, lifetime=100)
    assert tickets.functions.ticketTypesOf(land_key(42)).call() == [fresh]


def test_payment_failure_reverts_purchase(chain: Chain) -> None:
    """A payee that refuses ether makes buy() revert, leaving nothing sold or minted."""
    tickets = chain.tickets
    payee = chain.items.address  # a contract without receive()/fallback
    rpc(chain.w3, "anvil_impersonateAccount", payee)
    rpc(chain.w3, "anvil_setBalance", payee, hex(ETH))
    try:
        expires = chain.now() + 3600
        data = tickets.encode_abi("createPersonalTicketType", ["shop", expires, 100, 5, False])
        tx_hash = chain.w3.eth.send_transaction(
            {"from": payee, "to": tickets.address, "data": data}
        )
        assert chain.w3.eth.wait_for_transaction_receipt(tx_hash)["status"] == 1
    finally:
        rpc(chain.w3, "anvil_stopImpersonatingAccount", payee)
    ticket = tickets.functions.lastTicketId().call()
    assert tickets.functions.ticketType(ticket).call()[1] == payee
    with chain.reverts(tickets, "FluxTicketsPaymentFailed"):
        chain.transact(tickets.functions.buy(ticket), chain.bob, value=100)
    assert tickets.functions.ticketType(ticket).call()[5] == 0
    assert tickets.functions.balanceOf(chain.bob.address, ticket).call() == 0


# -- TestWallet1271 ----------------------------------------------------------------------------

MAGIC = bytes.fromhex("1626ba7e")
INVALID = bytes.fromhex("ffffffff")


def test_erc1271_wallet(chain: Chain) -> None:
    wallet = chain.deploy("TestWallet1271", chain.alice.address)
    assert wallet.functions.owner().call() == chain.alice.address
    message = encode_defunct(text="flux.example wants you to sign in with your Ethereum account")
    digest = _hash_eip191_message(message)

    # The owner's personal_sign signature over the message verifies against its EIP-191 hash.
    good = chain.alice.sign_message(message).signature
    assert wallet.functions.isValidSignature(digest, good).call() == MAGIC
    raw = Account.unsafe_sign_hash(digest, chain.alice.key).signature
    assert raw == good

    # Another key, another hash, or garbage: the non-magic value, never a revert.
    other = chain.mallory.sign_message(message).signature
    assert wallet.functions.isValidSignature(digest, other).call() == INVALID
    assert wallet.functions.isValidSignature(keccak(b"other"), good).call() == INVALID
    assert wallet.functions.isValidSignature(digest, b"\x01" * 65).call() == INVALID
    assert wallet.functions.isValidSignature(digest, b"").call() == INVALID
    assert wallet.functions.isValidSignature(digest, good[:64]).call() == INVALID
