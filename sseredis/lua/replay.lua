-- replay decides whether after can be resumed up to until and, if so,
-- returns the entries in between: {"ok", entries} or {reason}.
--
-- until is a position the hub was delivered: when Redis has moved past it
-- (it lost data the hub's follower has not noticed yet), replay wakes the
-- follower and answers "ahead": the hub waits for the follower's news and
-- asks again.
--
-- KEYS: stream, epoch, meta, evicted, ids, wake key. ARGV: after's epoch,
-- after's id, until's epoch, until's id, then the audiences of the stream;
-- an after's epoch "" means that after's id is an application-set ID.
if moved(KEYS[1], KEYS[2], KEYS[3], ARGV[3], ARGV[4]) then
  wake(KEYS[6])
  return {"ahead"}
end
local word = ARGV[3]
if ARGV[1] == "" then
  local at = redis.call("HGET", KEYS[5], ARGV[2])
  if not at then return {"unknown"} end
  ARGV[1], ARGV[2] = word, at
end
if ARGV[1] ~= word then return {"epoch"} end
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
