-- control adds a control to the control stream (about the newest 4,096
-- are kept) and pushes it to every node: "c <id> <client ID>". A node that
-- misses the push (its subscription broke) reads the control stream after
-- the last control it delivered when it catches up.
--
-- KEYS: control stream. ARGV: push channel, client ID, bound.
local id = redis.call("XADD", KEYS[1], "MAXLEN", "~", ARGV[3], "*", "c", ARGV[2])
redis.call("PUBLISH", ARGV[1], "c " .. id .. " " .. ARGV[2])
return id
