// Command ssebench compares SSE implementations side by side on one machine.
//
//	ssebench run [-quick] [-reps N] [-impls raw,ours,...] [-scenarios a,b,...]
//	ssebench server -impl NAME [-addr 127.0.0.1:0] [-replay N] [-cpuprofile FILE]
//	ssebench redis [-streams 2000] [-rate 2000] [-window 5s] [-reps 3]
//	ssebench many [-streams 100000] [-hubs 6] [-impl ours-poll] [-reps 3]
//	ssebench churn [-impl ours-poll] [-idle 10000] [-rate 1000] [-duration 10m]
//
// "run" is the driver and the load generator: for every scenario,
// implementation and repetition it starts a fresh "server" process (one
// implementation per process, so CPU time, memory and allocations are
// attributable), pinned to CPU 0 while the driver pins itself to CPU 1 when
// the machine has two CPUs and taskset, drives it through the control API
// and reads its streams over loopback TCP. It prints one Markdown table per
// scenario (medians of the repetitions, ratios to raw and to the best peer)
// and can write every measurement as JSON.
//
// "redis" compares, in one process, our hub with the in-memory broker and
// two hubs on one Redis (sseredis, a redis-server it starts itself), at a
// fixed rate and flat out, with the cost per published event on Redis.
//
// "many" spreads 100,000 streams over hub processes on one Redis, each
// read by a client process of its own ("ssebench clients"), and measures
// memory per stream and broadcasts to all (many.go). "churn" checks that
// memory and goroutines come back after minutes of connects and
// disconnects beside idle streams (churn.go).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"

	"github.com/ssehub/sse/bench/internal/server"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "server":
		fs := flag.NewFlagSet("server", flag.ExitOnError)
		var cfg server.Config
		fs.StringVar(&cfg.Impl, "impl", "ours", "implementation to serve")
		fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:0", "listen address")
		fs.IntVar(&cfg.Replay, "replay", 0, "keep at least this many events for Last-Event-ID replay (0: the implementation's default setup)")
		fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
		fs.IntVar(&cfg.SndBuf, "sndbuf", 0, "if positive, set SO_SNDBUF of every accepted connection")
		fs.StringVar(&cfg.Redis, "redis", "", "with ours: the address of a redis-server to use as the Broker (sseredis)")
		memRate := fs.Int("memprofilerate", 0, "if positive, set runtime.MemProfileRate (1 records every allocation, for /debug/pprof/heap)")
		_ = fs.Parse(os.Args[2:])
		if *memRate > 0 {
			runtime.MemProfileRate = *memRate
		}
		if err := server.Run(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "ssebench server:", err)
			os.Exit(1)
		}
	case "redis":
		if err := redisCmd(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "ssebench redis:", err)
			os.Exit(1)
		}
	case "redis-node":
		if err := redisNodeCmd(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "ssebench redis-node:", err)
			os.Exit(1)
		}
	case "many":
		if err := manyCmd(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "ssebench many:", err)
			os.Exit(1)
		}
	case "churn":
		if err := churnCmd(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "ssebench churn:", err)
			os.Exit(1)
		}
	case "clients":
		if err := clientsCmd(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "ssebench clients:", err)
			os.Exit(1)
		}
	case "run":
		if err := runCmd(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "ssebench run:", err)
			os.Exit(1)
		}
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: ssebench run|server|redis|many|churn [flags]; -h after any for flags")
	os.Exit(2)
}
