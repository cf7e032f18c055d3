-- publish adds an entry, trims the stream to its history recording each
-- trimmed entry's audience in the eviction record, bounds that record, and
-- keeps the entry as its audience's state when it has a key. It also
-- indexes an application-set ID (Message.ID), bounded like the eviction
-- record, so that a Last-Event-ID that is one resumes. A token makes a
-- retried call add nothing twice.
--
-- KEYS: stream, epoch, meta, evicted (hash), evicted order (zset), the
-- audience's state (hash), its state order (zset), the publish token, ids
-- (hash), ids order (zset).
-- ARGV: candidate epoch, history, keys per audience, audiences remembered,
-- audience, ID, Key, Body, IDs remembered.
-- Returns {epoch, id}.
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
