// unixfs-add.mjs --cid-version 0|1 [--car OUT.car | --blockstore DIR] PATH
//
// Imports a file, or a directory tree, with ipfs-unixfs-importer using Kubo's classic `ipfs add`
// defaults and prints {"cid", "blocks", ...}. Like `ipfs add -r PATH`, entry paths are relative
// to PATH's parent, so the root entry is PATH itself.
//
// Blocks are kept nowhere by default (only counted), streamed to a CARv1 with --car, or stored
// with --blockstore in Helia's file-per-block store blockstore-fs at DIR (created if missing):
// one file per block, DIR/XY/B<base32 multihash>.data with XY the name's last two characters,
// written to a temp file and renamed, never fsynced (a caller that wants them durable syncs
// DIR itself). Each distinct block is written once per run (Helia's own put also skips a block
// its store has; blockstore-fs alone renames a new copy over it), and the empty-directory block
// the importer persists for every directory entry is written only when the DAG links to it
// (see candidates), so the store holds exactly the DAG's blocks.
//
// Kubo defaults (the importer's 'unixfs-v0-2015' profile, spelled out here so that
// `--cid-version 1` keeps the same chunker and layout, as `ipfs add --cid-version=1` does):
//   fixed-size chunker 262144 bytes, balanced layout with maxChildrenPerNode 174,
//   reduceSingleLeafToSelf true (the importer default),
//   v0: cidVersion 0 + rawLeaves false;  v1: cidVersion 1 + rawLeaves true.
// Directories: the importer's default HAMT sharding threshold, shardSplitThresholdBytes =
// 262144 with shardSplitStrategy 'links-bytes' (estimate = sum of link name bytes + CID bytes,
// as go-unixfsnode does); see node_modules/ipfs-unixfs-importer/dist/src/constants.js.

import { createReadStream, createWriteStream } from 'node:fs'
import { lstat, open, readdir } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { CarWriter } from '@ipld/car/writer'
import * as dagPb from '@ipld/dag-pb'
import { BaseBlockstore } from 'blockstore-core/base'
import { FsBlockstore } from 'blockstore-fs'
import { UnixFS } from 'ipfs-unixfs'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { run, UsageError } from './common.mjs'

const CHUNK_SIZE = 262144
const MAX_CHILDREN_PER_NODE = 174
// Importer defaults, not passed (reported so tests can see what the reference used).
const SHARD_SPLIT_THRESHOLD_BYTES = 262144
const SHARD_SPLIT_STRATEGY = 'links-bytes'

function parseArgs (argv) {
  let cidVersion = null
  let car = null
  let store = null
  let chunkSize = CHUNK_SIZE
  const rest = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--cid-version') cidVersion = argv[++i]
    else if (a.startsWith('--cid-version=')) cidVersion = a.slice('--cid-version='.length)
    else if (a === '--car') car = argv[++i]
    else if (a === '--chunk-size') chunkSize = Number(argv[++i])
    else if (a.startsWith('--car=')) car = a.slice('--car='.length)
    else if (a === '--blockstore') store = argv[++i]
    else if (a.startsWith('--blockstore=')) store = a.slice('--blockstore='.length)
    else if (a === '--') {
      rest.push(...argv.slice(i + 1))
      break
    }
    else if (a.startsWith('--')) throw new UsageError(`unknown option ${a}`)
    else rest.push(a)
  }
  if (cidVersion !== '0' && cidVersion !== '1') throw new UsageError('need --cid-version 0|1')
  if (rest.length !== 1) {
    throw new UsageError('usage: unixfs-add.mjs --cid-version 0|1 [--car OUT.car | --blockstore DIR] PATH')
  }
  if (car === undefined || car === '') throw new UsageError('--car needs a file name')
  if (store === undefined || store === '') throw new UsageError('--blockstore needs a directory')
  if (car != null && store != null) throw new UsageError('--car and --blockstore exclude each other')
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new UsageError('--chunk-size must be a positive integer')
  return { cidVersion: Number(cidVersion), car, store, path: rest[0], chunkSize }
}

/** Importer entries, pre-order: every directory gets an entry of its own, before its contents,
 * as Helia's globSource/addAll feeds the importer. (The order matters beyond tree building: the
 * importer's HAMT estimate counts a sub-directory entry's name + CID while it is an empty-dir
 * node and 0 once children turn it into a pending directory, so yielding only empty
 * directories changes which directories shard near the threshold.) Each directory entry makes
 * the importer persist an empty-directory block; SinkBlockstore keeps that one out of the
 * count, the CAR and the store unless the tree really has an empty directory. */
