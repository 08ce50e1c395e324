// siwe-sign.mjs --domain D --uri U --chain-id N --nonce NONCE --issued-at ISO
//               [--expiration-time ISO] [--not-before ISO] [--statement TEXT] [--scheme S]
//               [--request-id ID] [--resource URI ...]
//
// Builds an EIP-4361 message with viem's createSiweMessage (viem/siwe) and signs it with
// privateKeyToAccount(key).signMessage (EIP-191 personal_sign). The private key comes from the
// environment variable SIWE_PRIVATE_KEY (0x + 64 hex), never from argv (argv is visible to every
// user in ps). Prints {"message", "signature", "address"}; also checks that viem parses its own
// message back and recovers the signer from the signature, so a broken harness cannot pass
// unnoticed. Expired or wrong-domain messages are made on purpose: nothing is validated here.

import { recoverMessageAddress } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { createSiweMessage, parseSiweMessage } from 'viem/siwe'
import { run, UsageError } from './common.mjs'

const FLAGS = {
  '--domain': 'domain',
  '--uri': 'uri',
  '--chain-id': 'chainId',
  '--nonce': 'nonce',
  '--issued-at': 'issuedAt',
  '--expiration-time': 'expirationTime',
  '--not-before': 'notBefore',
  '--statement': 'statement',
  '--scheme': 'scheme',
  '--request-id': 'requestId',
  '--resource': 'resources'
}
const REQUIRED = ['domain', 'uri', 'chainId', 'nonce', 'issuedAt']

function parseArgs (argv) {
  const out = {}
  for (let i = 0; i < argv.length; i += 2) {
    const name = FLAGS[argv[i]]
    if (name === undefined || i + 1 >= argv.length) {
      throw new UsageError(`unknown flag or missing value: ${argv[i]}`)
    }
    if (name === 'resources') (out.resources ??= []).push(argv[i + 1])
    else out[name] = argv[i + 1]
  }
  for (const name of REQUIRED) {
    if (out[name] === undefined) throw new UsageError(`missing --${name}`)
  }
  return out
}

function date (value, flag) {
  const d = new Date(value)
  if (Number.isNaN(d.getTime())) throw new UsageError(`${flag}: not a date: ${value}`)
  return d
}

async function main (argv) {
  const args = parseArgs(argv)
  const key = process.env.SIWE_PRIVATE_KEY
  if (!/^0x[0-9a-fA-F]{64}$/.test(key ?? '')) {
    throw new UsageError('SIWE_PRIVATE_KEY must be set to 0x + 64 hex digits')
  }
  const account = privateKeyToAccount(key)
  const fields = {
    address: account.address,
    domain: args.domain,
    uri: args.uri,
    chainId: Number(args.chainId),
    nonce: args.nonce,
    version: '1',
    issuedAt: date(args.issuedAt, '--issued-at')
  }
  if (args.expirationTime) fields.expirationTime = date(args.expirationTime, '--expiration-time')
  if (args.notBefore) fields.notBefore = date(args.notBefore, '--not-before')
  if (args.statement !== undefined) fields.statement = args.statement
  if (args.scheme !== undefined) fields.scheme = args.scheme
  if (args.requestId !== undefined) fields.requestId = args.requestId
  if (args.resources !== undefined) fields.resources = args.resources
  const message = createSiweMessage(fields)
  const signature = await account.signMessage({ message })

  // Self-check with viem's own parser and recovery (offline).
  const parsed = parseSiweMessage(message)
  if (parsed.address !== account.address || parsed.nonce !== args.nonce) {
    throw new Error(`viem does not parse its own message back: ${JSON.stringify(parsed)}`)
  }
  const recovered = await recoverMessageAddress({ message, signature })
  if (recovered !== account.address) throw new Error(`viem recovers ${recovered}`)

  return { message, signature, address: account.address }
}

run(main)
