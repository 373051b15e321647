// `cudele class install|list|call --connect ADDR`

import * as fs from 'fs'
import { call } from '../protocol'
import { connect } from '../rpc'

export async function classInstall (address: string, name: string, file: string): Promise<number> {
  const source = fs.readFileSync(file, 'utf8')
  const conn = await connect(address, { name: 'cudele-class' })
  try {
    const r = await call(conn, 'class.install', [name, source, `cli.${process.getuid?.() ?? 0}`])
    console.log(`class ${r.name} version ${r.version} installed`)
    return 0
  } finally {
    conn.close()
  }
}

export async function classList (address: string, json: boolean): Promise<number> {
  const conn = await connect(address, { name: 'cudele-class' })
  try {
    const list = await call(conn, 'class.list', [])
    if (json) console.log(JSON.stringify(list, null, 2))
    else if (list.length === 0) console.log('no classes installed')
    else for (const c of list) console.log(`${c.name} version ${c.version}: ${(c.methods ?? []).join(', ')}`)
    return 0
  } finally {
    conn.close()
  }
}

export async function classCall (address: string, pool: string, object: string, method: string, input: string): Promise<number> {
  const conn = await connect(address, { name: 'cudele-class' })
  try {
    const r = await call(conn, 'class.call', [pool, object, method, input])
    process.stdout.write(Buffer.from(r.output))
    if (r.output.length > 0 && r.output[r.output.length - 1] !== 10) process.stdout.write('\n')
    return 0
  } finally {
    conn.close()
  }
}
