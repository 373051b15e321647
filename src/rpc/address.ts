// Where an RPC server listens and a client connects:
//
//   unix:/path/to.sock        a Unix domain socket (relative paths are taken
//                             from the current directory)
//   tcp:HOST:PORT             TCP; HOST is a name, an IPv4 address or [IPv6]
//   tcp:HOST                  TCP on the default port (6789)
//   tcp::PORT / tcp:PORT      TCP on 127.0.0.1
//
// The protocol has no authentication, so a server binds loopback addresses
// only unless its caller explicitly allows more (see server.ts).

import dns from 'dns'
import net from 'net'
import path from 'path'
import { FsError } from '../common/errors'

export const DEFAULT_PORT = 6789
export const DEFAULT_HOST = '127.0.0.1'
export const DEFAULT_ADDRESS = `tcp:${DEFAULT_HOST}:${DEFAULT_PORT}`

/** sun_path is 108 bytes on Linux, including the terminating NUL. */
export const UNIX_PATH_MAX = 107

export type Address =
  | { kind: 'unix', path: string }
  | { kind: 'tcp', host: string, port: number }

function bad (text: string, why: string): FsError {
  return new FsError('EINVAL', `bad address '${text}': ${why} (expected unix:/path/to.sock or tcp:HOST:PORT)`)
}

/** Parse an address; throws FsError EINVAL saying what is wrong. */
export function parseAddress (text: string): Address {
  if (typeof text !== 'string' || text === '') throw bad(String(text), 'empty')
  const colon = text.indexOf(':')
  const scheme = colon < 0 ? '' : text.slice(0, colon)
  const rest = colon < 0 ? text : text.slice(colon + 1)
  if (scheme === 'unix') {
    if (rest === '') throw bad(text, 'no socket path after unix:')
    if (rest.includes('\0')) throw bad(text, 'the path contains a NUL byte')
    const abs = path.resolve(rest)
    if (Buffer.byteLength(abs) > UNIX_PATH_MAX) {
      throw new FsError('ENAMETOOLONG', `bad address '${text}': the socket path ${abs} is ${Buffer.byteLength(abs)} bytes; Unix sockets allow at most ${UNIX_PATH_MAX}`)
    }
    return { kind: 'unix', path: abs }
  }
  if (scheme === 'tcp') return parseTcp(text, rest)
  throw bad(text, scheme === '' ? 'no scheme' : `unknown scheme '${scheme}:'`)
}

function parseTcp (text: string, rest: string): Address {
  let host: string
  let portText: string | undefined
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']')
    if (close < 0) throw bad(text, "an IPv6 host needs a closing ']'")
    host = rest.slice(1, close)
    const after = rest.slice(close + 1)
    if (after !== '' && !after.startsWith(':')) throw bad(text, "expected ':PORT' after the IPv6 host")
    portText = after === '' ? undefined : after.slice(1)
    if (net.isIPv6(host) === false) throw bad(text, `'${host}' is not an IPv6 address`)
  } else {
    const parts = rest.split(':')
    if (parts.length > 2) throw bad(text, 'an IPv6 host must be written in brackets, e.g. tcp:[::1]:6789')
    if (parts.length === 1 && /^\d+$/.test(parts[0])) {
      host = DEFAULT_HOST
      portText = parts[0]
    } else {
      host = parts[0] === '' ? DEFAULT_HOST : parts[0]
      portText = parts[1]
    }
    if (!/^[A-Za-z0-9.-]+$/.test(host)) throw bad(text, `'${host}' is not a host name or address`)
  }
  let port = DEFAULT_PORT
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw bad(text, `port '${portText}' is not a number from 0 to 65535`)
    port = Number(portText)
  }
  return { kind: 'tcp', host, port }
}

export function formatAddress (a: Address): string {
  if (a.kind === 'unix') return `unix:${a.path}`
  return net.isIPv6(a.host) ? `tcp:[${a.host}]:${a.port}` : `tcp:${a.host}:${a.port}`
}

/** Accept a parsed or unparsed address. */
export function toAddress (a: string | Address): Address {
  return typeof a === 'string' ? parseAddress(a) : a
}

/** Is this IP literal a loopback address (127.0.0.0/8, ::1, IPv4-mapped 127/8)? */
export function isLoopbackIp (ip: string): boolean {
  if (net.isIPv4(ip)) return ip.startsWith('127.')
  if (!net.isIPv6(ip)) return false
  const lower = ip.toLowerCase()
  if (lower === '::1' || lower === '0:0:0:0:0:0:0:1') return true
  const mapped = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower)
  return mapped !== null && mapped[1].startsWith('127.')
}

/** Does this host name or literal resolve to loopback addresses only? */
export async function isLoopbackHost (host: string): Promise<boolean> {
  if (net.isIP(host) !== 0) return isLoopbackIp(host)
  let found: dns.LookupAddress[]
  try {
    found = await dns.promises.lookup(host, { all: true })
  } catch {
    return false
  }
  return found.length > 0 && found.every(a => isLoopbackIp(a.address))
}
