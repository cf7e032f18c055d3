module github.com/ssehub/sse/bench

go 1.26.0

require (
	github.com/alexandrevicenzi/go-sse v1.6.0
	github.com/r3labs/sse/v2 v2.10.0
	github.com/redis/go-redis/v9 v9.23.0
	github.com/ssehub/sse v0.0.0
	github.com/ssehub/sse/sseredis v0.0.0
	github.com/tmaxmax/go-sse v0.12.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/net v0.0.0-20191116160921-f9c825593386 // indirect
	golang.org/x/sys v0.48.0 // indirect
	gopkg.in/cenkalti/backoff.v1 v1.1.0 // indirect
)

replace github.com/ssehub/sse => ..

replace github.com/ssehub/sse/sseredis => ../sseredis
