-- fetch reads the entries after a follower's last id, atomically with the
-- epoch they belong to, and the controls after its last control: what a
-- follower reads when it (re)subscribes, when a push does not follow what
-- it delivered, and every Options.Block while no push comes. It answers
-- {"epoch", epoch, base} when the epoch is not the follower's: the
-- follower carries on after the new epoch's base; {"behind", epoch,
-- newest} when the stream ends before the follower's last id or lost it (a
-- failover to a replica that missed writes), else {"ok", epoch, gap,
-- entries, controls, more}: gap is the newest trimmed id if entries after
-- last were trimmed before the follower read them, else ""; entries are a
-- page (see page in common.lua) and more is "" when they reach the end.
--
-- KEYS: stream, epoch, meta, control stream. ARGV: candidate epoch, known
-- epoch, last id, count (entries, and controls), last control id, bytes.
local word, base = ensureEpoch(KEYS[2], ARGV[1], KEYS[1])
if word ~= ARGV[2] then return {"epoch", word, base} end
local top = newest(KEYS[1])
if idlt(top, ARGV[3]) or not kept(KEYS[1], KEYS[3], ARGV[3]) then return {"behind", word, top} end
local gap = ""
local trimmed = redis.call("HGET", KEYS[3], "trimmed")
if trimmed and idlt(ARGV[3], trimmed) then gap = trimmed end
local entries, more = page(KEYS[1], ARGV[3], top, tonumber(ARGV[4]), tonumber(ARGV[6]))
return {"ok", word, gap, entries,
  redis.call("XRANGE", KEYS[4], "(" .. ARGV[5], "+", "COUNT", ARGV[4]), more}
