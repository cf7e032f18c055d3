-- snapshot returns the states of the given audiences, {{key, value, ...},
-- ...}, or {} after waking the follower when Redis has moved past until
-- (see moved in common.lua): the broker then fails, and the hub's stream
-- retries once its follower has caught up.
--
-- KEYS: stream, epoch, meta, wake key, then the audiences' state hashes.
-- ARGV: until's epoch, until's id.
if moved(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2]) then
  wake(KEYS[4])
  return {}
end
local out = {}
for j = 5, #KEYS do out[j-4] = redis.call("HGETALL", KEYS[j]) end
return {out}
