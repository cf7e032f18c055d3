-- Helpers every script shares (prepended to each; common.lua holds those
-- all but publish.lua need: a helper defined costs a closure per call).
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
local function ensureEpoch(key, cand, stream)
  local e = redis.call("GET", key)
  if not e then
    e = cand .. " " .. newest(stream)
    redis.call("SET", key, e)
  end
  return string.match(e, "^(%S+) (%S+)$")
end
