-- head returns the epoch and the newest id of the stream, creating the
-- epoch if needed: where a follower starts.
--
-- KEYS: stream, epoch. ARGV: candidate epoch.
local word = ensureEpoch(KEYS[2], ARGV[1], KEYS[1])
return {word, newest(KEYS[1])}
