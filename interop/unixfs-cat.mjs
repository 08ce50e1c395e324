// unixfs-cat.mjs FILE.car CID[/sub/path]
//
// Loads every block of the CAR (each checked against its CID first) into a MemoryBlockstore
// and exports the target with ipfs-unixfs-exporter, which resolves `CID/sub/path` through
// UnixFS directories (HAMT-sharded ones too). Prints {"sha256": hex, "size": bytes} of the
// file's content. A directory target, or a missing block, is an error.

import { exporter } from 'ipfs-unixfs-exporter'
import { carToBlockstore, digestEntry, run, UsageError } from './common.mjs'

async function main (argv) {
  if (argv.length !== 2) throw new UsageError('usage: unixfs-cat.mjs FILE.car CID[/sub/path]')
  const [car, target] = argv
  const { blockstore } = await carToBlockstore(car)
  const entry = await exporter(target.replace(/^\/ipfs\//, ''), blockstore)
  return await digestEntry(entry)
}

run(main)
