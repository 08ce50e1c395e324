// helia-bitswap.mjs serve [--muxer yamux|mplex] [--cid-version 0|1] FILE
// helia-bitswap.mjs fetch [--muxer yamux|mplex] MULTIADDR CID[/sub/path]
//
// A real Helia 7 node speaking Bitswap 1.2.0 over libp2p (TCP on 127.0.0.1, noise,
// yamux or mplex, identify, ping), with no routing at all: a no-op router, so Helia only ever
// talks to peers it is connected to (fallback routers make findProviders hang offline).
//
// serve: imports FILE with ipfs-unixfs-importer (Kubo's classic defaults, as unixfs-add.mjs:
//        256 KiB chunks, balanced 174; v0 = dag-pb leaves, v1 = raw leaves) into Helia's
//        blockstore, prints one JSON line {multiaddr, peerId, cid, blocks} and serves until
//        stdin closes (then exits 0).
// fetch: dials MULTIADDR (with /p2p/), exports CID block by block over bitswap (Helia
//        verifies every block against its CID), prints {sha256, size, blocks, ms}.

import { createReadStream } from 'node:fs'
import { createHash } from 'node:crypto'
import { identify } from '@libp2p/identify'
import { mplex } from '@libp2p/mplex'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { withBitswap } from '@helia/bitswap'
import { withLibp2pLight } from '@helia/libp2p'
import { multiaddr } from '@multiformats/multiaddr'
import { createHeliaLight } from 'helia'
import { exporter } from 'ipfs-unixfs-exporter'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { CID } from 'multiformats/cid'
import { run, UsageError } from './common.mjs'

const TIMEOUT_MS = Number(process.env.JSREF_BITSWAP_TIMEOUT_MS ?? 120000)

function parseArgs (argv) {
  const opts = { muxer: 'yamux', cidVersion: 0, rest: [] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--muxer') opts.muxer = argv[++i]
    else if (a === '--cid-version') opts.cidVersion = Number(argv[++i])
    else if (a.startsWith('--')) throw new UsageError(`unknown option ${a}`)
    else opts.rest.push(a)
  }
  if (!['yamux', 'mplex'].includes(opts.muxer)) throw new UsageError('--muxer yamux|mplex')
  if (![0, 1].includes(opts.cidVersion)) throw new UsageError('--cid-version 0|1')
  return opts
}

// Routing that knows nothing and says so at once.
const noopRouter = {
  name: 'noop',
  async * findProviders () {},
  async provide () {},
  async cancelReprovide () {},
  async put () {},
  async get () { throw new Error('not found') },
  async findPeer () { throw new Error('not found') },
  async * getClosestPeers () {}
}

async function startHelia (muxer) {
  const helia = withBitswap(withLibp2pLight(createHeliaLight({ routers: [noopRouter] }), {
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [muxer === 'mplex' ? mplex() : yamux()],
    services: { identify: identify(), ping: ping() }
  }))
  await helia.start()
  return helia
}

async function serve (opts) {
  if (opts.rest.length !== 1) throw new UsageError('usage: serve [--muxer M] [--cid-version N] FILE')
  const helia = await startHelia(opts.muxer)
  let root = null
  let blocks = 0
  const counting = {
    put: async (cid, bytes, o) => { blocks++; return helia.blockstore.put(cid, bytes, o) },
    has: (cid, o) => helia.blockstore.has(cid, o)
  }
  for await (const entry of importer([{ content: createReadStream(opts.rest[0], { highWaterMark: 262144 }) }], counting, {
    cidVersion: opts.cidVersion,
    rawLeaves: opts.cidVersion === 1,
    chunker: fixedSize({ chunkSize: 262144 }),
    layout: balanced({ maxChildrenPerNode: 174 }),
    reduceSingleLeafToSelf: true
  })) {
    root = entry.cid
  }
  const addr = helia.libp2p.getMultiaddrs().find(a => a.toString().includes('/tcp/'))
  process.stdout.write(JSON.stringify({
    multiaddr: addr.toString(),
    peerId: helia.libp2p.peerId.toString(),
    cid: root.toString(),
    blocks
  }) + '\n')
  // Serve until our parent closes stdin.
  await new Promise((resolve) => {
    process.stdin.on('end', resolve)
    process.stdin.on('close', resolve)
    process.stdin.resume()
  })
  await helia.stop().catch(() => {})
  return null
}

async function fetch (opts) {
  if (opts.rest.length !== 2) throw new UsageError('usage: fetch [--muxer M] MULTIADDR CID[/sub/path]')
  const [addr, cidText] = opts.rest
  const helia = await startHelia(opts.muxer)
  const signal = AbortSignal.timeout(TIMEOUT_MS)
  try {
    await helia.libp2p.dial(multiaddr(addr), { signal })
    const start = Date.now()
    // CID or CID/sub/path: the exporter resolves the path, fetching directory blocks too
    const target = cidText.replace(/^\/ipfs\//, '').replace(/\/+$/, '')
    CID.parse(target.split('/')[0]) // fail early on a malformed CID
    const entry = await exporter(target, helia.blockstore, { signal })
    const h = createHash('sha256')
    let size = 0
    for await (const chunk of entry.content({ signal })) {
      h.update(chunk)
      size += chunk.byteLength
    }
    let blocks = 0
    for await (const _ of helia.blockstore.getAll()) blocks++ // eslint-disable-line no-unused-vars
    return { sha256: h.digest('hex'), size, blocks, ms: Date.now() - start }
  } finally {
    await helia.stop().catch(() => {})
  }
}

async function main (argv) {
  const [mode, ...rest] = argv
  const opts = parseArgs(rest)
  if (mode === 'serve') return serve(opts)
  if (mode === 'fetch') return fetch(opts)
  throw new UsageError('usage: helia-bitswap.mjs serve|fetch ...')
}

// serve prints its own line and then runs until stdin closes; fetch prints via run().
if (process.argv[2] === 'serve') {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (err) => { process.stderr.write(`helia-bitswap serve: ${err?.stack ?? err}\n`, () => process.exit(1)) }
  )
} else {
  run(main)
}
