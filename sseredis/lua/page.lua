-- page reads the next page of a replay (see replay.lua): the entries after
-- the last one read, up to until. Between pages Redis may have moved on:
-- {"moved"} when it has moved past until (it lost data: the follower is
-- woken), {"expired"} when entries after the last one read, for the
-- stream's audiences, were trimmed meanwhile; else {"ok", entries, more}.
--
-- KEYS: stream, epoch, meta, evicted, wake channel. ARGV: until's epoch, until's
-- id, the last id read, entries and bytes per page, then the audiences of
-- the stream.
if moved(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2]) then
  wake(KEYS[5])
  return {"moved"}
end
if expiredFor(KEYS[3], KEYS[4], ARGV[3], 6) then return {"expired"} end
local entries, more = page(KEYS[1], ARGV[3], ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[5]))
return {"ok", entries, more}
