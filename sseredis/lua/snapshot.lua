-- snapshot reads a page of the states of the given audiences that are at
-- or before until, in position order: a merge of the audiences' state
-- orders (zsets scored by the meta hash's publish counter, which orders
-- them as their positions), from the score after the cursor on. Each
-- audience gives at most count keys; states are taken up to the lowest
-- last score among the audiences that gave that many (beyond it another
-- audience's may come first), and no more once their values reach bytes.
-- It returns {{audience index (0-based), key, value, ...}, cursor}: the
-- cursor to read the next page after, "" when none is left; or {} after
-- waking the follower when Redis has moved past until (see moved in
-- common.lua): the broker then fails, and the hub's stream retries once
-- its follower has caught up.
--
-- KEYS: stream, epoch, meta, wake channel, then for each audience its state
-- hash and its state order. ARGV: until's epoch, until's id, cursor ("" at
-- the start), count, bytes.
if moved(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2]) then
  wake(KEYS[4])
  return {}
end
local min = "-inf"
if ARGV[3] ~= "" then min = "(" .. ARGV[3] end
local count, bytes = tonumber(ARGV[4]), tonumber(ARGV[5])
local items, bound = {}, nil
for a = 1, (#KEYS - 4) / 2 do
  local r = redis.call("ZRANGE", KEYS[4 + 2 * a], min, "+inf", "BYSCORE", "LIMIT", 0, count, "WITHSCORES")
  for j = 1, #r, 2 do items[#items + 1] = {tonumber(r[j + 1]), r[j + 1], a, r[j]} end
  if #r == 2 * count then
    local last = tonumber(r[#r])
    if not bound or last < bound then bound = last end
  end
end
table.sort(items, function(x, y) return x[1] < y[1] end)
local out, size, cursor, more = {}, 0, "", bound ~= nil
for _, it in ipairs(items) do
  if bound and it[1] > bound then break end
  if size >= bytes then more = true break end
  cursor = it[2]
  local v = redis.call("HGET", KEYS[3 + 2 * it[3]], it[4])
  local id = v and string.match(v, "^(%d+-%d+)|")
  if id and not idlt(ARGV[2], id) then
    out[#out + 1] = it[3] - 1
    out[#out + 1] = it[4]
    out[#out + 1] = v
    size = size + #v
  end
end
if not more then cursor = "" end
return {out, cursor}
