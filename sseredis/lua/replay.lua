-- replay decides whether after can be resumed up to until and, if so,
-- returns the first page of the entries in between (see page in
-- common.lua): {"ok", entries, more, after}, where more is the id to read
-- the next page after (see page.lua), "" if none, and after the id of the
-- event it resumes after (an application-set ID looked up); or {reason}.
--
-- until is a position the hub was delivered: when Redis has moved past it
-- (it lost data the hub's follower has not noticed yet), replay wakes the
-- follower and answers "ahead": the hub waits for the follower's news and
-- asks again.
--
-- KEYS: stream, epoch, meta, evicted, ids, wake channel. ARGV: after's epoch,
-- after's id, until's epoch, until's id, entries and bytes per page, then
-- the audiences of the stream; an after's epoch "" means that after's id is
-- an application-set ID.
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
if ARGV[2] == ARGV[4] then return {"ok", {}, "", ARGV[2]} end
if not kept(KEYS[1], KEYS[3], ARGV[2]) then return {"unknown"} end
if expiredFor(KEYS[3], KEYS[4], ARGV[2], 7) then return {"expired"} end
local entries, more = page(KEYS[1], ARGV[2], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]))
return {"ok", entries, more, ARGV[2]}
