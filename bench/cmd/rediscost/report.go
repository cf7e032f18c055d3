package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

type column struct {
	key, name string
	format    string
}

var columns = []column{
	{"published_per_s", "published/s", "%.0f"},
	{"delivered_per_s", "delivered/s", "%.0f"},
	{"redis_cpu_us_per_pub", "Redis CPU µs/published", "%.1f"},
	{"script_us_per_pub", "of which in scripts µs", "%.1f"},
	{"redis_cpu_pct", "Redis CPU %", "%.0f"},
	{"reads_per_pub", "round trips/published", "%.2f"},
	{"commands_per_pub", "Redis commands/published", "%.2f"},
	{"writes_per_pub", "Redis writes/published", "%.2f"},
	{"in_bytes_per_pub", "bytes to Redis/published", "%.0f"},
	{"out_bytes_per_pub", "bytes from Redis/published", "%.0f"},
	{"p50_ms", "cross-node p50 ms", "%.2f"},
	{"p99_ms", "cross-node p99 ms", "%.2f"},
	{"delivered_pct", "delivered %", "%.2f"},
	{"duplicates", "duplicates", "%.0f"},
	{"node_cpu_pct", "node process CPU %", "%.0f"},
}

func modeName(p runParams, mode string) string {
	switch mode {
	case modeOne:
		return "one publisher, flat out"
	case modeMany:
		return fmt.Sprintf("%d publishers, flat out", p.publishers)
	case modeRate:
		return fmt.Sprintf("%.0f events/s from one publisher", p.rate)
	}
	return mode
}

func report(w io.Writer, p runParams, results map[cellKey][]cellResult, start time.Time, loadBefore string) {
	med := func(k cellKey, key string) float64 {
		var vs []float64
		for _, r := range results[k] {
			vs = append(vs, r[key])
		}
		return median(vs)
	}
	host, _ := os.Hostname()
	_ = host
	fmt.Fprintf(w, "- date: %s; %d repetition(s) per cell, medians shown; run time %s\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), p.reps, time.Since(start).Round(time.Second))
	placement := "nothing pinned"
	if p.pin {
		placement = "redis-server pinned to CPU 1, the cell process (nodes, streams, publishers) to CPU 0"
	}
	fmt.Fprintf(w, "- machine: %d CPUs, %s, %s; %s\n", runtime.NumCPU(), runtime.Version(), redisVersion(p.bin), placement)
	fmt.Fprintf(w, "- load average (1, 5, 15 min) before: %s; after: %s\n", loadBefore, loadAvg())
	fmt.Fprintf(w, "- %d SSE streams per node, %d-byte events, %v warm-up, %v window; a fresh redis-server and cell process per measurement\n\n",
		p.streams, p.size, p.warm, p.window)
	for _, n := range p.nodes {
		fmt.Fprintf(w, "#### %d nodes\n\n| run | library |", n)
		for _, c := range columns {
			fmt.Fprintf(w, " %s |", c.name)
		}
		fmt.Fprint(w, "\n|---|---|"+strings.Repeat("---|", len(columns))+"\n")
		for _, mode := range p.modes {
			for _, lib := range p.libs {
				fmt.Fprintf(w, "| %s | %s |", modeName(p, mode), lib)
				for _, c := range columns {
					fmt.Fprintf(w, " "+c.format+" |", med(cellKey{n, mode, lib}, c.key))
				}
				fmt.Fprintln(w)
			}
			if len(p.libs) == 2 {
				fmt.Fprintf(w, "| | %s ÷ %s |", p.libs[0], p.libs[1])
				for _, c := range columns {
					if c.key == "delivered_pct" || c.key == "duplicates" || c.key == "node_cpu_pct" || c.key == "redis_cpu_pct" {
						fmt.Fprint(w, " |")
						continue
					}
					a, b := med(cellKey{n, mode, p.libs[0]}, c.key), med(cellKey{n, mode, p.libs[1]}, c.key)
					fmt.Fprintf(w, " %s |", ratio(a, b))
				}
				fmt.Fprintln(w)
			}
		}
		fmt.Fprintln(w)
	}
	if len(p.libs) != 2 || p.libs[0] != "sse" || p.libs[1] != "centrifuge" {
		return
	}
	// The goals of issue 19, sseredis ÷ centrifuge.
	type goal struct {
		mode, key, what string
		bound           float64
		atMost          bool
	}
	goals := []goal{
		{modeMany, "redis_cpu_us_per_pub", "Redis CPU per published event, many publishers", 0.5, true},
		{modeOne, "redis_cpu_us_per_pub", "Redis CPU per published event, one publisher", 1.0, true},
		{modeMany, "reads_per_pub", "round trips per published event, many publishers", 0.5, true},
		{modeOne, "published_per_s", "published/s, one publisher", 1.0, false},
		{modeMany, "published_per_s", "published/s, many publishers", 1.5, false},
		{modeRate, "p99_ms", "cross-node p99 at the fixed rate", 1.0, true},
	}
	fmt.Fprint(w, "#### Goals (sse ÷ centrifuge, medians)\n\n| goal |")
	for _, n := range p.nodes {
		fmt.Fprintf(w, " %d nodes |", n)
	}
	fmt.Fprint(w, "\n|---|"+strings.Repeat("---|", len(p.nodes))+"\n")
	for _, g := range goals {
		if !hasMode(p, g.mode) {
			continue
		}
		op := "≥"
		if g.atMost {
			op = "≤"
		}
		fmt.Fprintf(w, "| %s %s %.1f× |", g.what, op, g.bound)
		for _, n := range p.nodes {
			a, b := med(cellKey{n, g.mode, "sse"}, g.key), med(cellKey{n, g.mode, "centrifuge"}, g.key)
			r := a / b
			met := r >= g.bound
			if g.atMost {
				met = r <= g.bound
			}
			mark := "met"
			if !met {
				mark = "**not met**"
			}
			fmt.Fprintf(w, " %s %s |", ratio(a, b), mark)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

func hasMode(p runParams, m string) bool {
	for _, x := range p.modes {
		if x == m {
			return true
		}
	}
	return false
}

func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func redisVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "redis-server (version unknown)"
	}
	s := strings.TrimSpace(string(out))
	if i := strings.Index(s, " v="); i >= 0 {
		v, _, _ := strings.Cut(s[i+3:], " ")
		return "redis-server " + v
	}
	return s
}
