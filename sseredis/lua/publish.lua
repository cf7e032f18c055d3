-- publish adds a batch of events to the stream in one call: every event
-- that publishers queued while the previous batch was in flight. The batch
-- is one stream entry, so that what Redis does per event is little more
-- than storing its bytes: the epoch, the meta hash (one read, one write),
-- the entry, its element of the trim list and the push to every node (one
-- PUBLISH) are per batch; only an event with an application-set ID or a
-- Key has work of its own (the IDs index, its state).
--
-- Event ids. Every event has a stream id of its own, "<ms>-<seq>", as if
-- each were an entry: a batch of n events takes the n ids that follow the
-- stream's newest, all in one millisecond, and its entry's id is the last
-- of them. An entry of n events has the fields "n" (when n > 1) and "d",
-- the events' records one after the other, where a record is
--   " <len(audience)> <len(ID)> <len(Key)> <len(Body)>\n<audience><ID><Key><Body>"
-- (made by the caller, which concatenates them: in Lua, a number turned
-- into a string costs a sprintf). The k-th event (from 0) of the entry
-- "<ms>-<s>" of n events has the id "<ms>-<s-n+1+k>". An entry of one
-- event is added with id "*" and has "d" alone; an entry of an earlier
-- version has four fields ("a", "i", "k", "b") and one event. Readers
-- (common.lua, the broker) read all three.
--
-- The trim. The stream keeps at least History events: once it holds
-- History/16 more, the oldest entries whose events are not needed to keep
-- History are trimmed, whole, and the eviction record is written once for
-- all of them (one HSET and one ZADD with, for each audience they had, the
-- id of its newest trimmed event: the same record as trimming one event at
-- a time). Their audiences come from the trim list, one element per entry
-- in the stream's order: "<id> <audience>" for an entry of one event (as
-- an earlier version wrote for every entry), else "<id> <n>" followed, for
-- each audience of the entry, by " <k> <len(audience)> <audience>" with k
-- its newest event in the entry. The caller makes what follows "<id>".
-- One RPUSH per batch and one LRANGE and LTRIM per trim cost Redis less
-- than reading the entries back. A trim list shorter than the stream (lost,
-- or written by an earlier version) is rebuilt from it; a longer one means
-- the stream lost entries, and starts a new epoch (see below).
--
-- A retried call (go-redis resends a command whose reply it lost) adds
-- nothing twice: the meta field of the broker that sends the batch holds
-- the number and the reply of its last batch, and a call with that number
-- is answered from it. A broker sends one batch at a time, so one field per
-- broker is enough; fields of brokers that have published nothing in the
-- last 2^20 events are dropped (every 2^16 events).
--
-- The meta hash: "seq" counts events (the score of the order zsets), "last"
-- is the id of the newest entry and "len" the events in the stream (kept
-- here so that a batch need not read the stream for them; a meta hash
-- without them, written by an earlier version, has them read from the
-- stream, one event per entry),
-- "trimmed" the newest trimmed id, "forgot" the forgotten audiences' bound,
-- "p:<token>" a broker's last batch.
--
-- The push, on the channel ARGV[6], is "e <epoch> <prev> <id> <n>\n" and
-- the entry's records, where prev is the id of the stream's newest entry
-- before the batch: a node whose last delivered id is prev delivers the
-- batch, any other catches up from the stream.
--
-- KEYS: stream, epoch, meta, evicted (hash), evicted order (zset), ids
-- (hash), ids order (zset), trim list, then for each audience with a keyed
-- event in the batch its state (hash) and state order (zset).
-- ARGV: candidate epoch, history, keys per audience, audiences remembered,
-- IDs remembered, push channel, the broker's meta field, batch number, n,
-- the records, the trim list element after "<id>", then five for each
-- event with an application-set ID or a Key: its k, ID and Key, the index
-- in KEYS of its audience's state hash (0 when it keeps no state) and,
-- when it has one, the state's value after "<id>|" ("<len(ID)>|<ID><Body>").
-- Returns "<epoch> <id>", the entry's id.
local m = redis.call("HMGET", KEYS[3], "seq", "last", "len", ARGV[7])
if m[4] and string.find(m[4], ARGV[8] .. " ", 1, true) == 1 then
  return string.match(m[4], "^%d+ %d+ (.*)$")
end
local word = ensureEpoch(KEYS[2], ARGV[1], KEYS[1])
local seq = tonumber(m[1]) or 0
local prev, len = m[2], tonumber(m[3])
if not prev or not len then
  prev, len = newest(KEYS[1]), redis.call("XLEN", KEYS[1])
end
local history = tonumber(ARGV[2])
local n = tonumber(ARGV[9])

