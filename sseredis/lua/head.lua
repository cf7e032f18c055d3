-- head returns the epoch, the newest id of the stream, the epoch's base and
-- the newest id of the control stream, creating the epoch if needed: where
-- a follower starts.
--
-- KEYS: stream, epoch, control stream. ARGV: candidate epoch.
local word, base = ensureEpoch(KEYS[2], ARGV[1], KEYS[1])
return {word, newest(KEYS[1]), base, newest(KEYS[3])}