async function * candidates (abs, rel, walk) {
  const st = await lstat(abs)
  if (st.isFile()) {
    yield { path: rel, content: createReadStream(abs, { highWaterMark: CHUNK_SIZE }) }
  } else if (st.isDirectory()) {
    yield { path: rel }
    const names = (await readdir(abs)).sort()
    if (names.length === 0) walk.hasEmptyDir = true
    for (const name of names) {
      yield * candidates(join(abs, name), `${rel}/${name}`, walk)
    }
  } else {
    throw new Error(`${abs}: not a regular file or directory`)
  }
}

/** Counts distinct blocks and passes each one once to a CAR writer and/or a blockstore (either
 * may be null: then it keeps nothing). The empty-directory block is held back (see candidates)
 * and added by finish() only when the DAG links to it. */
class SinkBlockstore extends BaseBlockstore {
  constructor (writer, store, emptyDirCid) {
    super()
    this.writer = writer
    this.store = store
    this.emptyDirKey = emptyDirCid.toString()
    this.emptyDir = null
    this.seen = new Set()
  }

  async put (cid, val) {
    const key = cid.toString()
    if (key === this.emptyDirKey) {
      this.emptyDir ??= { cid, bytes: val instanceof Uint8Array ? val : await concat(val) }
      return cid
    }
    if (this.seen.has(key)) return cid
    this.seen.add(key)
    if (this.writer != null || this.store != null) {
      const bytes = val instanceof Uint8Array ? val : await concat(val)
      if (this.writer != null) await this.writer.put({ cid, bytes })
      if (this.store != null) await this.store.put(cid, bytes)
    }
    return cid
  }

  has (cid) {
    return this.seen.has(cid.toString())
  }

  async finish (linked) {
    if (!linked || this.emptyDir == null) return
    this.seen.add(this.emptyDirKey)
    if (this.writer != null) await this.writer.put(this.emptyDir)
    if (this.store != null) await this.store.put(this.emptyDir.cid, this.emptyDir.bytes)
  }
}

async function concat (chunks) {
  const parts = []
  for await (const c of chunks) parts.push(c)
  return Buffer.concat(parts)
}

async function main (argv) {
  const { cidVersion, car, store, path, chunkSize } = parseArgs(argv)
  const abs = resolve(path)
  const name = basename(abs)

  let writer = null
  let written = null
  let placeholder = null
  if (car != null) {
    // The root is known only at the end: write a placeholder root of the same encoded length
    // and patch the header in place afterwards (CarWriter.updateRootsInFile checks the length).
    // v0 roots are 34 bytes; v1 roots here are sha2-256 with a one-byte codec (dag-pb or raw),
    // 36 bytes.
    const digest = await sha256.digest(new Uint8Array(0))
    placeholder = cidVersion === 0 ? CID.createV0(digest) : CID.createV1(raw.code, digest)
    const { writer: w, out } = CarWriter.create([placeholder])
    writer = w
    written = pipeline(Readable.from(out), createWriteStream(car))
    written.catch(() => {}) // awaited below; avoid an unhandled rejection meanwhile
  }

  const emptyDirCid = CID.create(cidVersion, dagPb.code, await sha256.digest(
    dagPb.encode({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: [] })))
  let fsStore = null
  if (store != null) {
    fsStore = new FsBlockstore(store)
    await fsStore.open()
  }
  const blockstore = new SinkBlockstore(writer, fsStore, emptyDirCid)
  const walk = { hasEmptyDir: false }
  let root = null
  for await (const entry of importer(candidates(abs, name, walk), blockstore, {
    cidVersion,
    rawLeaves: cidVersion === 1,
    chunker: fixedSize({ chunkSize }),
    layout: balanced({ maxChildrenPerNode: MAX_CHILDREN_PER_NODE }),
    reduceSingleLeafToSelf: true
  })) {
    if (entry.path === name) root = entry.cid
  }
  if (root == null) throw new Error(`importer yielded no root entry for ${name}`)
  await blockstore.finish(walk.hasEmptyDir)
  if (fsStore != null) await fsStore.close()

  if (writer != null) {
    await writer.close()
    await written
    if (!root.equals(placeholder)) {
      const fd = await open(car, 'r+')
      try {
        await CarWriter.updateRootsInFile(fd, [root])
      } finally {
        await fd.close()
      }
    }
  }

  return {
    cid: root.toString(),
    blocks: blockstore.seen.size,
    codec: root.code === dagPb.code ? 'dag-pb' : root.code === raw.code ? 'raw' : root.code,
    chunkSize,
    maxChildrenPerNode: MAX_CHILDREN_PER_NODE,
    rawLeaves: cidVersion === 1,
    shardSplitThresholdBytes: SHARD_SPLIT_THRESHOLD_BYTES,
    shardSplitStrategy: SHARD_SPLIT_STRATEGY
  }
}

run(main)
