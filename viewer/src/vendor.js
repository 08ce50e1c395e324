// Entry of gateway/viewer/vendor/vendor.js: the npm code the viewer needs besides three.js.
// Only what is imported here ends up in the bundle (esbuild tree-shakes the rest).
// Hashing and Ed25519 come from @noble (pure JS), not WebCrypto: crypto.subtle exists only in
// secure contexts, and a node's gateway is often plain http on a LAN address.
export { decode as msgpackDecode, encode as msgpackEncode } from "@msgpack/msgpack";
export { CID } from "multiformats/cid";
export { decode as dagPbDecode } from "@ipld/dag-pb";
export { UnixFS } from "ipfs-unixfs";
export { sha256 } from "@noble/hashes/sha2";
export { ed25519 } from "@noble/curves/ed25519";
export { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
export { getAddress, recoverMessageAddress } from "viem";
