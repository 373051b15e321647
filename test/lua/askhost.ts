// A host for test/lua/mainline.test.ts: `ask(x)` hands x to the main thread
// over the host's line and returns the answer; `hasline()` says whether the
// host got a line at all.

import type { HostLine, LuaHost } from '../../src/lua'

export function createLuaHost (_options: unknown, line: HostLine | null): LuaHost {
  return {
    globals: 'local H = ... return { ask = H.ask, hasline = H.hasline }',
    functions: {
      ask: (a, r) => { r.latin1(String(line?.ask(a.text(1, 'ask request')))) },
      hasline: (_a, r) => { r.bool(line !== null) }
    }
  }
}
