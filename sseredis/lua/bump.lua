-- bump starts a new epoch after the stream's newest entry, unless the
-- epoch is no longer the known one (another node did it first). It
-- returns the epoch and its base; the follower then finds the new epoch
-- with its next fetch.
--
-- KEYS: stream, epoch. ARGV: candidate epoch, known epoch.
local word, base = ensureEpoch(KEYS[2], ARGV[1], KEYS[1])
if word ~= ARGV[2] then return {word, base} end
local top = newest(KEYS[1])
redis.call("SET", KEYS[2], ARGV[1] .. " " .. top)
return {ARGV[1], top}
