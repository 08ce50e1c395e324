// Shared helpers for the JS reference scripts (run by tests/interop/jsref.py).
// Every script prints exactly one JSON object on stdout; on error it prints a message on
// stderr and exits non-zero.

import { createReadStream } from 'node:fs'
import { CarBlockIterator } from '@ipld/car/iterator'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { identity } from 'multiformats/hashes/identity'
import { sha256 } from 'multiformats/hashes/sha2'
import { createHash } from 'node:crypto'

/** Run `main`, print its result as one JSON line, map any error to exit code 1. */
export function run (main) {
  let settled = false
  // A promise nobody will ever resolve (e.g. a library generator waiting on an event that never
  // comes) lets Node exit with code 0 and no output: treat that as the error it is.
  process.on('beforeExit', () => {
    if (!settled) {
      process.stderr.write(`${process.argv[1]}: event loop drained with no answer (hung promise)\n`,
        () => process.exit(1))
    }
  })
  main(process.argv.slice(2)).then(
    (result) => {
      settled = true
      // Exit only once the write is flushed: stdout to a pipe is asynchronous, and an early
      // process.exit() truncates large outputs. Exit explicitly rather than wait for the event
      // loop to drain: Helia may leave timers behind.
      process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0))
    },
    (err) => {
      settled = true
      process.stderr.write(`${process.argv[1]}: ${describe(err)}\n`, () => process.exit(err?.exitCode ?? 1))
    }
  )
}

export function describe (err) {
  if (err == null) return 'unknown error'
  let msg = err.message ?? String(err)
  if (err.cause != null && typeof err.cause === 'object') {
    msg += ` (cause: ${describe(err.cause)})`
  }
  if (Array.isArray(err.errors) && err.errors.length > 0) {
    msg += ' [' + err.errors.map(describe).join('; ') + ']'
  }
  return msg
}

export class UsageError extends Error {
  constructor (msg) {
    super(msg)
    this.exitCode = 2
  }
}

/** Check that `bytes` hash to the multihash in `cid` (sha2-256, or identity). Throws if not. */
export async function verifyBlock (cid, bytes) {
  const mh = cid.multihash
  let digest
  if (mh.code === sha256.code) {
    digest = (await sha256.digest(bytes)).digest
  } else if (mh.code === identity.code) {
    digest = identity.digest(bytes).digest
  } else {
    throw new Error(`block ${cid}: unsupported multihash code 0x${mh.code.toString(16)}`)
  }
  if (!equalBytes(digest, mh.digest)) {
    throw new Error(`block ${cid}: bytes do not hash to the CID's multihash`)
  }
}

function equalBytes (a, b) {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

/** Open a CAR file (v1, or v2 via its inner v1) as a stream: its roots and its blocks in file
 * order, each checked against its CID before it is yielded. */
export async function openCar (file) {
  const it = await CarBlockIterator.fromIterable(createReadStream(file))
  return { roots: await it.getRoots(), blocks: verifyEach(it) }
}

async function * verifyEach (it) {
  for await (const { cid, bytes } of it) {
    await verifyBlock(cid, bytes)
    yield { cid, bytes }
  }
}

/** Load every (verified) block of a CAR into a MemoryBlockstore. */
export async function carToBlockstore (file) {
  const { roots, blocks } = await openCar(file)
  const bs = new MemoryBlockstore()
  for await (const { cid, bytes } of blocks) {
    await bs.put(cid, bytes)
  }
  return { roots, blockstore: bs }
}

/** sha256 hex and byte count of a UnixFS entry's content (exporter entry). */
export async function digestEntry (entry, options = {}) {
  if (entry.type === 'directory') {
    throw new Error(`${entry.cid} is a directory, not a file`)
  }
  if (typeof entry.content !== 'function') {
    throw new Error(`${entry.cid} has no byte content (type ${entry.type})`)
  }
  const h = createHash('sha256')
  let size = 0
  for await (const chunk of entry.content(options)) {
    h.update(chunk)
    size += chunk.byteLength
  }
  return { sha256: h.digest('hex'), size }
}
