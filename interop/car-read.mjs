// car-read.mjs FILE.car
//
// Reads a CAR with @ipld/car's CarBlockIterator (streaming, file order), checks that every
// block's bytes hash (sha2-256; identity CIDs are compared byte for byte) to its CID's
// multihash, and prints {"roots": [cid, ...], "blocks": [[cid, size], ...]}.
// Any block that does not verify: exit 1 with the CID on stderr.

import { openCar, run, UsageError } from './common.mjs'

async function main (argv) {
  if (argv.length !== 1) throw new UsageError('usage: car-read.mjs FILE.car')
  const { roots, blocks } = await openCar(argv[0])
  const out = []
  for await (const { cid, bytes } of blocks) {
    out.push([cid.toString(), bytes.byteLength])
  }
  return { roots: roots.map((c) => c.toString()), blocks: out }
}

run(main)
