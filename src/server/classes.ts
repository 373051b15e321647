// RPC methods for object classes (`cudele class install|list|call`).

import { fsError } from '../common/errors'
import type { RpcServer } from '../rpc'
import type { CudeleServer } from './server'

const SOURCE_MAX_BYTES = 256 * 1024

export function registerClasses (rpc: RpcServer, srv: CudeleServer): void {
  rpc.handle('class.install', async (args, conn) => {
    const [name, source, by] = args as [string, string, string | undefined]
    if (typeof name !== 'string' || typeof source !== 'string') throw fsError('EINVAL', 'class.install needs a name and the script source')
    if (Buffer.byteLength(source) > SOURCE_MAX_BYTES) throw fsError('EFBIG', `class scripts are at most ${SOURCE_MAX_BYTES} bytes`)
    const who = typeof by === 'string' && by.length > 0 ? by : `client.${conn.remoteVersion?.pid ?? 'unknown'}`
    const version = await srv.classes.install(name, source, { name: who })
    return { name, version }
  })
  rpc.handle('class.list', () => srv.classes.list())
  rpc.handle('class.call', async args => {
    const [pool, object, method, input] = args as [string, string, string, string | Uint8Array | undefined]
    if (typeof pool !== 'string' || typeof object !== 'string' || typeof method !== 'string') throw fsError('EINVAL', 'class.call needs a pool, an object and a class.method')
    const r = await srv.classes.call(pool, object, method, input ?? '')
    return { output: r.output, classVersion: r.classVersion, objectVersion: r.objectVersion ?? null, attempts: r.attempts }
  })
}
