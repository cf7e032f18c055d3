package sseredis

import "github.com/redis/go-redis/v9"

// luaCommon holds the helpers every script shares.
//
// Stream ids are "<ms>-<seq>"; idlt orders two of them. The epoch key holds
// "<epoch> <base>": the epoch and the stream id its lineage started after
// ("0-0" for a fresh Redis, the newest id kept when a follower found Redis
// behind what it had delivered). ensureEpoch creates the key when it is
// missing (Redis lost its data), with the candidate epoch the caller drew.
const luaCommon = `
local function idparts(a)
  local ms, seq = string.match(a, "^(%d+)-(%d+)$")
  return tonumber(ms), tonumber(seq)
end
local function idlt(a, b)
  local am, as = idparts(a)
  local bm, bs = idparts(b)
  if am ~= bm then return am < bm end
  return as < bs
end
local function newest(stream)
  local top = redis.call("XREVRANGE", stream, "+", "-", "COUNT", 1)
  if #top > 0 then return top[1][1] end
  return "0-0"
end
-- kept reports whether the stream holds id, or held it and trimmed it
-- (trimmed: the newest trimmed id): false means Redis lost it.
local function kept(stream, meta, id)
  if id == "0-0" then return true end
  if #redis.call("XRANGE", stream, id, id) > 0 then return true end
  local trimmed = redis.call("HGET", meta, "trimmed")
  return trimmed ~= false and not idlt(trimmed, id)
end
local function ensureEpoch(key, cand, stream)
  local e = redis.call("GET", key)
  if not e then
    e = cand .. " " .. newest(stream)
    redis.call("SET", key, e)
  end
  return string.match(e, "^(%S+) (%S+)$")
end
`

// publishScript adds an entry, trims the stream to its history recording
// each trimmed entry's audience in the eviction record, bounds that record,
// and keeps the entry as its audience's state when it has a key.
//
// It also indexes an application-set ID (Message.ID), bounded like the
// eviction record, so that a Last-Event-ID that is one resumes.
//
// KEYS: stream, epoch, meta, evicted (hash), evicted order (zset),
// the audience's state (hash), its state order (zset), the publish token,
// ids (hash), ids order (zset).
// ARGV: candidate epoch, history, keys per audience, audiences remembered,
// audience, ID, Key, Body, IDs remembered.
var publishScript = redis.NewScript(luaCommon + `
local done = redis.call("GET", KEYS[8])
if done then
  local w, i = string.match(done, "^(%S+) (%S+)$")
  return {w, i}
end
local word = ensureEpoch(KEYS[2], ARGV[1], KEYS[1])
local id = redis.call("XADD", KEYS[1], "*", "a", ARGV[5], "i", ARGV[6], "k", ARGV[7], "b", ARGV[8])
redis.call("SET", KEYS[8], word .. " " .. id, "EX", 10)
local seq = redis.call("HINCRBY", KEYS[3], "seq", 1)
local n = redis.call("XLEN", KEYS[1]) - tonumber(ARGV[2])
if n > 0 then
  local old = redis.call("XRANGE", KEYS[1], "-", "+", "COUNT", n)
  for _, e in ipairs(old) do
    local f = e[2]
    for j = 1, #f, 2 do
      if f[j] == "a" then
        redis.call("HSET", KEYS[4], f[j+1], e[1])
        redis.call("ZADD", KEYS[5], seq, f[j+1])
      end
    end
  end
  redis.call("XTRIM", KEYS[1], "MAXLEN", ARGV[2])
  redis.call("HSET", KEYS[3], "trimmed", old[#old][1])
  local over = redis.call("ZCARD", KEYS[5]) - tonumber(ARGV[4])
  if over > 0 then
    local gone = redis.call("ZPOPMIN", KEYS[5], over)
    local forgot = redis.call("HGET", KEYS[3], "forgot")
    for j = 1, #gone, 2 do
      local v = redis.call("HGET", KEYS[4], gone[j])
      redis.call("HDEL", KEYS[4], gone[j])
      if v and (not forgot or idlt(forgot, v)) then forgot = v end
    end
    if forgot then redis.call("HSET", KEYS[3], "forgot", forgot) end
  end
end
if ARGV[6] ~= "" then
  redis.call("HSET", KEYS[9], ARGV[6], id)
  redis.call("ZADD", KEYS[10], seq, ARGV[6])
  local over = redis.call("ZCARD", KEYS[10]) - tonumber(ARGV[9])
  if over > 0 then
    local gone = redis.call("ZPOPMIN", KEYS[10], over)
    for j = 1, #gone, 2 do redis.call("HDEL", KEYS[9], gone[j]) end
  end
end
local keys = tonumber(ARGV[3])
if ARGV[7] ~= "" and keys > 0 then
  redis.call("HSET", KEYS[6], ARGV[7], id .. "|" .. string.len(ARGV[6]) .. "|" .. ARGV[6] .. ARGV[8])
  redis.call("ZADD", KEYS[7], seq, ARGV[7])
  local over = redis.call("ZCARD", KEYS[7]) - keys
  if over > 0 then
    local gone = redis.call("ZPOPMIN", KEYS[7], over)
    for j = 1, #gone, 2 do redis.call("HDEL", KEYS[6], gone[j]) end
  end
end
return {word, id}
`)

