package main

// "ssebench churn": streams connect and disconnect at a steady rate beside
// many idle ones, for minutes; then the server's memory and goroutines must
// be back where they were before the churn. Not a benchmark: a check that
// nothing creeps (queues, registry lists, goroutines, the poller's table).

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssehub/sse/bench/internal/load"
	"github.com/ssehub/sse/bench/internal/server"
)

func churnCmd(args []string) error {
	fs := flag.NewFlagSet("churn", flag.ExitOnError)
	implName := fs.String("impl", "ours-poll", "implementation to serve")
	idle := fs.Int("idle", 10_000, "idle streams, open throughout")
	rate := fs.Float64("rate", 1000, "streams opened (and as many closed) per second")
	life := fs.Duration("life", time.Second, "how long each churning stream stays open")
	dur := fs.Duration("duration", 10*time.Minute, "how long the churn goes on")
	sample := fs.Duration("sample", 30*time.Second, "how often to print the server's state")
	pubRate := fs.Float64("publish", 1, "events broadcast per second meanwhile (0: none)")
	_ = fs.Parse(args)

	info := machineInfo(false)
	fmt.Fprintf(os.Stderr, "ssebench churn: %s, %d idle streams, %g connects/s for %v, load %s\n", *implName, *idle, *rate, *dur, loadAvg())
	s, err := startServerArgs(*implName, nil, false)
	if err != nil {
		return err
	}
	defer s.close()
	p := newPool()
	defer p.close()
	for i := range 4 {
		p.src = append(p.src, fmt.Sprintf("127.0.0.%d", 2+i))
	}
	if _, err := p.connect(s, *idle, 0, 0); err != nil {
		return err
	}
	settle := func() (server.Stats, error) {
		// Two heartbeat ticks (the default heartbeat is 15 s), so that
		// lists the heartbeat tidies are tidy; then a full collection.
		time.Sleep(16 * time.Second)
		if err := s.gc(); err != nil {
			return server.Stats{}, err
		}
		return s.stats()
	}
	before, err := settle()
	if err != nil {
		return err
	}
	type row struct {
		at time.Duration
		st server.Stats
	}
	rows := []row{{0, before}}
	fmt.Fprintf(os.Stderr, "  before: %s\n", describe(before))

	// The churn: one stream opened every 1/rate, each closed after life.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var shared load.Shared
	var wg sync.WaitGroup
	var opened atomic.Int64
	var firstErr atomic.Pointer[error]
	churnSrc := []string{"127.0.0.6", "127.0.0.7", "127.0.0.8", "127.0.0.9", "127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13"}
	if *pubRate > 0 {
		if err := s.publish(64, *pubRate, 0, 0, false); err != nil {
			return err
		}
	}
	t0 := time.Now()
	wg.Add(1)
	go func() {
		defer wg.Done()
		interval := time.Duration(float64(time.Second) / *rate)
		for i := 0; ; i++ {
			next := t0.Add(time.Duration(i) * interval)
			if time.Since(t0) >= *dur {
				return
			}
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
			cctx, ccancel := context.WithTimeout(ctx, *life)
			c := load.Start(cctx, load.Spec{Addr: s.addr, Path: s.path, BufSize: 512, Src: churnSrc[i%len(churnSrc)]}, &shared, nil)
			opened.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.Wait()
				if c.Err != nil {
					firstErr.CompareAndSwap(nil, &c.Err)
				}
				ccancel()
			}()
		}
	}()
	for time.Since(t0) < *dur {
		time.Sleep(min(*sample, *dur-time.Since(t0)))
		st, err := s.stats()
		if err != nil {
			return err
		}
		rows = append(rows, row{time.Since(t0).Round(time.Second), st})
		fmt.Fprintf(os.Stderr, "  %v: %s; churned %d, failed %d\n", time.Since(t0).Round(time.Second), describe(st), opened.Load(), shared.Failed.Load())
		if e := firstErr.Load(); e != nil && shared.Failed.Load() > 0 {
			fmt.Fprintf(os.Stderr, "    first failure: %v\n", *e)
		}
	}
	wg.Wait()
	if _, _, err := s.stop(); err != nil {
		return err
	}
	churned := time.Since(t0)
	if err := p.waitStreams(s, *idle, 30*time.Second); err != nil {
		return err
	}
	after, err := settle()
	if err != nil {
		return err
	}
	rows = append(rows, row{time.Since(t0).Round(time.Second), after})
	fmt.Fprintf(os.Stderr, "  after: %s\n", describe(after))
	st, err := s.stats()
	if err != nil {
		return err
	}
	p.drain(p.readers, st.LastSeq, time.Second, 10*time.Second)
	got, want, _ := delivery(p.readers, st.LastSeq)

	w := os.Stdout
	fmt.Fprintf(w, "# ssebench churn\n\n")
	fmt.Fprintf(w, "- date: %s; machine: %d cores (%s), %s, %s; nothing pinned\n", info.Date, info.Cores, info.CPU, info.Kernel, info.Go)
	fmt.Fprintf(w, "- load average (1, 5, 15 min) before: %s; after: %s\n", info.LoadStart, loadAvg())
	fmt.Fprintf(w, "- command: `ssebench churn %s`\n", strings.Join(args, " "))
	fmt.Fprintf(w, "- %s: %d idle streams; %d streams opened and closed in %v (%.0f/s, each open %v; %d failed); %g events/s broadcast meanwhile, of which the idle streams received %.2f %%\n\n",
		*implName, *idle, opened.Load(), churned.Round(time.Second), float64(opened.Load())/churned.Seconds(), *life, shared.Failed.Load(), *pubRate, 100*float64(got)/float64(max(want, 1)))
	if e := firstErr.Load(); e != nil {
		fmt.Fprintf(w, "The first churning stream that failed: %v\n\n", *e)
	}
	fmt.Fprintf(w, "| at | streams | goroutines | RSS MiB | Go heap MiB | Go stacks MiB |\n|---|---|---|---|---|---|\n")
	for i, r := range rows {
		at := r.at.String()
		switch i {
		case 0:
			at = "before (settled, after GC)"
		case len(rows) - 1:
			at = fmt.Sprintf("after (%v; settled, after GC)", r.at)
		}
		fmt.Fprintf(w, "| %s | %d | %d | %.1f | %.1f | %.1f |\n", at, r.st.Streams, r.st.Goroutines,
			float64(r.st.RSS)/(1<<20), float64(r.st.HeapInuse)/(1<<20), float64(r.st.StackInuse)/(1<<20))
	}
	fmt.Fprintf(w, "\nafter − before: RSS %+.1f MiB, Go heap %+.1f MiB, goroutines %+d, streams %+d\n",
		float64(after.RSS-before.RSS)/(1<<20), (float64(after.HeapInuse)-float64(before.HeapInuse))/(1<<20),
		after.Goroutines-before.Goroutines, after.Streams-before.Streams)
	if after.Goroutines > before.Goroutines+2 || after.Streams != before.Streams {
		return fmt.Errorf("goroutines or streams did not come back: %d goroutines and %d streams before, %d and %d after",
			before.Goroutines, before.Streams, after.Goroutines, after.Streams)
	}
	return nil
}

func describe(st server.Stats) string {
	return fmt.Sprintf("%d streams, %d goroutines, RSS %.1f MiB, heap %.1f MiB", st.Streams, st.Goroutines,
		float64(st.RSS)/(1<<20), float64(st.HeapInuse)/(1<<20))
}
