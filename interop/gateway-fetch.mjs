// gateway-fetch.mjs GATEWAY_URL CID[/sub/path]
//
// Fetches the UnixFS file DAG rooted at CID from a trustless HTTP gateway (ours, on
// http://127.0.0.1:PORT) block by block with Helia's own code, and prints
// {"sha256": hex, "size": bytes, ...} of the file's content.
//
// How (Helia 7 stack; read from the installed sources):
// - `@helia/trustless-gateway-client` (the trustless-gateway broker that used to live in
//   `@helia/block-brokers`; that package's 5.x line is still on multiformats 13 / @helia/utils 2,
//   the Helia 6 stack): `trustlessGatewayBlockBroker({ allowInsecure, allowLocal })`.
//   Its TrustlessGateway.getRawBlock (dist/src/trustless-gateway.js) sends
//   `GET /ipfs/{cid}?format=raw` with `Accept: application/vnd.ipld.raw` and caps the body
//   at 2 MiB (DEFAULT_MAX_SIZE, dist/src/index.js). It does NOT hash anything itself: the broker
//   only calls `options.validateFn?.(block)` (dist/src/broker.js) and drops a gateway whose
//   block fails it.
// - The verification is Helia's: `createHeliaLight` (package `helia`) wraps its blockstore in
//   NetworkedStorage; Storage.get (node_modules/helia/dist/src/storage.js) calls
//   raceBlockRetrievers(), which passes validateFn = getCidBlockVerifierFunction(cid, hasher)
//   to every broker and, if a broker never called it, runs it itself before returning the block.
//   That function hashes the bytes with the CID's hasher (sha2-256 by default, get-hasher.js)
//   and throws InvalidMultihashError('Hash of downloaded block did not match multihash from
//   passed CID') on a mismatch; Storage.get then fails with LoadBlockFailedError, so the export
//   fails and this script exits 1.
// - `@helia/fallback-router` with just GATEWAY_URL is the only router, so the gateway is the
//   only provider ever asked; nothing leaves the machine. Its capabilities() ('fallback') is
//   blanked: helia's Routing.findProviders (dist/src/routing.js) first runs the non-fallback
//   routers, and with none its merge() waits forever for an idle event that only a finishing
//   router emits (Node then exits 0 with no output). As a plain router it is asked directly.
// - ipfs-unixfs-exporter walks the DAG over helia.blockstore, so every block it reads comes
//   through that verified path.
// The only code of ours in the loop is a thin wrapper round the broker's retrieve() that
// records why Helia's validateFn rejected a block (Helia only logs it), for the error message;
// it calls Helia's validateFn unchanged and rethrows its error.

import { fallbackRouter } from '@helia/fallback-router'
import { trustlessGatewayBlockBroker } from '@helia/trustless-gateway-client'
import { BlackHoleBlockstore } from 'blockstore-core/black-hole'
import { createHeliaLight } from 'helia'
import { exporter } from 'ipfs-unixfs-exporter'
import { CID } from 'multiformats/cid'
import { describe, digestEntry, run, UsageError } from './common.mjs'

const TIMEOUT_MS = Number(process.env.JSREF_GATEWAY_TIMEOUT_MS ?? 120_000)

async function main (argv) {
  if (argv.length !== 2) throw new UsageError('usage: gateway-fetch.mjs GATEWAY_URL CID[/sub/path]')
  const [gatewayUrl, cidArg] = argv
  const url = new URL(gatewayUrl) // throws on a malformed URL
  // CID or CID/sub/path (the exporter resolves the path, fetching directory blocks as it goes)
  const target = cidArg.replace(/^\/ipfs\//, '').replace(/\/+$/, '')
  CID.parse(target.split('/')[0]) // fail early on a malformed CID

  const rejected = [] // [cid, reason] for blocks Helia's validateFn refused
  let requests = 0
  const brokerFactory = trustlessGatewayBlockBroker({ allowInsecure: true, allowLocal: true })
  const recordingBroker = (components) => {
    const broker = brokerFactory(components)
    const retrieve = broker.retrieve.bind(broker)
    broker.retrieve = async (c, options = {}) => {
      requests++
      const validateFn = options.validateFn
      return retrieve(c, {
        ...options,
        validateFn: validateFn == null
          ? undefined
          : async (block) => {
            try {
              await validateFn(block)
            } catch (err) {
              rejected.push([c.toString(), describe(err)])
              throw err
            }
          }
      })
    }
    return broker
  }

  const gatewayRouter = fallbackRouter({ gateways: [url.toString()], shuffle: false })
  gatewayRouter.capabilities = () => []

  const helia = createHeliaLight({
    // Fetched blocks are checked, handed to the exporter and dropped: memory stays flat for
    // big files (a block the exporter needs twice is simply fetched twice).
    blockstore: new BlackHoleBlockstore(),
    blockBrokers: [recordingBroker],
    routers: [gatewayRouter]
  })
  await helia.start()
  const signal = AbortSignal.timeout(TIMEOUT_MS)
  try {
    const entry = await exporter(target, helia.blockstore, { signal })
    const result = await digestEntry(entry, { signal })
    return { ...result, blockRequests: requests }
  } catch (err) {
    if (rejected.length > 0) {
      const [c, why] = rejected[0]
      err.message = `block ${c} failed verification (${why}); ${err.message}`
    }
    throw err
  } finally {
    await helia.stop().catch(() => {})
  }
}

run(main)
