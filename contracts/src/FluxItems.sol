// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";
import {ERC2981} from "@openzeppelin/contracts/token/common/ERC2981.sol";

/// @title Flux Items: ERC-1155 in-world items with per-item creators and ERC-2981 royalties.
/// @notice Anyone registers an item (metadata URI, royalty, optional supply cap) and becomes its
/// creator; only the creator mints it. Royalties are paid (by marketplaces honouring ERC-2981)
/// to the creator. Item ids start at 1 and are assigned in registration order.
contract FluxItems is ERC1155, ERC2981 {
    /// Highest royalty in basis points (10%).
    uint96 public constant MAX_ROYALTY_BPS = 1000;
    /// Longest accepted metadata URI in bytes.
    uint256 public constant MAX_URI_LENGTH = 256;

    struct Item {
        address creator;
        uint96 royaltyBps;
        uint256 maxSupply; // 0 = unlimited
        uint256 minted;
        string uri;
    }

    mapping(uint256 itemId => Item) private _items;
    uint256 private _lastItemId;

    event ItemRegistered(
        uint256 indexed itemId, address indexed creator, string uri, uint96 royaltyBps, uint256 maxSupply
    );

    error FluxItemsUnknownItem(uint256 itemId);
    error FluxItemsNotCreator(uint256 itemId, address caller);
    error FluxItemsRoyaltyTooHigh(uint96 royaltyBps);
    error FluxItemsBadUri(uint256 length);
    error FluxItemsMaxSupplyExceeded(uint256 itemId, uint256 maxSupply, uint256 wouldBe);
    error FluxItemsZeroAmount();

    constructor() ERC1155("") {}

    /// Register a new item; the caller becomes its creator and royalty receiver.
    function registerItem(string calldata itemUri, uint96 royaltyBps, uint256 maxSupply)
        external
        returns (uint256 itemId)
    {
        uint256 len = bytes(itemUri).length;
        if (len == 0 || len > MAX_URI_LENGTH) revert FluxItemsBadUri(len);
        if (royaltyBps > MAX_ROYALTY_BPS) revert FluxItemsRoyaltyTooHigh(royaltyBps);
        itemId = ++_lastItemId;
        address creator = _msgSender();
        _items[itemId] =
            Item({creator: creator, royaltyBps: royaltyBps, maxSupply: maxSupply, minted: 0, uri: itemUri});
        if (royaltyBps > 0) _setTokenRoyalty(itemId, creator, royaltyBps);
        emit ItemRegistered(itemId, creator, itemUri, royaltyBps, maxSupply);
    }

    /// Mint `amount` of `itemId` to `to`; only the item's creator, never past its maxSupply.
    function mint(uint256 itemId, address to, uint256 amount) external {
        Item storage item = _items[itemId];
        if (item.creator == address(0)) revert FluxItemsUnknownItem(itemId);
        if (item.creator != _msgSender()) revert FluxItemsNotCreator(itemId, _msgSender());
        if (amount == 0) revert FluxItemsZeroAmount();
        uint256 minted = item.minted + amount;
        if (item.maxSupply != 0 && minted > item.maxSupply) {
            revert FluxItemsMaxSupplyExceeded(itemId, item.maxSupply, minted);
        }
        item.minted = minted;
        _mint(to, itemId, amount, "");
    }

    /// Creator, royalty (bps), supply cap (0 = unlimited) and amount minted so far of `itemId`.
    function itemInfo(uint256 itemId)
        external
        view
        returns (address creator, uint96 royaltyBps, uint256 maxSupply, uint256 minted)
    {
        Item storage item = _items[itemId];
        if (item.creator == address(0)) revert FluxItemsUnknownItem(itemId);
        return (item.creator, item.royaltyBps, item.maxSupply, item.minted);
    }

    /// Id of the most recently registered item (0 before the first).
    function lastItemId() external view returns (uint256) {
        return _lastItemId;
    }

    /// Metadata URI of `itemId`, as registered; reverts for unknown items.
    function uri(uint256 itemId) public view override returns (string memory) {
        Item storage item = _items[itemId];
        if (item.creator == address(0)) revert FluxItemsUnknownItem(itemId);
        return item.uri;
    }

    function supportsInterface(bytes4 interfaceId) public view override(ERC1155, ERC2981) returns (bool) {
        return super.supportsInterface(interfaceId);
    }
}
