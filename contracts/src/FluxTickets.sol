// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

/// @title Flux Tickets: paid, expiring, capacity-limited access tickets for worlds and events.
/// @notice Every ticket TYPE is an ERC-1155 token id (ids start at 1). Whoever creates a type is
/// its "world owner" and receives every payment for it. Holding an unexpired ticket of any type
/// listed under a world's key is what a node checks before letting a visitor into a ticketed
/// world (`validTicketsOf`), so only someone entitled to the world may create types for it:
///   - `createLandTicketType(landTokenId, ...)`: the FluxLand token's owner or an operator it
///     approved (for that token or for all), at creation time. World id "land:<tokenId>".
///   - `createPersonalTicketType(slug, ...)`: any address, for its own personal world
///     "<its address as lower-case 0x hex>/<slug>" (slug: [a-z0-9][a-z0-9-]{0,62}).
/// Types stay valid until they expire even if the land changes hands later.
///
/// World keys: `worldKey = keccak256(bytes(worldId))` of the CANONICAL world id string:
/// "land:" + decimal token id without leading zeros (keccak256(bytes("land:42"))), or
/// lower-case "0x" + 40 hex digits + "/" + slug
/// (keccak256(bytes("0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266/my-world"))).
/// `landWorldKey` and `personalWorldKey` compute them on chain.
contract FluxTickets is ERC1155, ReentrancyGuard {
    /// Most ticket types listed under one world key (expired ones are dropped to make room).
    uint256 public constant MAX_TYPES_PER_WORLD = 256;
    /// Longest personal-world slug in bytes.
    uint256 public constant MAX_SLUG_LENGTH = 63;

    /// The FluxLand contract whose token owners may create "land:<id>" ticket types.
    IERC721 public immutable land;

    struct TicketType {
        address owner; // receives payments
        uint64 expiresAt; // unix seconds; valid while block.timestamp < expiresAt
        uint32 capacity;
        uint32 sold;
        bool transferable;
        bytes32 worldKey;
        uint256 price; // wei
    }

    mapping(uint256 ticketId => TicketType) private _types;
    mapping(bytes32 worldKey => uint256[] ticketIds) private _typesOf;
    uint256 private _lastTicketId;

    event TicketTypeCreated(
        uint256 indexed ticketId,
        bytes32 indexed worldKey,
        address indexed owner,
        uint64 expiresAt,
        uint256 price,
        uint32 capacity,
        bool transferable
    );
    event TicketPurchased(uint256 indexed ticketId, address indexed buyer, uint256 price);

    error FluxTicketsUnknownType(uint256 ticketId);
    error FluxTicketsNotLandOperator(uint256 landTokenId, address caller);
    error FluxTicketsBadSlug();
    error FluxTicketsBadExpiry(uint64 expiresAt);
    error FluxTicketsZeroCapacity();
    error FluxTicketsWorldFull(bytes32 worldKey);
    error FluxTicketsExpired(uint256 ticketId, uint64 expiresAt);
    error FluxTicketsSoldOut(uint256 ticketId, uint32 capacity);
    error FluxTicketsWrongPayment(uint256 ticketId, uint256 price, uint256 paid);
    error FluxTicketsPaymentFailed(uint256 ticketId, address owner);
    error FluxTicketsNonTransferable(uint256 ticketId);

    constructor(IERC721 land_) ERC1155("") {
        land = land_;
    }

    /// Create a ticket type for world "land:<landTokenId>"; the caller must own that FluxLand
    /// token or be approved for it, and becomes the type's owner and payee.
    function createLandTicketType(
        uint256 landTokenId,
        uint64 expiresAt,
        uint256 price,
        uint32 capacity,
        bool transferable
    ) external returns (uint256 ticketId) {
        address caller = _msgSender();
        address landOwner = land.ownerOf(landTokenId); // reverts for a token that does not exist
        if (
            caller != landOwner && !land.isApprovedForAll(landOwner, caller)
                && land.getApproved(landTokenId) != caller
        ) {
            revert FluxTicketsNotLandOperator(landTokenId, caller);
        }
        return _create(landWorldKey(landTokenId), expiresAt, price, capacity, transferable);
    }

    /// Create a ticket type for the caller's personal world "<caller>/<slug>"; the caller
    /// becomes the type's owner and payee.
    function createPersonalTicketType(
        string calldata slug,
        uint64 expiresAt,
        uint256 price,
        uint32 capacity,
        bool transferable
    ) external returns (uint256 ticketId) {
        return _create(personalWorldKey(_msgSender(), slug), expiresAt, price, capacity, transferable);
    }

    /// keccak256(bytes("land:<landTokenId>")).
    function landWorldKey(uint256 landTokenId) public pure returns (bytes32) {
        return keccak256(abi.encodePacked("land:", Strings.toString(landTokenId)));
    }

    /// keccak256(bytes("<owner as lower-case 0x hex>/<slug>")); reverts on a malformed slug.
    function personalWorldKey(address owner, string calldata slug) public pure returns (bytes32) {
        bytes calldata b = bytes(slug);
        if (b.length == 0 || b.length > MAX_SLUG_LENGTH || b[0] == "-") revert FluxTicketsBadSlug();
        for (uint256 i = 0; i < b.length; ++i) {
            bytes1 c = b[i];
            if (!((c >= "a" && c <= "z") || (c >= "0" && c <= "9") || c == "-")) revert FluxTicketsBadSlug();
        }
        return keccak256(abi.encodePacked(Strings.toHexString(owner), "/", slug));
    }

    function _create(bytes32 worldKey, uint64 expiresAt, uint256 price, uint32 capacity, bool transferable)
        private
        returns (uint256 ticketId)
    {
        if (expiresAt <= block.timestamp) revert FluxTicketsBadExpiry(expiresAt);
        if (capacity == 0) revert FluxTicketsZeroCapacity();
        uint256[] storage list = _typesOf[worldKey];
        if (list.length >= MAX_TYPES_PER_WORLD) _dropExpired(list);
        if (list.length >= MAX_TYPES_PER_WORLD) revert FluxTicketsWorldFull(worldKey);
        address owner = _msgSender();
        ticketId = ++_lastTicketId;
        _types[ticketId] = TicketType({
            owner: owner,
            expiresAt: expiresAt,
            capacity: capacity,
            sold: 0,
            transferable: transferable,
            worldKey: worldKey,
            price: price
        });
        list.push(ticketId);
        emit TicketTypeCreated(ticketId, worldKey, owner, expiresAt, price, capacity, transferable);
    }

    /// Remove the expired types from a world's list (order is not kept).
    function _dropExpired(uint256[] storage list) private {
        uint256 i = 0;
        while (i < list.length) {
            if (block.timestamp >= _types[list[i]].expiresAt) {
                list[i] = list[list.length - 1];
                list.pop();
            } else {
                ++i;
            }
        }
    }

    /// Buy one ticket of `ticketId` for the caller, paying exactly its price; the payment goes
    /// straight to the type's owner (the whole call reverts if that transfer fails).
    function buy(uint256 ticketId) external payable nonReentrant {
        TicketType storage t = _types[ticketId];
        address owner = t.owner;
        if (owner == address(0)) revert FluxTicketsUnknownType(ticketId);
        if (block.timestamp >= t.expiresAt) revert FluxTicketsExpired(ticketId, t.expiresAt);
        if (t.sold >= t.capacity) revert FluxTicketsSoldOut(ticketId, t.capacity);
        if (msg.value != t.price) revert FluxTicketsWrongPayment(ticketId, t.price, msg.value);
        // Effects first; then the interactions (the ERC-1155 receiver hook, the payment).
        t.sold += 1;
        address buyer = _msgSender();
        emit TicketPurchased(ticketId, buyer, msg.value);
        _mint(buyer, ticketId, 1, "");
        if (msg.value > 0) {
            (bool ok,) = owner.call{value: msg.value}("");
            if (!ok) revert FluxTicketsPaymentFailed(ticketId, owner);
        }
    }

    /// True iff `holder` holds at least one `ticketId` ticket and the type has not expired.
    function isValid(address holder, uint256 ticketId) public view returns (bool) {
        return balanceOf(holder, ticketId) > 0 && block.timestamp < _types[ticketId].expiresAt;
    }

    /// Ticket types listed under `worldKey` that `holder` validly holds right now.
    function validTicketsOf(address holder, bytes32 worldKey) external view returns (uint256[] memory ids) {
        uint256[] storage list = _typesOf[worldKey];
        ids = new uint256[](list.length);
        uint256 n = 0;
        for (uint256 i = 0; i < list.length; ++i) {
            if (isValid(holder, list[i])) ids[n++] = list[i];
        }
        assembly ("memory-safe") {
            mstore(ids, n) // shrink to the valid entries
        }
    }

    /// The ticket types listed under `worldKey` (expired ones may have been dropped).
    function ticketTypesOf(bytes32 worldKey) external view returns (uint256[] memory) {
        return _typesOf[worldKey];
    }

    /// The fields of ticket type `ticketId`; reverts for unknown ids.
    function ticketType(uint256 ticketId)
        external
        view
        returns (
            bytes32 worldKey,
            address owner,
            uint64 expiresAt,
            uint256 price,
            uint32 capacity,
            uint32 sold,
            bool transferable
        )
    {
        TicketType storage t = _types[ticketId];
        if (t.owner == address(0)) revert FluxTicketsUnknownType(ticketId);
        return (t.worldKey, t.owner, t.expiresAt, t.price, t.capacity, t.sold, t.transferable);
    }

    /// Id of the most recently created ticket type (0 before the first).
    function lastTicketId() external view returns (uint256) {
        return _lastTicketId;
    }

    /// Transfers between two holders are refused for non-transferable types (mint stays allowed).
    function _update(address from, address to, uint256[] memory ids, uint256[] memory values)
        internal
        override
    {
        if (from != address(0) && to != address(0)) {
            for (uint256 i = 0; i < ids.length; ++i) {
                if (!_types[ids[i]].transferable) revert FluxTicketsNonTransferable(ids[i]);
            }
        }
        super._update(from, to, ids, values);
    }
}
