// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title Flux Land: one ERC-721 token per land parcel, each pointing at its current world.
/// @notice Minters (MINTER_ROLE) create parcels. The parcel's owner, or an operator the owner
/// approved for it (`approve`) or for all its tokens (`setApprovalForAll`), sets the world the
/// parcel hosts: an IPFS CID string of the world package. The record stays with the parcel when
/// it is transferred; the new owner replaces it with `setWorld`.
contract FluxLand is ERC721, AccessControl {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// Longest accepted world CID in bytes (a CIDv1 base32 sha2-256 string is 59 bytes).
    uint256 public constant MAX_CID_LENGTH = 128;

    mapping(uint256 tokenId => string worldCid) private _worlds;

    event WorldSet(uint256 indexed tokenId, string worldCid, address indexed by);

    /// `caller` is neither the owner of `tokenId` nor approved for it.
    error FluxLandNotAuthorized(uint256 tokenId, address caller);
    /// The world CID is longer than MAX_CID_LENGTH bytes.
    error FluxLandCidTooLong(uint256 length);

    constructor() ERC721("Flux Land", "FLAND") {
        _grantRole(DEFAULT_ADMIN_ROLE, _msgSender());
        _grantRole(MINTER_ROLE, _msgSender());
    }

    /// Mint parcel `tokenId` to `to` (a contract recipient must accept ERC-721 tokens).
    function mint(address to, uint256 tokenId) external onlyRole(MINTER_ROLE) {
        _safeMint(to, tokenId);
    }

    /// Set the world hosted on `tokenId`; an empty string clears it.
    function setWorld(uint256 tokenId, string calldata worldCid) external {
        address owner = _requireOwned(tokenId);
        if (!_isAuthorized(owner, _msgSender(), tokenId)) {
            revert FluxLandNotAuthorized(tokenId, _msgSender());
        }
        if (bytes(worldCid).length > MAX_CID_LENGTH) {
            revert FluxLandCidTooLong(bytes(worldCid).length);
        }
        _worlds[tokenId] = worldCid;
        emit WorldSet(tokenId, worldCid, _msgSender());
    }

    /// The world CID of `tokenId` ("" if none was set); reverts if the token does not exist.
    function worldOf(uint256 tokenId) external view returns (string memory) {
        _requireOwned(tokenId);
        return _worlds[tokenId];
    }

    function supportsInterface(bytes4 interfaceId)
        public
        view
        override(ERC721, AccessControl)
        returns (bool)
    {
        return super.supportsInterface(interfaceId);
    }
}
