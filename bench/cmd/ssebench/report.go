package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/ssehub/sse/bench/internal/impl"
)

// column is one figure of a section's table.
type column struct {
	Key    string
	Head   string
	Format func(float64) string
	Higher bool // higher is better
	Ratio  bool // add ×raw and ×best-peer columns
	Never  string
}

type section struct {
	Key   string
	Title func(p params) string
	Cols  []column
}

func f0(v float64) string { return fmt.Sprintf("%.0f", v) }
func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }
func f3(v float64) string { return fmt.Sprintf("%.3f", v) }
func pct(v float64) string {
	if v >= 99.995 && v < 100 {
		return "99.99"
	}
	return fmt.Sprintf("%.2f", v)
}
func rate(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func latencyCols() []column {
	return []column{
		{Key: "p50_ms", Head: "p50 ms", Format: f2},
		{Key: "p99_ms", Head: "p99 ms", Format: f2, Ratio: true},
		{Key: "max_ms", Head: "max ms", Format: f1},
		{Key: "delivered_pct", Head: "delivered %", Format: pct, Higher: true},
		{Key: "cpu_us_per_ev", Head: "CPU µs/event", Format: f2},
		{Key: "writes_per_kev", Head: "write calls/1k events", Format: f0},
		{Key: "server_cpu_pct", Head: "server CPU %", Format: f0},
	}
}

var sections = []section{
	{Key: "a", Title: func(p params) string {
		return fmt.Sprintf("(a) %d streams, %d-byte events, published flat out", p.FlatN, p.FlatSize)
	}, Cols: []column{
		{Key: "delivered_per_s", Head: "delivered events/s", Format: rate, Higher: true, Ratio: true},
		{Key: "cpu_us_per_ev", Head: "server CPU µs/event", Format: f3, Ratio: true},
		{Key: "allocs_per_ev", Head: "allocs/published event", Format: f1},
		{Key: "writes_per_kev", Head: "write calls/1k events", Format: f1},
		{Key: "p50_ms", Head: "p50 ms", Format: f1},
		{Key: "p99_ms", Head: "p99 ms", Format: f1},
		{Key: "max_ms", Head: "max ms", Format: f0},
		{Key: "delivered_pct", Head: "delivered %", Format: pct, Higher: true},
		{Key: "connect_ms", Head: "connect ms", Format: f0},
		{Key: "server_cpu_pct", Head: "server CPU %", Format: f0},
		{Key: "loadgen_cpu_pct", Head: "load gen CPU %", Format: f0},
	}},
	{Key: "b", Title: func(p params) string {
		return fmt.Sprintf("(b) %d idle streams: memory per stream", p.IdleN)
	}, Cols: []column{
		{Key: "rss_per_stream_kib", Head: "RSS KiB/stream", Format: f2, Ratio: true},
		{Key: "heap_stack_per_stream_kib", Head: "Go heap+stack KiB/stream", Format: f2},
		{Key: "goroutines_per_stream", Head: "goroutines/stream", Format: f1},
		{Key: "rss_mib", Head: "RSS MiB", Format: f0},
		{Key: "connect_ms", Head: "connect ms", Format: f0, Ratio: true},
	}},
	{Key: "c", Title: func(p params) string {
		return fmt.Sprintf("(c) %d streams, %d-byte events, %.0f%% of clients never read", p.SlowN, p.SlowSize, 100*p.SlowFrac)
	}, Cols: []column{
		{Key: "delivered_pct", Head: "fast clients delivered %", Format: pct, Higher: true},
		{Key: "delivered_per_s", Head: "fast clients events/s", Format: rate, Higher: true, Ratio: true},
		{Key: "rss_mib", Head: "RSS MiB", Format: f0},
		{Key: "new_client_ms", Head: "new client's first event, ms", Format: f1, Never: "never (>3 s)"},
		{Key: "new_client_headers_ms", Head: "its headers, ms", Format: f1},
		{Key: "streams_left", Head: "streams open", Format: f0},
		{Key: "cpu_us_per_ev", Head: "server CPU µs/event", Format: f2},
		{Key: "loadgen_cpu_pct", Head: "load gen CPU %", Format: f0},
	}},
	{Key: "d", Title: func(p params) string {
		return fmt.Sprintf("(d) %d streams at %g events/s: latency", p.SteadyN, p.SteadyRate)
	}, Cols: latencyCols()},
	{Key: "e", Title: func(p params) string {
		return fmt.Sprintf("(e) %d streams at %g events/s: latency", p.IdleN, p.IdleRate)
	}, Cols: latencyCols()},
	{Key: "f", Title: func(p params) string {
		return fmt.Sprintf("(f) replay: a client reconnects with a Last-Event-ID %d events back", p.ReplayBack)
	}, Cols: []column{
		{Key: "replay_ms", Head: "replay ms (to last event)", Format: f1, Ratio: true, Never: "failed"},
		{Key: "first_ms", Head: "first event ms", Format: f2, Never: "failed"},
		{Key: "replayed", Head: "events received", Format: f0},
		{Key: "extra", Head: "extra (dup) events", Format: f0},
		{Key: "missing", Head: "missing events", Format: f0},
	}},
	{Key: "g", Title: func(p params) string {
		return fmt.Sprintf("(g) %d idle streams in one process: memory, idle CPU, broadcast to all", p.ScaleN)
	}, Cols: []column{
		{Key: "rss_per_stream_kib", Head: "RSS KiB/stream", Format: f2, Ratio: true},
		{Key: "heap_stack_per_stream_kib", Head: "Go heap+stack KiB/stream", Format: f2},
		{Key: "goroutines_per_stream", Head: "goroutines/stream", Format: f1},
		{Key: "kernel_slab_per_conn_kib", Head: "kernel slab KiB/connection", Format: f1},
		{Key: "connect_ms", Head: "connect ms", Format: f0},
		{Key: "idle_cpu_us_per_s_per_stream", Head: "idle CPU µs/s per stream", Format: f3},
		{Key: "bcast_p50_ms", Head: "broadcast p50 ms", Format: f1},
		{Key: "bcast_p99_ms", Head: "broadcast p99 ms", Format: f1, Ratio: true},
		{Key: "bcast_max_ms", Head: "broadcast max ms", Format: f1},
		{Key: "bcast_cpu_us_per_delivery", Head: "CPU µs/delivery", Format: f2},
		{Key: "ended_streams", Head: "streams ended", Format: f0},
	}},
}

// cell is the median of one implementation's repetitions in one section.
type cell struct {
	m    map[string]float64
	errs []string
	n    int // successful repetitions
}

func medians(results []result, part, name string) cell {
	var c cell
	vals := map[string][]float64{}
	for _, r := range results {
		if r.Scenario != part || r.Impl != name {
			continue
		}
		if r.Err != "" {
			c.errs = append(c.errs, r.Err)
			continue
		}
		c.n++
		for k, v := range r.M {
			vals[k] = append(vals[k], v)
		}
	}
	c.m = map[string]float64{}
	for k, vs := range vals {
		c.m[k] = median(vs)
	}
	return c
}

// median treats NaN (never happened) as +Inf.
func median(vs []float64) float64 {
	s := make([]float64, len(vs))
	for i, v := range vs {
		if math.IsNaN(v) {
			v = math.Inf(1)
		}
		s[i] = v
	}
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return s[n/2]
	}
	if math.IsInf(s[n/2], 1) {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func format(col column, v float64, ok bool) string {
	switch {
	case !ok || math.IsNaN(v):
		return "–"
	case math.IsInf(v, 1):
		if col.Never != "" {
			return col.Never
		}
		return "∞"
	}
	return col.Format(v)
}

func ratio(v, base float64) string {
	if math.IsNaN(v) || math.IsNaN(base) || base == 0 {
		return "–"
	}
	if math.IsInf(v, 1) || math.IsInf(base, 1) {
		if math.IsInf(v, 1) && math.IsInf(base, 1) {
			return "–"
		}
		if math.IsInf(v, 1) {
			return "∞"
		}
		return "0"
	}
	r := v / base
	if r >= 100 {
		return fmt.Sprintf("%.0f×", r)
	}
	return fmt.Sprintf("%.2f×", r)
}

// best returns the best peer's value of col, and whether any peer has one.
func best(cells map[string]cell, col column) (float64, bool) {
	var b float64
	found := false
	for _, name := range impl.Peers {
		c, ok := cells[name]
		if !ok || c.n == 0 {
			continue
		}
		v, ok := c.m[col.Key]
		if !ok || math.IsNaN(v) {
			continue
		}
		if !found || (col.Higher && v > b) || (!col.Higher && v < b) {
			b, found = v, true
		}
	}
	return b, found
}

func report(w io.Writer, info machine, p params, names []string, results []result) {
	fmt.Fprintf(w, "# ssebench results\n\n")
	fmt.Fprintf(w, "- date: %s; mode: %s, %d repetition(s) per cell, medians shown; run time %s\n", info.Date, info.Mode, info.Reps, info.Elapsed)
	fmt.Fprintf(w, "- machine: %d cores (%s), %s, %s; server and load generator pinned to separate CPUs: %v\n", info.Cores, info.CPU, info.Kernel, info.Go, info.Pinned)
	fmt.Fprintf(w, "- load average (1, 5, 15 min) before: %s; after: %s\n", info.LoadStart, info.LoadAfter)
	fmt.Fprintf(w, "- command: `%s`\n", info.Command)
	fmt.Fprintf(w, "- ×raw: the figure divided by raw's; ×best peer: divided by the best of tmaxmax, r3labs and alexandrevicenzi (for lower-is-better figures the lowest)\n\n")

	summary(w, p, names, results)
	for _, sec := range sections {
		cells := map[string]cell{}
		present := false
		for _, name := range names {
			c := medians(results, sec.Key, name)
			if c.n > 0 || len(c.errs) > 0 {
				present = true
			}
			cells[name] = c
		}
		if !present {
			continue
		}
		fmt.Fprintf(w, "## %s\n\n", sec.Title(p))
		var head, rule []string
		head = append(head, "impl")
		for _, col := range sec.Cols {
			head = append(head, col.Head)
			if col.Ratio {
				head = append(head, "×raw", "×best peer")
			}
		}
		for range head {
			rule = append(rule, "---")
		}
		fmt.Fprintf(w, "| %s |\n|%s|\n", strings.Join(head, " | "), strings.Join(rule, "|"))
		for _, name := range names {
			c := cells[name]
			row := []string{name}
			if c.n == 0 {
				what := "n/a"
				if len(c.errs) > 0 {
					what = "error: " + shorten(c.errs[0])
				}
				row = append(row, what)
				for i := 1; i < len(head)-1; i++ {
					row = append(row, "")
				}
				fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
				continue
			}
			if len(c.errs) > 0 {
				row[0] += fmt.Sprintf(" (%d of %d runs failed)", len(c.errs), len(c.errs)+c.n)
			}
			for _, col := range sec.Cols {
				v, ok := c.m[col.Key]
				row = append(row, format(col, v, ok))
				if col.Ratio {
					rv, rok := cells["raw"].m[col.Key]
					if !rok || cells["raw"].n == 0 {
						row = append(row, "–")
					} else {
						row = append(row, ratio(v, rv))
					}
					if bv, bok := best(cells, col); bok {
						row = append(row, ratio(v, bv))
					} else {
						row = append(row, "–")
					}
				}
			}
			fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
		}
		for _, name := range names {
			n, total, msg := 0, 0, ""
			for _, r := range results {
				if r.Scenario == sec.Key && r.Impl == name {
					total++
					if r.Crash != "" {
						n, msg = n+1, r.Crash
					}
				}
			}
			if n > 0 {
				fmt.Fprintf(w, "\n%s: the server process crashed in %d of %d runs (%s).\n", name, n, total, shorten(msg))
			}
		}
		fmt.Fprintln(w)
	}
}

// summary prints the headline figure of every section, one row per
// implementation.
func summary(w io.Writer, p params, names []string, results []result) {
	type pick struct{ sec, key, head string }
	picks := []pick{
		{"a", "delivered_per_s", "(a) events/s"},
		{"a", "cpu_us_per_ev", "(a) CPU µs/event"},
		{"b", "rss_per_stream_kib", "(b) KiB/idle stream"},
		{"c", "delivered_pct", "(c) fast delivered %"},
		{"c", "delivered_per_s", "(c) fast events/s"},
		{"c", "new_client_ms", "(c) new client ms"},
		{"d", "p99_ms", "(d) p99 ms"},
		{"e", "p99_ms", "(e) p99 ms"},
		{"f", "replay_ms", "(f) replay ms"},
		{"g", "rss_per_stream_kib", "(g) KiB/idle stream"},
		{"g", "bcast_p99_ms", "(g) broadcast p99 ms"},
	}
	colOf := func(sec, key string) column {
		for _, s := range sections {
			if s.Key == sec {
				for _, c := range s.Cols {
					if c.Key == key {
						return c
					}
				}
			}
		}
		return column{Key: key, Format: f2}
	}
	fmt.Fprintf(w, "## Summary (median; ×raw in brackets)\n\n")
	head := []string{"impl"}
	for _, pk := range picks {
		head = append(head, pk.head)
	}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---|", len(head)))
	for _, name := range names {
		row := []string{name}
		for _, pk := range picks {
			col := colOf(pk.sec, pk.key)
			c := medians(results, pk.sec, name)
			if c.n == 0 {
				if len(c.errs) > 0 {
					row = append(row, "error")
				} else {
					row = append(row, "n/a")
				}
				continue
			}
			v, ok := c.m[pk.key]
			s := format(col, v, ok)
			if raw := medians(results, pk.sec, "raw"); name != "raw" && raw.n > 0 && ok && pk.key != "delivered_pct" {
				s += " (" + ratio(v, raw.m[pk.key]) + ")"
			}
			row = append(row, s)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	fmt.Fprintln(w)
}

func shorten(s string) string {
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}
