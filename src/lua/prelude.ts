// The Lua side of the sandbox: run once in every fresh Lua state, where only
// the base, string, table, math and utf8 libraries were ever opened (io, os,
// debug, package and coroutine are never loaded at all). It strips what
// scripts must not have and returns the functions the runtime drives the
// sandbox with; scripts never see this chunk's globals, only environments
// made by new_env.
//
// What scripts get, and why the rest is missing:
//   - base: assert error ipairs next pairs pcall rawequal rawget rawlen rawset
//     select tonumber tostring type getmetatable setmetatable xpcall _VERSION;
//   - string (without dump), table, math, and json (encode/decode, ours);
//   - no load/loadstring/dofile/loadfile/require: code comes only from the
//     installed script; no bytecode can be loaded (chunks load in text mode);
//   - no collectgarbage: memory is the runtime's business;
//   - no coroutine: nothing we run needs it, and a suspended coroutine would
//     be execution that outlives its call;
//   - setmetatable refuses __gc: Lua runs finalizers with hooks off, so a
//     finalizer could loop beyond any budget;
//   - xpcall runs its handler after the protected call returns, not inside
//     the error: Lua calls a message handler with hooks off when the error
//     comes from the budget hook, so a looping handler would escape the budget;
//   - reading an absent name of the list below raises a clear error
//     ("io is not available in the sandbox") instead of "attempt to index a
//     nil value";
//   - globals are read-only once the script's top level has run: a call
//     cannot leave state behind in one worker that another worker lacks.

