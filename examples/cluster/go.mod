module github.com/ssehub/sse/examples/cluster

go 1.26.0

replace (
	github.com/ssehub/sse => ../..
	github.com/ssehub/sse/sseredis => ../../sseredis
)

require (
	github.com/redis/go-redis/v9 v9.23.0
	github.com/ssehub/sse v0.0.0
	github.com/ssehub/sse/sseredis v0.0.0-00010101000000-000000000000
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
