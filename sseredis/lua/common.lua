-- Helpers most scripts share (prepended, after core.lua, to all but
-- publish.lua).
--
-- firstID returns the id of an entry's first event: an entry of n events
-- has the fields "n" and "d", and the ids up to its own (see publish.lua).
local function firstID(e)
  local f = e[2]
  if f[1] ~= "n" then return e[1] end
  local ms, s = string.match(e[1], "^(%d+)-(%d+)$")
  return ms .. "-" .. string.format("%.0f", tonumber(s) - tonumber(f[2]) + 1)
end
-- kept reports whether the stream holds id (an entry holds it), or held
-- it and trimmed it (trimmed: the newest trimmed id): false means Redis
-- lost it.
local function kept(stream, meta, id)
  if id == "0-0" then return true end
  local e = redis.call("XRANGE", stream, id, "+", "COUNT", 1)
  if #e > 0 and not idlt(id, firstID(e[1])) then return true end
  local trimmed = redis.call("HGET", meta, "trimmed")
  return trimmed ~= false and not idlt(trimmed, id)
end
-- wake makes a follower fetch at once: it is subscribed to its wake
-- channel (named like a key of the stream's, so that it is passed in KEYS).
local function wake(channel)
  redis.call("PUBLISH", channel, "w")
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
-- page returns the entries that hold events after id up to upto: count
-- of them at most, and no more than the first to reach bytes (field sizes
-- summed), read in chunks so that the script holds no more either; and the
-- id to read on after, or "" when it returned the last one. The first entry
-- may hold events at or before id, and the last events after upto: the
-- reader skips them.
local function page(stream, id, upto, count, bytes)
  local out, size, last = {}, 0, id
  while #out < count and size < bytes do
    local n = math.min(16, count - #out)
    local chunk = redis.call("XRANGE", stream, "(" .. last, "+", "COUNT", n)
    local i = 0
    while i < #chunk and size < bytes do
      i = i + 1
      local e = chunk[i]
      if idlt(upto, firstID(e)) then return out, "" end
      out[#out + 1] = e
      last = e[1]
      for _, v in ipairs(e[2]) do size = size + #v end
      if not idlt(last, upto) then return out, "" end
    end
    if i == #chunk and #chunk < n then return out, "" end
  end
  return out, last
end
