// The protocol's methods of object classes (`cudele class install|list|call`,
// answered by src/server/classes.ts). No session needed.

import type { ClassInfo } from '../store/classes'
import { arg, query, reply } from './method'
import { bytes, either, nullable, optional, str } from './shape'

export interface ClassCallReply {
  /** What the method returned (a table as JSON; nothing as no bytes). */
  output: Uint8Array
  classVersion: number
  /** The object's version after the call's write; null when it wrote nothing. */
  objectVersion: number | null
  /** Runs it took (1 unless a conflicting write made it run again). */
  attempts: number
}

export const classMethods = {
  'class.install': query({
    doc: 'Install (or replace) a class from its Lua source (at most 256 KiB), through the monitor',
    args: [arg('class', str), arg('source', str), arg('by', optional(nullable(str)))],
    reply: reply<{ name: string, version: number }>(),
    errnos: ['EFBIG', 'EACCES', 'EAGAIN', 'ENOSPC']
  }),
  'class.list': query({
    doc: 'The installed classes, their versions and methods',
    args: [],
    reply: reply<ClassInfo[]>(),
    errnos: []
  }),
  'class.call': query({
    doc: "Run a class's method (class.method) against one object, with an input (a string or bytes)",
    args: [arg('pool', str), arg('object', str), arg('method', str), arg('input', optional(either(str, bytes)))],
    reply: reply<ClassCallReply>(),
    errnos: ['ENOENT', 'EEXIST', 'ENODATA', 'ECANCELED', 'ENOMEM', 'EFBIG', 'ENOSPC']
  })
} as const
