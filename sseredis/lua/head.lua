-- head returns the epoch, the newest id of the stream and the epoch's base,
-- creating the epoch if needed: where a follower starts.
--
-- KEYS: stream, epoch. ARGV: candidate epoch.
local word, base = ensureEpoch(KEYS[2], ARGV[1], KEYS[1])
return {word, newest(KEYS[1]), base}