export const PRELUDE_LUA = String.raw`
local next, pairs, ipairs, type, rawget, rawset, rawequal, rawlen, error, select, tostring, tonumber, pcall, assert =
      next, pairs, ipairs, type, rawget, rawset, rawequal, rawlen, error, select, tostring, tonumber, pcall, assert
local setmetatable, getmetatable, collectgarbage = setmetatable, getmetatable, collectgarbage
local s_format, s_byte, s_char, s_sub, s_find, s_gsub, s_match = string.format, string.byte, string.char, string.sub, string.find, string.gsub, string.match
local t_concat, t_unpack, t_pack, t_sort = table.concat, table.unpack, table.pack, table.sort
local m_type, m_huge, m_floor = math.type, math.huge, math.floor
local utf8_char = utf8.char

-- Nothing below needs these any more; make them unreachable through the string metatable too.
string.dump = nil
getmetatable('').__metatable = false

local ABSENT = {
  io = 'io is not available in the sandbox: a script reaches data only through its host API',
  os = 'os is not available in the sandbox',
  debug = 'debug is not available in the sandbox',
  package = 'package is not available in the sandbox: a script is one self-contained file',
  require = 'require is not available in the sandbox: a script is one self-contained file',
  dofile = 'dofile is not available in the sandbox',
  loadfile = 'loadfile is not available in the sandbox',
  load = 'load is not available in the sandbox',
  loadstring = 'loadstring is not available in the sandbox',
  collectgarbage = 'collectgarbage is not available in the sandbox: the runtime manages memory',
  coroutine = 'coroutine is not available in the sandbox',
  utf8 = 'utf8 is not available in the sandbox',
  print = 'print is not available in the sandbox: use the host log function (cls.log in object classes)',
}

local function absent_index (_, k)
  local why = ABSENT[k]
  if why ~= nil then error(why, 2) end
  return nil
end

local function safe_setmetatable (t, mt)
  if type(mt) == 'table' and rawget(mt, '__gc') ~= nil then
    error('setmetatable: __gc metamethods are not allowed in the sandbox', 2)
  end
  return setmetatable(t, mt)
end

local function safe_xpcall (f, handler, ...)
  local r = t_pack(pcall(f, ...))
  if r[1] then return t_unpack(r, 1, r.n) end
  return false, handler(r[2])
end

-- ---- json ----------------------------------------------------------------

local json = {}

local ESC = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }
local function esc (c) return ESC[c] or s_format('\\u%04x', s_byte(c)) end
local function fail (msg) error({ json_error = msg }, 0) end

local encode
local function encode_table (t, depth, out)
  if depth > 64 then fail('tables nested more than 64 deep (a cycle?)') end
  local n, count = rawlen(t), 0
  for k in next, t do
    count = count + 1
    if m_type(k) ~= 'integer' or k < 1 or k > n then n = -1 end
  end
  if count > 0 and n == count then
    out[#out + 1] = '['
    for i = 1, n do
      if i > 1 then out[#out + 1] = ',' end
      encode(rawget(t, i), depth + 1, out)
    end
    out[#out + 1] = ']'
    return
  end
  out[#out + 1] = '{'
  local first = true
  for k, v in next, t do
    local tk = type(k)
    if tk == 'number' then k = tostring(k) elseif tk ~= 'string' then fail('a key of type ' .. tk .. ' cannot be a JSON object key') end
    if not first then out[#out + 1] = ',' end
    first = false
    out[#out + 1] = '"' .. s_gsub(k, '[%c"\\]', esc) .. '":'
    encode(v, depth + 1, out)
  end
  out[#out + 1] = '}'
end

encode = function (v, depth, out)
  local t = type(v)
  if t == 'string' then
    out[#out + 1] = '"' .. s_gsub(v, '[%c"\\]', esc) .. '"'
  elseif t == 'number' then
    if v ~= v or v == m_huge or v == -m_huge then fail('cannot encode ' .. tostring(v)) end
    out[#out + 1] = m_type(v) == 'integer' and s_format('%d', v) or s_format('%.17g', v)
  elseif t == 'boolean' then
    out[#out + 1] = v and 'true' or 'false'
  elseif v == nil or v == json.null then
    out[#out + 1] = 'null'
  elseif t == 'table' then
    encode_table(v, depth, out)
  else
    fail('cannot encode a ' .. t)
  end
end

json.null = setmetatable({}, { __tostring = function () return 'json.null' end, __metatable = false })

function json.encode (v)
  local out = {}
  local ok, err = pcall(encode, v, 0, out)
  if not ok then
    if type(err) == 'table' and err.json_error then error('json.encode: ' .. err.json_error, 2) end
    error(err, 0)
  end
  return t_concat(out)
end

local decode_value
local function skip (s, i)
  return s_find(s, '[^ \t\r\n]', i) or #s + 1
end
local function where (s, i)
  if i > #s then return 'at the end' end
  return s_format('at position %d (%q)', i, s_sub(s, i, i + 9))
end

local UNESC = { ['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f', n = '\n', r = '\r', t = '\t' }
local function decode_string (s, i)
  local parts, start = {}, i + 1
  while true do
    local j = s_find(s, '["\\%c]', start)
    if j == nil then fail('unterminated string ' .. where(s, i)) end
    local c = s_sub(s, j, j)
    parts[#parts + 1] = s_sub(s, start, j - 1)
    if c == '"' then return t_concat(parts), j + 1 end
    if c ~= '\\' then fail('control character in a string ' .. where(s, j)) end
    local e = s_sub(s, j + 1, j + 1)
    if e == 'u' then
      local hex = s_match(s, '^%x%x%x%x', j + 2)
      if hex == nil then fail('bad \\u escape ' .. where(s, j)) end
      local cp = tonumber(hex, 16)
      start = j + 6
      if cp >= 0xD800 and cp <= 0xDBFF then
        local lo = s_match(s, '^\\u(%x%x%x%x)', start)
        if lo ~= nil then
          local l = tonumber(lo, 16)
          if l >= 0xDC00 and l <= 0xDFFF then
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (l - 0xDC00)
            start = start + 6
          end
        end
      end
      parts[#parts + 1] = utf8_char(cp)
    else
      local u = UNESC[e]
      if u == nil then fail('bad escape ' .. where(s, j)) end
      parts[#parts + 1] = u
      start = j + 2
    end
  end
end

decode_value = function (s, i, depth)
  if depth > 64 then fail('values nested more than 64 deep') end
  i = skip(s, i)
  local c = s_sub(s, i, i)
  if c == '{' then
    local obj = {}
    i = skip(s, i + 1)
    if s_sub(s, i, i) == '}' then return obj, i + 1 end
    while true do
      if s_sub(s, i, i) ~= '"' then fail('expected a string key ' .. where(s, i)) end
      local k
      k, i = decode_string(s, i)
      i = skip(s, i)
      if s_sub(s, i, i) ~= ':' then fail("expected ':' " .. where(s, i)) end
      local v
      v, i = decode_value(s, i + 1, depth + 1)
      obj[k] = v
      i = skip(s, i)
      c = s_sub(s, i, i)
      if c == '}' then return obj, i + 1 end
      if c ~= ',' then fail("expected ',' or '}' " .. where(s, i)) end
      i = skip(s, i + 1)
    end
  elseif c == '[' then
    local arr, n = {}, 0
    i = skip(s, i + 1)
    if s_sub(s, i, i) == ']' then return arr, i + 1 end
    while true do
      local v
      v, i = decode_value(s, i, depth + 1)
      n = n + 1
      arr[n] = v
      i = skip(s, i)
      c = s_sub(s, i, i)
      if c == ']' then return arr, i + 1 end
      if c ~= ',' then fail("expected ',' or ']' " .. where(s, i)) end
      i = i + 1
    end
  elseif c == '"' then
    return decode_string(s, i)
  elseif s_find(s, '^true', i) then return true, i + 4
  elseif s_find(s, '^false', i) then return false, i + 5
  elseif s_find(s, '^null', i) then return nil, i + 4
  else
    local num = s_match(s, '^-?%d+%.?%d*[eE]?[-+]?%d*', i)
    local v = num and tonumber(num)
    if v == nil then fail('unexpected ' .. where(s, i)) end
    return v, i + #num
  end
end

function json.decode (s)
  if type(s) ~= 'string' then error('json.decode: expected a string, got ' .. type(s), 2) end
  local ok, v, i = pcall(decode_value, s, 1, 0)
  if ok then
    i = skip(s, i)
    if i <= #s then ok, v = false, { json_error = 'trailing characters ' .. where(s, i) } end
  end
  if not ok then
    if type(v) == 'table' and v.json_error then error('json.decode: ' .. v.json_error, 2) end
    error(v, 0)
  end
  return v
end

-- ---- environments ----------------------------------------------------------

local BASE = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, pcall = pcall,
  rawequal = rawequal, rawget = rawget, rawlen = rawlen, rawset = rawset, select = select,
  tonumber = tonumber, tostring = tostring, type = type, getmetatable = getmetatable,
  setmetatable = safe_setmetatable, xpcall = safe_xpcall, _VERSION = _VERSION,
}
local LIBS = { string = string, table = table, math = math, json = json }
local ABSENT_MT = { __index = absent_index, __metatable = false }

local function copy (t)
  local c = {}
  for k, v in next, t do c[k] = v end
  return c
end

-- A fresh environment: its own copies of every library table (a script that
-- changes string.format changes only its own), the host's globals, and the
-- clear errors for what is absent. Returns the environment and its metatable
-- (kept by the runtime to freeze it after the top level ran).
local STRING_MT = { __index = function (_, k)
  if k == 'dump' then error('string.dump is not available in the sandbox', 2) end
end, __metatable = false }

local function new_env (host_globals)
  local G = copy(BASE)
  for k, v in next, LIBS do G[k] = copy(v) end
  setmetatable(G.string, STRING_MT)
  if host_globals ~= nil then
    for k, v in next, host_globals do G[k] = type(v) == 'table' and copy(v) or v end
  end
  setmetatable(G, ABSENT_MT)
  local env = {}
  G._G = env
  local mt = { __index = G, __newindex = G, __metatable = false }
  setmetatable(env, mt)
  return env, mt
end

local function frozen (_, k)
  error("cannot set global '" .. tostring(k) .. "': globals are read-only once the script has loaded (use a local)", 2)
end

-- After the top level ran: freeze the globals and pick the exports: the table
-- the chunk returned, or else the functions it defined as globals. Returns
-- the exports, their names joined by commas, and whether a table was returned.
local function finish (env, mt, result)
  local G = mt.__index
  mt.__newindex = frozen
  local exports = {}
  if type(result) == 'table' then
    for k, v in next, result do
      if type(k) == 'string' and type(v) == 'function' then exports[k] = v end
    end
  else
    for k, v in next, G do
      if type(v) == 'function' and BASE[k] == nil and type(k) == 'string' then exports[k] = v end
    end
  end
  local names = {}
  for k in next, exports do names[#names + 1] = k end
  t_sort(names)
  return exports, t_concat(names, ','), type(result) == 'table'
end

-- One call: 0 and the result as a string (or nil), or 1 when there is no such function.
local function dispatch (exports, fn, input)
  local f = rawget(exports, fn)
  if f == nil then return 1, nil end
  local out = f(input)
  local t = type(out)
  if t == 'string' or out == nil then return 0, out end
  if t == 'number' or t == 'boolean' then return 0, tostring(out) end
  if t == 'table' then
    local ok, text = pcall(json.encode, out)
    if ok then return 0, text end
    error('the function returned a table that is not JSON: ' .. tostring(text), 0)
  end
  error("the function returned a " .. t .. " (return a string, number, boolean, table or nothing)", 0)
end

local function gc ()
  collectgarbage('collect')
end

-- Let the previous globals go: everything scripts need is captured above.
local genv = _G
for k in next, copy(genv) do genv[k] = nil end

return new_env, finish, dispatch, gc
`
