// Wallets and the entry proof: the ONE Sign-In with Ethereum message a visitor's wallet signs
// to name this tab's session key (fluxnode.core.session.entry.build_entry_message).
//
// Two wallets:
// - an injected EIP-1193 provider (window.ethereum: MetaMask, Rabby, a test harness):
//   eth_requestAccounts, then personal_sign of the message text;
// - a "dev wallet" on test chains only (DEV_CHAINS): a secp256k1 key made in the page and kept
//   in localStorage under DEV_KEY_STORAGE, signing with viem. It holds nothing of value and is
//   offered only when the node's Challenge names a test chain, so nobody is led to type or keep
//   a real key in a web page.
import { ed25519, generatePrivateKey, getAddress, privateKeyToAccount } from "./vendor/vendor.js";

export const ENTRY_STATEMENT = "Enter Flux worlds with a session key held by this app.";
export const SESSION_KEY_PREFIX = "urn:flux:session-key:ed25519:";
export const POSSESSION_HEADER = "Flux session possession v1\n";
// Test chains: local anvil/hardhat (31337), geth/ganache dev (1337), Polygon Amoy (80002),
// Ethereum Sepolia (11155111). Never a main network.
export const DEV_CHAINS = new Set([1337, 31337, 80002, 11155111]);
export const DEV_KEY_STORAGE = "flux.devWallet.v1";
const LIFETIME_S = 3600; // like fluxnode.client: an hour, far below the 24 h ceiling

const utf8 = new TextEncoder();

export function b64url(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

export function fromB64url(text) {
  const s = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

const hex = (bytes) => "0x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

export function fromHex(text) {
  const h = text.startsWith("0x") ? text.slice(2) : text;
  if (h.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(h)) throw new Error("not hex");
  return Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));
}

// This tab's session key: ephemeral, in memory only (a reload makes a new visitor).
export function newSessionKey() {
  const secret = ed25519.utils.randomPrivateKey();
  const publicKey = ed25519.getPublicKey(secret);
  return { secret, publicKey, visitor: b64url(publicKey) };
}

const iso = (seconds) => new Date(seconds * 1000).toISOString();

// The exact text of build_entry_message(...).to_text() for the node's Challenge.
export function entryMessage(challenge, address, sessionPublicKey, nowS) {
  const issued = Math.floor(nowS);
  return [
    `${challenge.domain} wants you to sign in with your Ethereum account:`,
    getAddress(address),
    "",
    ENTRY_STATEMENT,
    "",
    `URI: ${challenge.uri}`,
    "Version: 1",
    `Chain ID: ${challenge.chainId}`,
    `Nonce: ${challenge.nonce}`,
    `Issued At: ${iso(issued)}`,
    `Expiration Time: ${iso(issued + LIFETIME_S)}`,
    "Resources:",
    `- ${SESSION_KEY_PREFIX}${b64url(sessionPublicKey)}`,
  ].join("\n");
}

export function possessionSignature(sessionKey, challengeBytes) {
  const header = utf8.encode(POSSESSION_HEADER);
  const msg = new Uint8Array(header.length + challengeBytes.length);
  msg.set(header);
  msg.set(challengeBytes, header.length);
  return ed25519.sign(msg, sessionKey.secret);
}

export class InjectedWallet {
  constructor(provider) { this.provider = provider; this.kind = "injected"; }
  static available() { return typeof window.ethereum?.request === "function"; }
  async address() {
    const accounts = await this.provider.request({ method: "eth_requestAccounts" });
    if (!Array.isArray(accounts) || accounts.length === 0) throw new Error("the wallet shared no account");
    return getAddress(accounts[0]);
  }
  async signMessage(address, text) {
    // EIP-1193 personal_sign: [message as 0x hex of its UTF-8 bytes, address].
    const sig = await this.provider.request({
      method: "personal_sign", params: [hex(utf8.encode(text)), address],
    });
    return fromHex(sig);
  }
}

export class DevWallet {
  constructor(storage = window.localStorage) {
    let key = storage.getItem(DEV_KEY_STORAGE);
    if (!/^0x[0-9a-f]{64}$/.test(key ?? "")) {
      key = generatePrivateKey();
      storage.setItem(DEV_KEY_STORAGE, key);
    }
    this.account = privateKeyToAccount(key);
    this.kind = "dev";
  }
  async address() { return this.account.address; }
  async signMessage(_address, text) {
    return fromHex(await this.account.signMessage({ message: text }));
  }
}

// Everything a Hello frame needs, signed by `wallet` for `challenge`.
export async function signIn(wallet, sessionKey, challenge, nowS = Date.now() / 1000) {
  const address = await wallet.address();
  const proof = entryMessage(challenge, address, sessionKey.publicKey, nowS);
  const proofSignature = await wallet.signMessage(address, proof);
  return { address, proof, proofSignature,
    possession: possessionSignature(sessionKey, challenge.challenge) };
}
