// RPC methods for object classes (`cudele class install|list|call`;
// src/protocol/classes.ts lists them).

import { fsError } from '../common/errors'
import type { ProtocolServer } from '../protocol'
import type { CudeleServer } from './server'

const SOURCE_MAX_BYTES = 256 * 1024

export function registerClasses (ps: ProtocolServer, srv: CudeleServer): void {
  ps.handle('class.install', async ([name, source, by], conn) => {
    if (Buffer.byteLength(source) > SOURCE_MAX_BYTES) throw fsError('EFBIG', `class scripts are at most ${SOURCE_MAX_BYTES} bytes`)
    const who = typeof by === 'string' && by.length > 0 ? by : `client.${conn.remoteVersion?.pid ?? 'unknown'}`
    const version = await srv.classes.install(name, source, { name: who })
    return { name, version }
  })
  ps.handle('class.list', () => srv.classes.list())
  ps.handle('class.call', async ([pool, object, method, input]) => {
    const r = await srv.classes.call(pool, object, method, input ?? '')
    return { output: r.output, classVersion: r.classVersion, objectVersion: r.objectVersion ?? null, attempts: r.attempts }
  })
}
