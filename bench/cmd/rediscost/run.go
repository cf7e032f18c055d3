package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ssehub/sse/bench/internal/redisproc"
)

type runParams struct {
	nodes      []int
	modes      []string
	libs       []string
	reps       int
	streams    int
	publishers int
	rate       float64
	size       int
	warm       time.Duration
	window     time.Duration
	bin        string
	pin        bool
	jsonOut    string
}

type cellKey struct {
	nodes int
	mode  string
	lib   string
}

func runCmd(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	var p runParams
	nodes := fs.String("nodes", "2,4,8", "node counts")
	modes := fs.String("modes", "one,many,rate", "modes: one (one publishing goroutine, flat out), many (-publishers goroutines, flat out), rate (one goroutine at -rate events/s)")
	libs := fs.String("libs", "sse,centrifuge", "libraries")
	fs.IntVar(&p.reps, "reps", 3, "repetitions per cell (medians are shown)")
	fs.IntVar(&p.streams, "streams", 20, "SSE streams per node")
	fs.IntVar(&p.publishers, "publishers", 16, "publishing goroutines in mode many")
	fs.Float64Var(&p.rate, "rate", 1000, "events/s in mode rate")
	fs.IntVar(&p.size, "size", 64, "event data bytes")
	fs.DurationVar(&p.warm, "warm", time.Second, "publishing before each window")
	fs.DurationVar(&p.window, "window", 3*time.Second, "measurement window")
	fs.StringVar(&p.bin, "redis-server", "/usr/bin/redis-server", "the redis-server binary")
	fs.BoolVar(&p.pin, "pin", true, "pin redis-server to CPU 1 and the cell process to CPU 0 (needs two CPUs and taskset)")
	fs.StringVar(&p.jsonOut, "json", "", "also write every measurement to this file, as JSON")
	_ = fs.Parse(args)
	for _, s := range strings.Split(*nodes, ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("bad -nodes %q", *nodes)
		}
		p.nodes = append(p.nodes, n)
	}
	p.modes = strings.Split(*modes, ",")
	p.libs = strings.Split(*libs, ",")
	if p.pin {
		if _, err := exec.LookPath("taskset"); err != nil || runtime.NumCPU() < 2 {
			fmt.Fprintln(os.Stderr, "rediscost: not pinning (needs taskset and two CPUs)")
			p.pin = false
		}
	}

	start := time.Now()
	loadBefore := loadAvg()
	fmt.Fprintf(os.Stderr, "rediscost: nodes %v, modes %v, %d repetition(s), load %s\n", p.nodes, p.modes, p.reps, loadBefore)
	results := map[cellKey][]cellResult{}
	type record struct {
		Rep    int
		Nodes  int
		Mode   string
		Lib    string
		Result cellResult
	}
	var all []record
	for rep := 1; rep <= p.reps; rep++ {
		for _, n := range p.nodes {
			for _, mode := range p.modes {
				libs := slices.Clone(p.libs)
				if rep%2 == 0 { // alternate which library goes first
					slices.Reverse(libs)
				}
				for _, lib := range libs {
					r, err := measure(p, n, mode, lib)
					if err != nil {
						return fmt.Errorf("rep %d, %d nodes, %s, %s: %w", rep, n, mode, lib, err)
					}
					k := cellKey{n, mode, lib}
					results[k] = append(results[k], r)
					all = append(all, record{rep, n, mode, lib, r})
					fmt.Fprintf(os.Stderr, "  rep %d %d nodes %-4s %-10s published %8.0f/s, Redis %6.1f µs CPU, %5.2f reads, %5.1f commands per event, p99 %.2f ms\n",
						rep, n, mode, lib, r["published_per_s"], r["redis_cpu_us_per_pub"], r["reads_per_pub"], r["commands_per_pub"], r["p99_ms"])
				}
			}
		}
	}
	if p.jsonOut != "" {
		b, _ := json.MarshalIndent(all, "", " ")
		if err := os.WriteFile(p.jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	report(os.Stdout, p, results, start, loadBefore)
	return nil
}

// measure runs one cell on a fresh redis-server.
func measure(p runParams, nodes int, mode, lib string) (cellResult, error) {
	rs, err := redisproc.Start(p.bin, false)
	if err != nil {
		return nil, err
	}
	defer rs.Stop()
	if p.pin {
		if out, err := exec.Command("taskset", "-pc", "1", strconv.Itoa(rs.Pid())).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("taskset: %v: %s", err, out)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"cell", "-lib", lib, "-nodes", strconv.Itoa(nodes), "-streams", strconv.Itoa(p.streams),
		"-mode", mode, "-publishers", strconv.Itoa(p.publishers), "-rate", strconv.FormatFloat(p.rate, 'f', -1, 64),
		"-size", strconv.Itoa(p.size), "-redis", rs.Addr, "-redis-pid", strconv.Itoa(rs.Pid()),
		"-warm", p.warm.String(), "-window", p.window.String()}
	var cmd *exec.Cmd
	if p.pin {
		cmd = exec.Command("taskset", append([]string{"-c", "0", self}, args...)...)
	} else {
		cmd = exec.Command(self, args...)
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var r cellResult
	dec := json.NewDecoder(bufio.NewReader(out))
	decErr := dec.Decode(&r)
	_, _ = io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return nil, err
	}
	if decErr != nil {
		return nil, decErr
	}
	return r, nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
