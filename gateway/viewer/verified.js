// World content through the gateway's trustless routes, checked in the browser.
//
// Every block comes from GET /ipfs/<cid>?format=raw and is hashed against its CID before it
// is decoded, and files and paths are walked block by block from the world's root CID (UnixFS
// over dag-pb, raw leaves). A gateway that changes one byte anywhere makes the walk fail with
// VerificationError instead of showing a different world. The root CID itself comes from the
// world record, whose owner signature `verifyRecord` checks (for 0x<owner>/<slug> worlds the
// owner is in the world id, so the record needs no other trust), or from a share link that
// pins it (?cid=).
import { CID, UnixFS, dagPbDecode, recoverMessageAddress, sha256 } from "./vendor/vendor.js";

const DAG_PB = 0x70, RAW = 0x55, SHA2_256 = 0x12, IDENTITY = 0x00;
const MAX_BLOCK = 2 << 20; // the node never makes blocks over 1 MiB; Bitswap caps at 2 MiB
const MAX_FILE = 64 << 20; // one asset of a world package
const PARALLEL = 6;

export class VerificationError extends Error {
  constructor(message) { super(message); this.name = "VerificationError"; }
}

export class FetchError extends Error {
  constructor(message, status) { super(message); this.name = "FetchError"; this.status = status; }
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export function checkBlock(cid, bytes) {
  const mh = cid.multihash;
  let digest;
  if (mh.code === SHA2_256) digest = sha256(bytes);
  else if (mh.code === IDENTITY) digest = bytes;
  else throw new VerificationError(`block ${cid}: unsupported hash function 0x${mh.code.toString(16)}`);
  if (!equal(digest, mh.digest)) {
    throw new VerificationError(`block ${cid}: the gateway sent bytes that do not match their CID`);
  }
}

export class VerifiedFetcher {
  constructor(base = "", fetchImpl = (...a) => fetch(...a)) {
    this.base = base;
    this.fetch = fetchImpl;
    this.cache = new Map(); // cid text -> Promise<bytes>: blocks are immutable
    this.stats = { blocks: 0, bytes: 0 };
  }

  block(cid) {
    const key = cid.toString();
    let p = this.cache.get(key);
    if (p === undefined) {
      p = this._block(cid);
      this.cache.set(key, p);
      p.catch(() => this.cache.delete(key));
    }
    return p;
  }

  async _block(cid) {
    if (cid.multihash.code === IDENTITY) return cid.multihash.digest;
    const res = await this.fetch(`${this.base}/ipfs/${cid}?format=raw`,
      { headers: { Accept: "application/vnd.ipld.raw" } });
    if (!res.ok) throw new FetchError(`block ${cid}: the gateway answered ${res.status}`, res.status);
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (bytes.length > MAX_BLOCK) throw new VerificationError(`block ${cid} is over ${MAX_BLOCK} bytes`);
    checkBlock(cid, bytes);
    this.stats.blocks += 1;
    this.stats.bytes += bytes.length;
    return bytes;
  }

  async node(cid) {
    const bytes = await this.block(cid);
    if (cid.code === RAW) return { raw: bytes };
    if (cid.code !== DAG_PB) throw new VerificationError(`block ${cid}: codec 0x${cid.code.toString(16)} is not UnixFS`);
    let pb, fs;
    try {
      pb = dagPbDecode(bytes);
      fs = UnixFS.unmarshal(pb.Data ?? new Uint8Array());
    } catch (e) {
      throw new VerificationError(`block ${cid} is not a UnixFS node: ${e.message}`);
    }
    return { pb, fs };
  }

  // The CID of `path` ("a/b.glb") under the directory `root`.
  async resolve(root, path) {
    let cid = root;
    for (const name of path.split("/").filter((s) => s !== "" && s !== ".")) {
      if (name === "..") throw new VerificationError(`path ${path} leaves the world folder`);
      const n = await this.node(cid);
      if (n.raw !== undefined || n.fs.type !== "directory") {
        const what = n.fs?.type === "hamt-sharded-directory" ? "a sharded folder (not supported here)" : "not a folder";
        throw new FetchError(`${path}: ${cid} is ${what}`, 404);
      }
      const link = n.pb.Links.find((l) => l.Name === name);
      if (link === undefined) throw new FetchError(`${path}: no ${name} in the world folder`, 404);
      cid = link.Hash;
    }
    return cid;
  }

  // A whole file's bytes, every block checked; leaves fetched a few at a time.
  async file(cid) {
    const n = await this.node(cid);
    if (n.raw !== undefined) return n.raw;
    if (n.fs.type !== "file" && n.fs.type !== "raw") throw new FetchError(`${cid} is a ${n.fs.type}, not a file`, 404);
    const size = Number(n.fs.fileSize());
    if (size > MAX_FILE) throw new FetchError(`${cid} is ${size} bytes, over the viewer's ${MAX_FILE}`, 413);
    const parts = [n.fs.data ?? new Uint8Array()];
    const links = n.pb.Links;
    for (let i = 0; i < links.length; i += PARALLEL) {
      parts.push(...await Promise.all(links.slice(i, i + PARALLEL).map((l) => this.file(l.Hash))));
    }
    const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    if (out.length !== size) throw new VerificationError(`${cid}: file is ${out.length} bytes, its root says ${size}`);
    return out;
  }

  async text(root, path) {
    return new TextDecoder("utf-8", { fatal: true }).decode(await this.file(await this.resolve(root, path)));
  }
}

export function parseCid(text) {
  try { return CID.parse(text); }
  catch { throw new VerificationError(`${text} is not a CID`); }
}

// fluxnode.core.world_record.UnsignedRecord.signing_text
export function recordText(r) {
  const when = new Date(r.issued_at * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
  const n = r.access.length;
  return ["Flux world record v1", `world: ${r.world_id}`, `cid: ${r.cid}`, `seq: ${r.seq}`,
    `visibility: ${r.visibility}`, `owner: ${r.owner}`, `issued at: ${when} (${r.issued_at})`,
    n === 0 ? "access: none" : `access: ${n} address${n > 1 ? "es" : ""}`, ...r.access].join("\n");
}

// Check the owner's signature of a world record (its JSON wire form); returns what was checked.
export async function verifyRecord(worldId, r) {
  if (r.world_id !== worldId) throw new VerificationError(`the gateway sent the record of ${r.world_id}, not ${worldId}`);
  let signer;
  try {
    signer = await recoverMessageAddress({ message: recordText(r), signature: r.signature });
  } catch (e) {
    throw new VerificationError(`the world record's signature does not parse: ${e.message}`);
  }
  if (signer.toLowerCase() !== String(r.owner).toLowerCase()) {
    throw new VerificationError("the world record is not signed by its owner");
  }
  const slugOwner = /^(0x[0-9a-f]{40})\//.exec(worldId);
  if (slugOwner && slugOwner[1] !== signer.toLowerCase()) {
    throw new VerificationError(`the world record is signed by ${signer}, not the world's owner ${slugOwner[1]}`);
  }
  // A land:<token> world's owner is whoever holds the land token on chain: not checked here.
  return { cid: parseCid(r.cid), ownerChecked: slugOwner !== null, seq: r.seq };
}
