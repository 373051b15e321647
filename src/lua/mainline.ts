// A host's line to the main thread: a host function (synchronous, called
// from inside a script) asks something of the main thread and waits for the
// answer. The object-class host reads a store that only the main thread can
// read this way (store/relay.ts).
//
// One MessageChannel per worker and host. The worker posts the request and
// sleeps on a shared counter (Atomics.wait); the main thread answers on the
// channel, then bumps the counter and wakes it; the worker takes the answer
// off its port with receiveMessageOnPort (its event loop is blocked in the
// script, so no 'message' event could deliver it). A round trip costs about
// 60 µs. Answers carry the request's id, so a late answer to a request that
// timed out is told from the answer to the next one. The wait counts against
// the call's time budget: a main thread busy for longer than that gets the
// call stopped by the pool's watchdog (ETIMEDOUT), as a slow script would.

import { MessagePort, receiveMessageOnPort } from 'worker_threads'
import type { ErrnoName } from '../common/errors'
import { HostError } from './host'

/** What the main thread answers a host's requests with (registerHost's answer). */
export type HostAnswer = (request: unknown) => unknown

interface Request { id: number, request: unknown }
type Reply = { id: number, ok: true, reply: unknown } | { id: number, ok: false, errno: ErrnoName, message: string }

/** How long a host function waits for the main thread; the pool's watchdog usually ends a stuck call first. */
const ASK_TIMEOUT_MS = 60_000

/** The worker's side: ask() blocks the worker until the main thread answers. */
export class MainLine {
  private readonly woken: Int32Array
  private nextId = 0

  constructor (private readonly port: MessagePort, signal: SharedArrayBuffer) {
    this.woken = new Int32Array(signal)
  }

  /** The main thread's answer, or a HostError with the errno it failed with. */
  ask (request: unknown): unknown {
    const id = ++this.nextId
    this.port.postMessage({ id, request } satisfies Request)
    const deadline = Date.now() + ASK_TIMEOUT_MS
    for (;;) {
      // Read the counter before looking at the port: an answer that lands in between changes it, and wait returns at once.
      const seen = Atomics.load(this.woken, 0)
      for (let m = receiveMessageOnPort(this.port); m !== undefined; m = receiveMessageOnPort(this.port)) {
        const r = m.message as Reply
        if (r.id !== id) continue
        if (r.ok) return r.reply
        throw new HostError(r.errno, r.message)
      }
      const left = deadline - Date.now()
      if (left <= 0 || Atomics.wait(this.woken, 0, seen, left) === 'timed-out') {
        throw new HostError('ETIMEDOUT', `the main thread did not answer within ${ASK_TIMEOUT_MS} ms`)
      }
    }
  }

  close (): void {
    this.port.close()
  }
}

/**
 * The main thread's side of one worker's line: answer each request (answer
 * may return a promise), then wake the worker. The port does not keep the
 * process alive: a worker asks only while the pool has it busy.
 */
export function serveMainLine (port: MessagePort, signal: SharedArrayBuffer, answer: HostAnswer): void {
  const woken = new Int32Array(signal)
  const send = (r: Reply): void => {
    try {
      port.postMessage(r)
    } catch (err) {
      port.postMessage({ id: r.id, ok: false, errno: 'EIO', message: `the answer cannot be sent to the worker: ${(err as Error).message}` } satisfies Reply)
    }
    Atomics.add(woken, 0, 1)
    Atomics.notify(woken, 0)
  }
  port.on('message', (m: Request) => {
    Promise.resolve().then(() => answer(m.request)).then(
      reply => send({ id: m.id, ok: true, reply }),
      (err: Error & { errno?: unknown, code?: unknown }) => {
        const errno = typeof err?.errno === 'string' ? err.errno : typeof err?.code === 'string' ? err.code : 'EIO'
        send({ id: m.id, ok: false, errno: errno as ErrnoName, message: err?.message ?? String(err) })
      })
  })
  port.unref()
}
