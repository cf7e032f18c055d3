-- wake adds an entry to a follower's wake key, which its XREAD watches, so
-- that it fetches at once. The follower's fetch deletes the key; if no
-- fetch comes (the broker is gone), it expires.
--
-- KEYS: wake key. ARGV: milliseconds it lives.
redis.call("XADD", KEYS[1], "MAXLEN", "1", "*", "w", "1")
redis.call("PEXPIRE", KEYS[1], ARGV[1])
return 1