// headScript returns the epoch and the newest id of the stream, creating
// the epoch if needed: where a follower starts.
//
// KEYS: stream, epoch. ARGV: candidate epoch.
var headScript = redis.NewScript(luaCommon + `
local word = ensureEpoch(KEYS[2], ARGV[1], KEYS[1])
return {word, newest(KEYS[1])}
`)

// fetchScript reads the entries after a follower's last id, atomically with
// the epoch they belong to. It answers {"epoch", epoch, resume} when the
// epoch is not the follower's: resume is the newest entry at or before
// both the follower's last id and the epoch's base, where the follower
// carries on in the new epoch; {"behind", epoch, newest} when the stream
// ends before the follower's last id or lost it (a failover to a replica
// that missed writes), else {"ok", epoch, gap, entries}: gap is the newest trimmed id
// if entries after last were trimmed before the follower read them, else
// "".
//
// KEYS: stream, epoch, meta. ARGV: candidate epoch, known epoch, last id,
// count.
var fetchScript = redis.NewScript(luaCommon + `
local word, base = ensureEpoch(KEYS[2], ARGV[1], KEYS[1])
if word ~= ARGV[2] then
  local lim = base
  if idlt(ARGV[3], base) then lim = ARGV[3] end
  local at = redis.call("XREVRANGE", KEYS[1], lim, "-", "COUNT", 1)
  local resume = "0-0"
  if #at > 0 then resume = at[1][1] end
  return {"epoch", word, resume}
end
local top = newest(KEYS[1])
if idlt(top, ARGV[3]) or not kept(KEYS[1], KEYS[3], ARGV[3]) then return {"behind", word, top} end
local gap = ""
local trimmed = redis.call("HGET", KEYS[3], "trimmed")
if trimmed and idlt(ARGV[3], trimmed) then gap = trimmed end
return {"ok", word, gap, redis.call("XRANGE", KEYS[1], "(" .. ARGV[3], "+", "COUNT", ARGV[4])}
`)

// bumpScript starts a new epoch after the stream's newest entry, unless
// the epoch is no longer the known one (another node did it first). It
// returns the epoch and its base; the follower then finds the new epoch
// with its next fetch.
//
// KEYS: stream, epoch. ARGV: candidate epoch, known epoch.
var bumpScript = redis.NewScript(luaCommon + `
local word, base = ensureEpoch(KEYS[2], ARGV[1], KEYS[1])
if word ~= ARGV[2] then return {word, base} end
local top = newest(KEYS[1])
redis.call("SET", KEYS[2], ARGV[1] .. " " .. top)
return {ARGV[1], top}
`)

// replayScript decides whether after can be resumed up to until and, if
// so, returns the entries in between: {"ok", entries} or {reason}.
//
// KEYS: stream, epoch, meta, evicted, ids. ARGV: after's epoch, after's
// id, until's epoch, until's id, then the audiences of the stream; an
// after's epoch "" means that after's id is an application-set ID.
var replayScript = redis.NewScript(luaCommon + `
local e = redis.call("GET", KEYS[2])
if not e then return {"epoch"} end
local word = string.match(e, "^(%S+)")
if ARGV[1] == "" then
  local at = redis.call("HGET", KEYS[5], ARGV[2])
  if not at then return {"unknown"} end
  ARGV[1], ARGV[2] = word, at
end
if ARGV[1] ~= word then return {"epoch"} end
if ARGV[3] ~= word then return {"ahead"} end
if idlt(newest(KEYS[1]), ARGV[2]) then return {"unknown"} end
if idlt(ARGV[4], ARGV[2]) then return {"ahead"} end
if ARGV[2] == ARGV[4] then return {"ok", {}} end
if not kept(KEYS[1], KEYS[3], ARGV[2]) then return {"unknown"} end
local trimmed = redis.call("HGET", KEYS[3], "trimmed")
if trimmed and idlt(ARGV[2], trimmed) then
  if #ARGV < 5 then return {"expired"} end
  local forgot = redis.call("HGET", KEYS[3], "forgot")
  for j = 5, #ARGV do
    local v = redis.call("HGET", KEYS[4], ARGV[j])
    if not v then v = forgot end
    if v and idlt(ARGV[2], v) then return {"expired"} end
  end
end
return {"ok", redis.call("XRANGE", KEYS[1], "(" .. ARGV[2], ARGV[4])}
`)

// snapshotScript returns the epoch and the states of the given audiences:
// {epoch, {key, value, ...}, ...}, or {} when Redis has no epoch.
//
// KEYS: epoch, then the audiences' state hashes.
var snapshotScript = redis.NewScript(`
local e = redis.call("GET", KEYS[1])
if not e then return {} end
local out = {string.match(e, "^(%S+)")}
for j = 2, #KEYS do out[j] = redis.call("HGETALL", KEYS[j]) end
return out
`)

var scripts = []*redis.Script{publishScript, headScript, fetchScript, bumpScript, replayScript, snapshotScript}
