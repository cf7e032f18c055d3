-- wake adds an entry to a follower's wake key, which its XREAD watches, so
-- that it fetches at once (see wake in common.lua).
--
-- KEYS: wake key.
wake(KEYS[1])
return 1
