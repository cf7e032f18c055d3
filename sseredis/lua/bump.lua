-- bump starts a new epoch after the newest entry the stream still holds
-- at or before the follower's last delivered id (which it lost), unless
-- the epoch is no longer the known one (another node did it first). Entries
-- added after the loss (publishes to the new primary) then belong to the
-- new epoch. It returns the epoch and its base; the follower finds the new
-- epoch with its next fetch.
--
-- KEYS: stream, epoch. ARGV: candidate epoch, known epoch, last delivered
-- id.
local word, base = ensureEpoch(KEYS[2], ARGV[1], KEYS[1])
if word ~= ARGV[2] then return {word, base} end
local at = redis.call("XREVRANGE", KEYS[1], ARGV[3], "-", "COUNT", 1)
local top = "0-0"
if #at > 0 then top = at[1][1] end
redis.call("SET", KEYS[2], ARGV[1] .. " " .. top)
return {ARGV[1], top}
