-- Helpers every script shares (prepended to each).
--
-- Stream ids are "<ms>-<seq>"; idlt orders two of them. The epoch key holds
-- "<epoch> <base>": the epoch and the stream id its lineage starts after
-- ("0-0" for a fresh Redis; when a follower found Redis behind what it had
-- delivered, the newest id the stream kept at or before that). Every node
-- delivers the epoch's entries after its base. ensureEpoch creates the key
-- when it is missing (Redis lost its data), with the candidate epoch the
-- caller drew.
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
-- wake makes a follower fetch at once: its XREAD watches its wake key,
-- and its fetch deletes the key. The key expires if no fetch comes.
local function wake(key)
  redis.call("XADD", key, "MAXLEN", "1", "*", "w", "1")
  redis.call("PEXPIRE", key, 60000)
end
-- moved reports whether Redis has moved past a position this node was
-- delivered (its epoch word and stream id): another epoch, or a stream
-- that lost the entry (it ends before it, or neither holds it nor trimmed
-- it). The node's follower has not noticed yet.
local function moved(stream, epochkey, meta, word, id)
  local e = redis.call("GET", epochkey)
  if not e or string.match(e, "^(%S+)") ~= word then return true end
  return idlt(newest(stream), id) or not kept(stream, meta, id)
end
-- expiredFor reports whether an entry after id for one of the audiences
-- ARGV[first], ARGV[first+1], ... has left history, by the eviction record
-- (when in doubt, or with no audience, it has).
local function expiredFor(meta, evicted, id, first)
  local trimmed = redis.call("HGET", meta, "trimmed")
  if not trimmed or not idlt(id, trimmed) then return false end
  if #ARGV < first then return true end
  local forgot = redis.call("HGET", meta, "forgot")
  for j = first, #ARGV do
    local v = redis.call("HGET", evicted, ARGV[j])
    if not v then v = forgot end
    if v and idlt(id, v) then return true end
  end
  return false
end
-- page returns the entries after id up to upto: count of them at most,
-- and no more than the first to reach bytes (field sizes summed), read in
-- chunks so that the script holds no more either; and the id to read on
-- after, or "" when it returned the last one.
local function page(stream, id, upto, count, bytes)
  local out, size, last = {}, 0, id
  while #out < count and size < bytes do
    local n = math.min(16, count - #out)
    local chunk = redis.call("XRANGE", stream, "(" .. last, upto, "COUNT", n)
    local i = 0
    while i < #chunk and size < bytes do
      i = i + 1
      out[#out + 1] = chunk[i]
      last = chunk[i][1]
      for _, v in ipairs(chunk[i][2]) do size = size + #v end
    end
    if i == #chunk and #chunk < n then return out, "" end
  end
  if last == upto then return out, "" end
  return out, last
end
