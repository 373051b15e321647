// The handshake: the client's hello and the server's welcome (frame.ts has
// their layout), which every connection goes through before any request.
// Each side says who it is and which protocol version it speaks; two
// different major versions cannot talk, but can always tell each other why.
// A peer that does not speak the protocol at all is told apart early, by the
// size and type of its first frame.

import { PROTOCOL_MAJOR, PROTOCOL_MINOR, PROTOCOL_NAME, FrameError, FrameType, frameTypeName } from './frame'
import type { Reader } from './values'

/** A frame bigger than this during the handshake is not a hello: the peer speaks something else. */
export const HANDSHAKE_MAX_FRAME = 64 * 1024

export interface PeerInfo {
  major: number
  minor: number
  name: string
  pid: number
}

/** What a hello (client) or welcome (server) carries. */
export function greeting (name: string): object {
  return { proto: PROTOCOL_NAME, minor: PROTOCOL_MINOR, name, pid: process.pid }
}

/** Refuse a first frame too big to be a hello, before its body arrives. */
export function checkFirstFrameLength (length: number): void {
  if (length > HANDSHAKE_MAX_FRAME) {
    throw new FrameError('EPROTO', `the first frame claims ${length} bytes; the peer does not speak ${PROTOCOL_NAME}`)
  }
}

/**
 * The peer's hello (on a server) or welcome (on a client): who it is and
 * which version it speaks. FrameError EPROTO when it is something else.
 */
export function readGreeting (side: 'client' | 'server', version: number, type: number, r: Reader): PeerInfo {
  const expected = side === 'client' ? FrameType.WELCOME : FrameType.HELLO
  if (type !== expected) {
    throw new FrameError('EPROTO', `expected a ${frameTypeName(expected)} frame, got ${frameTypeName(type)}; the peer does not speak ${PROTOCOL_NAME}`)
  }
  const info = r.value() as Record<string, unknown> | null
  if (info === null || typeof info !== 'object' || info.proto !== PROTOCOL_NAME) {
    throw new FrameError('EPROTO', `the ${frameTypeName(type)} frame is not ${PROTOCOL_NAME}'s; the peer speaks something else`)
  }
  return {
    major: version,
    minor: typeof info.minor === 'number' ? info.minor : 0,
    name: typeof info.name === 'string' ? info.name : '?',
    pid: typeof info.pid === 'number' ? info.pid : 0
  }
}

/** Why a peer of another major version cannot be talked to (null: it speaks ours). */
export function versionMismatch (side: 'client' | 'server', peer: PeerInfo, where: string): string | null {
  if (peer.major === PROTOCOL_MAJOR) return null
  const them = `${peer.name} pid ${peer.pid}`
  return side === 'server'
    ? `protocol version mismatch: this server speaks ${PROTOCOL_NAME} ${PROTOCOL_MAJOR}.${PROTOCOL_MINOR}, the client (${them}) ${peer.major}.${peer.minor}; run the same major version on both sides`
    : `protocol version mismatch: the server at ${where} (${them}) speaks ${PROTOCOL_NAME} ${peer.major}.${peer.minor}, this client ${PROTOCOL_MAJOR}.${PROTOCOL_MINOR}; run the same major version on both sides`
}
