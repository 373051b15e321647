-- counter.lua: a counter kept in one omap key of an object.
--
-- What it shows: the read-modify-write that object classes make atomic. A
-- client that did get-then-set itself could lose updates to another client
-- doing the same; a method runs against a snapshot of the object, and its
-- write commits only if nobody changed the object meanwhile (otherwise the
-- runtime runs it again), so concurrent incr calls never lose a count.
--
-- Install and use it (the RPC/CLI wiring comes with `cudele class`):
--   cudele class install counter examples/classes/counter.lua --connect ADDR
--   cudele class call data hits counter.incr '{"by": 5}' --connect ADDR   → 5
--   cudele class call data hits counter.get --connect ADDR                → 5
--
-- Input is JSON (or empty): {"key": "name", "by": n}; key defaults to "count".
-- Methods return the counter's value as a number (the caller gets "5").

local function args (input)
  if input == nil or input == '' then return {} end
  local a = json.decode(input)
  if type(a) ~= 'table' then error('input must be a JSON object like {"by": 2}') end
  return a
end

local function key_of (a)
  local key = a.key or 'count'
  if type(key) ~= 'string' or key == '' then error('key must be a non-empty string') end
  return key
end

local function current (key)
  local v = cls.map_get_val(key)
  if v == nil then return 0 end
  return math.tointeger(tonumber(v)) or error('counter ' .. key .. ' holds ' .. v .. ', not an integer')
end

-- incr: add `by` (default 1) and return the new value.
local function incr (input)
  local a = args(input)
  local key = key_of(a)
  local by = a.by or 1
  if math.type(by) ~= 'integer' then error('by must be an integer') end
  local n = current(key) + by
  cls.map_set_val(key, tostring(n))
  return n
end

-- get: the value (0 for a counter never incremented).
local function get (input)
  return current(key_of(args(input)))
end

-- reset: back to 0 (the key goes away); returns the value it had.
local function reset (input)
  local key = key_of(args(input))
  local old = current(key)
  cls.map_remove_key(key)
  cls.log('counter', key, 'reset from', old)
  return old
end

return { incr = incr, get = get, reset = reset }
