-- snapshot returns the epoch and the states of the given audiences:
-- {epoch, {key, value, ...}, ...}, or {} when Redis has no epoch.
--
-- KEYS: epoch, then the audiences' state hashes.
local e = redis.call("GET", KEYS[1])
if not e then return {} end
local out = {string.match(e, "^(%S+)")}
for j = 2, #KEYS do out[j] = redis.call("HGETALL", KEYS[j]) end
return out
