package sseredis

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/ssehub/sse"
)

// BenchmarkPublishCost measures what Redis spends per published event, the
// publish script alone: one Broker, P goroutines publishing 64-byte
// broadcasts, and S plain subscribers of the push channel standing in for
// other nodes (no hub delivers anything). Beside ns/op it reports
// events/batch (events per script call), script-µs/event (Redis's own
// time in the script, INFO commandstats) and redis-cpu-µs/event
// (redis-server's CPU time, /proc: the script, reading the calls, writing
// replies and pushes). bench/rediscost.sh measures the whole of it against
// centrifuge; this is the quick look at the script, to try a change:
//
//	go test -run '^$' -bench PublishCost -benchtime 100000x .
func BenchmarkPublishCost(b *testing.B) {
	for _, c := range []struct{ publishers, subscribers int }{{1, 0}, {16, 0}, {16, 2}, {16, 8}, {2, 8}} {
		b.Run(fmt.Sprintf("publishers=%d/subscribers=%d", c.publishers, c.subscribers), func(b *testing.B) {
			benchmarkPublishCost(b, c.publishers, c.subscribers)
		})
	}
}

func benchmarkPublishCost(b *testing.B, publishers, subscribers int) {
	srv := startRedis(b)
	client := redis.NewClient(&redis.Options{Addr: srv.addr()})
	defer client.Close()
	br, err := New(client, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	for range subscribers {
		sc := redis.NewClient(&redis.Options{Addr: srv.addr()})
		defer sc.Close()
		ps := sc.Subscribe(context.Background(), br.pushChannel)
		defer ps.Close()
		if _, err := ps.Receive(context.Background()); err != nil {
			b.Fatal(err)
		}
		go func() { // read and drop the pushes until ps is closed
			for range ps.Channel() {
			}
		}()
	}
	body := []byte(strings.Repeat("x", 64))
	publish := func(n int) {
		var left atomic.Int64
		left.Store(int64(n))
		var wg sync.WaitGroup
		for range publishers {
			wg.Go(func() {
				for left.Add(-1) >= 0 {
					m := &sse.Message{To: sse.Target{Kind: sse.ToEveryone}, Body: body}
					if err := br.Publish(context.Background(), m); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	publish(2000) // past the first trims
	calls0, usec0 := scriptStats(b, client)
	cpu0 := processCPU(b, srv.cmd.Process.Pid)
	b.ResetTimer()
	publish(b.N)
	b.StopTimer()
	calls1, usec1 := scriptStats(b, client)
	cpu1 := processCPU(b, srv.cmd.Process.Pid)
	n := float64(b.N)
	b.ReportMetric(n/(calls1-calls0), "events/batch")
	b.ReportMetric((usec1-usec0)/n, "script-µs/event")
	b.ReportMetric((cpu1-cpu0)/n, "redis-cpu-µs/event")
}

// scriptStats returns Redis's count of EVALSHA calls and the microseconds
// spent in them, from INFO commandstats.
func scriptStats(b *testing.B, c *redis.Client) (calls, usec float64) {
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(info) {
		fields, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:")
		if !ok {
			continue
		}
		for kv := range strings.SplitSeq(fields, ",") {
			k, v, _ := strings.Cut(kv, "=")
			x, _ := strconv.ParseFloat(v, 64)
			switch k {
			case "calls":
				calls = x
			case "usec":
				usec = x
			}
		}
	}
	if calls == 0 {
		b.Fatalf("no evalsha in INFO commandstats: %q", info)
	}
	return calls, usec
}

// processCPU returns the CPU time (user and system) process pid has used,
// in microseconds, from /proc (Linux; USER_HZ is 100 there).
func processCPU(b *testing.B, pid int) float64 {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Skipf("no /proc here (%v): redis-server's CPU cannot be read", err)
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	user, _ := strconv.ParseFloat(f[11], 64)
	sys, _ := strconv.ParseFloat(f[12], 64)
	return (user + sys) * 1e4
}
