// Object classes: named Lua methods that run inside the store against one
// object, with atomic effects (Ceph's cls_lua, as Malacology §4.2 uses it).
// Installed and versioned through the monitor's classmap.
//
//   const rt = new ClassRuntime(store, monitor, createLuaPool())
//   await rt.install('counter', fs.readFileSync('examples/classes/counter.lua', 'utf8'), { name: 'cli' })
//   const { output } = await rt.call('data', 'hits', 'counter.incr', '{"by": 1}')

export { ClassRuntime } from './runtime'
export type { ClassCallResult, ClassInfo, ClassRuntimeOptions, ClassStore } from './runtime'
export { CLASS_POOL, CLASSMAP, MAX_CLASS_SOURCE_BYTES, parseClassmap } from './classmap'
export type { ClassEntry } from './classmap'