-- The entry. Its id: the n ids after the newest one generated, in one
-- millisecond (now, or the newest's when the clock is behind it).
local id, ms, first
if n == 1 then
  id = redis.call("XADD", KEYS[1], "*", "d", ARGV[10])
else
  local t = redis.call("TIME")
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local function place(after)
    local lm, ls = idparts(after)
    if now > lm then ms, first = now, 0 else ms, first = lm, ls + 1 end
    id = string.format("%.0f-%.0f", ms, first + n - 1)
  end
  place(prev)
  local r = redis.pcall("XADD", KEYS[1], id, "n", n, "d", ARGV[10])
  if type(r) == "table" and r.err then
    -- The stream generated ids past the meta hash's last (its newest
    -- entries were deleted, or the meta hash was): place the batch after
    -- the newest id it generated.
    local info = redis.call("XINFO", "STREAM", KEYS[1])
    for j = 1, #info, 2 do
      if info[j] == "last-generated-id" then place(info[j + 1]) break end
    end
    redis.call("XADD", KEYS[1], id, "n", n, "d", ARGV[10])
  end
end
-- The application-set IDs and the states, under each event's own id.
local idfields, idorder = {}, {}
local states = {}
local idms, base
for j = 12, #ARGV, 5 do
  local k, appid, key = tonumber(ARGV[j]), ARGV[j + 1], ARGV[j + 2]
  local st = ARGV[j + 3] ~= "0" and tonumber(ARGV[j + 3]) or 0
  local eid = id
  if n > 1 then
    if not idms then
      local idseq
      idms, idseq = string.match(id, "^(%d+)-(%d+)$")
      base = tonumber(idseq) - n + 1
    end
    eid = idms .. "-" .. string.format("%.0f", base + k)
  end
  local s = seq + k + 1
  if appid ~= "" then
    idfields[#idfields + 1] = appid
    idfields[#idfields + 1] = eid
    idorder[#idorder + 1] = s
    idorder[#idorder + 1] = appid
  end
  if st > 0 then
    local t = states[st]
    if not t then
      t = {{}, {}}
      states[st] = t
    end
    t[1][#t[1] + 1] = key
    t[1][#t[1] + 1] = eid .. "|" .. ARGV[j + 4]
    t[2][#t[2] + 1] = s
    t[2][#t[2] + 1] = key
  end
end
seq = seq + n
len = len + n

-- bound keeps a hash and its order zset to max fields, dropping the
-- lowest scores; added is how many fields the caller's HSET added (none:
-- the size did not change, so it is still within the bound).
local function bound(hash, order, max, added)
  if added == 0 then return end
  local extra = redis.call("ZCARD", order) - max
  if extra > 0 then
    local gone = redis.call("ZPOPMIN", order, extra)
    local f = {}
    for j = 1, #gone, 2 do f[#f + 1] = gone[j] end
    redis.call("HDEL", hash, unpack(f))
  end
end

-- The trim list gets the batch's element. It has as many elements as the
-- stream has entries, unless something else than this script changed
-- either. Fewer: the trim list was lost, and is rebuilt. More: the stream
-- lost entries that no trim took (XDEL, an evicted or restored key), and
-- nothing tells a resume which events are gone, so a replay could skip
-- them without a word. The batch then starts a new epoch (its base the
-- newest entry before the batch): each node ends its streams when it reads
-- the new epoch, and their clients resume with a reset, as after a flush.
local entries = redis.call("RPUSH", KEYS[8], id .. ARGV[11])
local xlen = redis.call("XLEN", KEYS[1])
if entries ~= xlen then
  -- rebuild makes the trim list anew from the stream: each entry's
  -- audiences, from its records (or its "a" field, in an entry of an earlier
  -- version). It returns the entries and the events of the stream.
  local function rebuild()
    redis.call("DEL", KEYS[8])
    local from, entries, events = "-", 0, 0
    while true do
      local chunk = redis.call("XRANGE", KEYS[1], from, "+", "COUNT", 64)
      if #chunk == 0 then break end
      local l = {}
      for _, e in ipairs(chunk) do
        local f = e[2]
        local cnt, d, last, order = 1, nil, {}, {}
        for j = 1, #f, 2 do
          if f[j] == "n" then cnt = tonumber(f[j + 1]) end
          if f[j] == "d" then d = f[j + 1] end
          if f[j] == "a" then last[f[j + 1]] = 0; order[1] = f[j + 1] end
        end
        local pos = 1
        for k = 0, (d and cnt or 0) - 1 do
          local la, li, lk, lb, at = string.match(d, "^ (%d+) (%d+) (%d+) (%d+)\n()", pos)
          if not la then break end
          local a = string.sub(d, at, at + la - 1)
          if not last[a] then order[#order + 1] = a end
          last[a] = k
          pos = at + la + li + lk + lb
        end
        local el = {e[1], " ", cnt}
        if cnt == 1 then
          el, order = {e[1], " ", order[1] or ""}, {}
        end
        for _, a in ipairs(order) do
          el[#el + 1] = " " .. last[a] .. " " .. #a .. " " .. a
        end
        l[#l + 1] = table.concat(el)
        events = events + cnt
      end
      entries = redis.call("RPUSH", KEYS[8], unpack(l))
      from = "(" .. chunk[#chunk][1]
    end
    return entries, events
  end
  if entries > xlen then
    local before = redis.call("XREVRANGE", KEYS[1], "(" .. id, "-", "COUNT", 1)
    local base = "0-0"
    if #before > 0 then base = before[1][1] end
    word = ARGV[1]
    redis.call("SET", KEYS[2], word .. " " .. base)
  end
  entries, len = rebuild()
end

-- The trim, once the stream holds History/16 events more than History:
-- the oldest entries whose events are not needed to keep History are read
-- from the trim list for their audiences, and the eviction record takes
-- the newest trimmed id of each, ordered by when it was last evicted; past
-- its bound, the least recently evicted audiences fold into one bound
-- ("forgot").
local trimmed
if len > history + math.floor(history / 16) then
  -- The entries to trim: the oldest, while History events remain without
  -- them.
  local ev, evorder = {}, {}
  local drop, done = 0, false
  while not done do
    local chunk = redis.call("LRANGE", KEYS[8], drop, drop + 63)
    if #chunk == 0 then break end
    for _, e in ipairs(chunk) do
      local eid, rest = string.match(e, "^(%S+) (.*)$")
      local cnt, pos = 1, nil
      if (string.byte(rest) or 58) <= 57 then -- a digit: several events
        cnt, pos = string.match(rest, "^(%d+)()")
        cnt = tonumber(cnt)
      end
      if len - cnt < history then done = true break end
      len, drop, trimmed = len - cnt, drop + 1, eid
      if not pos then -- one event: "<id> <audience>"
        if not ev[rest] then evorder[#evorder + 1] = rest end
        ev[rest] = eid
      else
        local em, es = string.match(eid, "^(%d+)-(%d+)$")
        local b = tonumber(es) - cnt + 1
        while pos <= #rest do
          local k, l, at = string.match(rest, "^ (%d+) (%d+) ()", pos)
          local a = string.sub(rest, at, at + l - 1)
          if not ev[a] then evorder[#evorder + 1] = a end
          ev[a] = cnt == 1 and eid or em .. "-" .. string.format("%.0f", b + k)
          pos = at + l
        end
      end
    end
  end
  if drop > 0 then
    redis.call("LTRIM", KEYS[8], drop, -1)
    entries = entries - drop
    redis.call("XTRIM", KEYS[1], "MAXLEN", entries)
  end
  if #evorder > 0 then
    local f, z = {}, {}
    for _, a in ipairs(evorder) do
      f[#f + 1] = a
      f[#f + 1] = ev[a]
      z[#z + 1] = seq
      z[#z + 1] = a
    end
    local added = redis.call("HSET", KEYS[4], unpack(f))
    redis.call("ZADD", KEYS[5], unpack(z))
    if added > 0 then
      local extra = redis.call("ZCARD", KEYS[5]) - tonumber(ARGV[4])
      if extra > 0 then
        local gone = redis.call("ZPOPMIN", KEYS[5], extra)
        local forgot = redis.call("HGET", KEYS[3], "forgot")
        local names = {}
        for j = 1, #gone, 2 do names[#names + 1] = gone[j] end
        local vals = redis.call("HMGET", KEYS[4], unpack(names))
        for _, v in ipairs(vals) do
          if v and (not forgot or idlt(forgot, v)) then forgot = v end
        end
        redis.call("HDEL", KEYS[4], unpack(names))
        if forgot then redis.call("HSET", KEYS[3], "forgot", forgot) end
      end
    end
  end
end
if #idfields > 0 then
  local added = redis.call("HSET", KEYS[6], unpack(idfields))
  redis.call("ZADD", KEYS[7], unpack(idorder))
  bound(KEYS[6], KEYS[7], tonumber(ARGV[5]), added)
end
local keys = tonumber(ARGV[3])
for st, t in pairs(states) do
  local added = redis.call("HSET", KEYS[st], unpack(t[1]))
  redis.call("ZADD", KEYS[st + 1], unpack(t[2]))
  bound(KEYS[st], KEYS[st + 1], keys, added)
end

local result = word .. " " .. id
local meta = {"seq", seq, "last", id, "len", len, ARGV[7], ARGV[8] .. " " .. seq .. " " .. result}
if trimmed then
  meta[#meta + 1] = "trimmed"
  meta[#meta + 1] = trimmed
end
redis.call("HSET", KEYS[3], unpack(meta))
if math.floor((seq - n) / 65536) ~= math.floor(seq / 65536) then
  local all = redis.call("HGETALL", KEYS[3])
  local stale = {}
  for j = 1, #all, 2 do
    if string.sub(all[j], 1, 2) == "p:" then
      local at = tonumber(string.match(all[j + 1], "^%d+ (%d+) "))
      if at and at < seq - 1048576 then stale[#stale + 1] = all[j] end
    end
  end
  if #stale > 0 then redis.call("HDEL", KEYS[3], unpack(stale)) end
end
redis.call("PUBLISH", ARGV[6], "e " .. word .. " " .. prev .. " " .. id .. " " .. ARGV[9] .. "\n" .. ARGV[10])
return result
