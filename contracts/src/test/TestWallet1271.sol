// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title TEST ONLY: a minimal ERC-1271 smart-contract wallet.
/// @notice `isValidSignature(hash, sig)` returns the ERC-1271 magic value 0x1626ba7e iff `sig` is
/// a 65-byte ECDSA signature of `hash` itself (no further prefixing) by `owner`, and 0xffffffff
/// otherwise. For SIWE, `hash` is the EIP-191 personal-message hash of the SIWE text, so the owner
/// signs that hash directly. Never deploy this anywhere but a test chain.
contract TestWallet1271 is IERC1271 {
    bytes4 private constant MAGIC_VALUE = 0x1626ba7e; // IERC1271.isValidSignature.selector
    bytes4 private constant INVALID = 0xffffffff;

    address public immutable owner;

    constructor(address owner_) {
        owner = owner_;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(hash, signature);
        return err == ECDSA.RecoverError.NoError && signer == owner ? MAGIC_VALUE : INVALID;
    }
}
