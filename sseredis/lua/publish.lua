-- publish adds a batch of events to the stream in one call: every event
-- that publishers queued while the previous batch was in flight. What can
-- be done once per batch is: the epoch, the meta hash (one read, one
-- write), and the push to every node (one PUBLISH carrying the batch). The
-- trim is done once per History/16 events or so: the stream grows to
-- History + History/16 entries (exactly History when History is under
-- 16), then the entries past History, the oldest, are trimmed, and the
-- eviction record is written once for all of them (one HSET and one ZADD
-- with, for each audience they had, the newest id of it they trimmed: the
-- same record as trimming one event at a time). Their audiences come from
-- the trim list, "<id> <audience>" for each entry of the stream in its
-- order (one RPUSH per batch, one LPOP per trim), which costs Redis less
-- than reading the entries back; a trim list that does not match the
-- stream's length (written by an earlier version) is rebuilt from it.
--
-- A retried call (go-redis resends a command whose reply it lost) adds
-- nothing twice: the meta field of the broker that sends the batch holds
-- the number and the reply of its last batch, and a call with that number
-- is answered from it. A broker sends one batch at a time, so one field per
-- broker is enough; fields of brokers that have published nothing in the
-- last 2^20 events are dropped (every 2^16 events).
--
-- The meta hash: "seq" counts events (the score of the order zsets), "last"
-- is the newest id and "len" the length of the stream (both kept here so
-- that a batch need not read the stream for them; a meta hash without
-- them, written by an earlier version, has them read from the stream),
-- "trimmed" the newest trimmed id, "forgot" the forgotten audiences' bound,
-- "p:<token>" a broker's last batch.
--
-- An event's record is
--   " <len(audience)> <len(ID)> <len(Key)> <len(Body)>\n<audience><ID><Key><Body>"
-- made by the caller (in Lua, a number turned into a string costs a
-- sprintf). Its stream entry has one field, "d", the record (an entry of
-- an earlier version has four: "a", "i", "k" and "b"; both are read): one
-- field and one string per event cost Redis less than four.
--
-- The push, on the channel ARGV[6], is "e <epoch> <prev>\n" then for each
-- entry its id and record, where prev is the id of the stream's newest
-- entry before the batch: a node whose last delivered id is prev delivers
-- the batch, any other catches up from the stream.
--
-- KEYS: stream, epoch, meta, evicted (hash), evicted order (zset), ids
-- (hash), ids order (zset), trim list, then for each audience with a keyed event in
-- the batch its state (hash) and state order (zset).
-- ARGV: candidate epoch, history, keys per audience, audiences remembered,
-- IDs remembered, push channel, the broker's meta field, batch number, then
-- six per event: its record, audience, ID and Key, the index in KEYS of
-- its audience's state hash (0 when it keeps no state) and, when it has
-- one, the state's value after "<id>|" ("<len(ID)>|<ID><Body>", else "").
-- Returns "<epoch> <id> <id> ...", an id per event.
local m = redis.call("HMGET", KEYS[3], "seq", "last", "len", ARGV[7])
if m[4] then
  local batch, result = string.match(m[4], "^(%d+) %d+ (.*)$")
  if batch == ARGV[8] then return result end
end
local word = ensureEpoch(KEYS[2], ARGV[1], KEYS[1])
local seq = tonumber(m[1]) or 0
local prev, len = m[2], tonumber(m[3])
if not prev or not len then
  prev, len = newest(KEYS[1]), redis.call("XLEN", KEYS[1])
end
local history = tonumber(ARGV[2])
local n = (#ARGV - 8) / 6

-- The entries, the application-set IDs and the states.
local ids, push, np, tl = {}, {"e ", word, " ", prev, "\n"}, 5, {}
local idfields, idorder = {}, {}
local states = {}
for i = 0, n - 1 do
  local j = 9 + 6 * i
  local rec, a, appid, key = ARGV[j], ARGV[j + 1], ARGV[j + 2], ARGV[j + 3]
  local id = redis.call("XADD", KEYS[1], "*", "d", rec)
  ids[i + 1] = id
  tl[i + 1] = id .. " " .. a
  push[np + 1] = id
  push[np + 2] = rec
  np = np + 2
  local st = ARGV[j + 4] ~= "0" and tonumber(ARGV[j + 4]) or 0
  local s = seq + i + 1
  if appid ~= "" then
    idfields[#idfields + 1] = appid
    idfields[#idfields + 1] = id
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
    t[1][#t[1] + 1] = id .. "|" .. ARGV[j + 5]
    t[2][#t[2] + 1] = s
    t[2][#t[2] + 1] = key
  end
end
seq = seq + n
len = len + n
local last = ids[#ids]

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

-- The trim, once the stream holds History/16 entries more than History:
-- the entries past History are read for their audiences, and the eviction
-- record takes the newest trimmed id of each, ordered by when it was last
-- evicted; past its bound, the least recently evicted audiences fold into
-- one bound ("forgot").
local trimmed
redis.call("RPUSH", KEYS[8], unpack(tl))
if len > history + math.floor(history / 16) then
  if redis.call("LLEN", KEYS[8]) ~= len then
    -- Rebuild the trim list from the stream.
    redis.call("DEL", KEYS[8])
    local from = "-"
    while true do
      local chunk = redis.call("XRANGE", KEYS[1], from, "+", "COUNT", 256)
      if #chunk == 0 then break end
      local l = {}
      for _, e in ipairs(chunk) do
        local a = ""
        for j = 1, #e[2], 2 do
          local f, v = e[2][j], e[2][j + 1]
          if f == "d" then
            local l, at = string.match(v, "^ (%d+) [^\n]*\n()")
            if l then a = string.sub(v, at, at + tonumber(l) - 1) end
            break
          end
          if f == "a" then a = v break end
        end
        l[#l + 1] = e[1] .. " " .. a
      end
      redis.call("RPUSH", KEYS[8], unpack(l))
      from = "(" .. chunk[#chunk][1]
    end
  end
  local old = redis.call("LPOP", KEYS[8], len - history)
  local ev, evorder = {}, {}
  for _, e in ipairs(old) do
    local id, a = string.match(e, "^(%S+) (.*)$")
    if not ev[a] then evorder[#evorder + 1] = a end
    ev[a] = id
    trimmed = id
  end
  redis.call("XTRIM", KEYS[1], "MAXLEN", history)
  len = history
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

local result = word .. " " .. table.concat(ids, " ")
local meta = {"seq", seq, "last", last, "len", len, ARGV[7], ARGV[8] .. " " .. seq .. " " .. result}
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
redis.call("PUBLISH", ARGV[6], table.concat(push))
return result
