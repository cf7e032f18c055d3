package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ssehub/sse/bench/internal/impl"
)

const (
	serverCPU = "0"
	driverCPU = "1"
	pinnedEnv = "SSEBENCH_PINNED"
)

func runCmd(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	quick := fs.Bool("quick", false, "smoke run: one repetition, short windows, 2,000 idle streams (about a minute)")
	reps := fs.Int("reps", 0, "repetitions per cell (0: 3, or 1 with -quick)")
	impls := fs.String("impls", strings.Join(impl.Names, ","), "implementations to run")
	only := fs.String("scenarios", "a,b,c,d,f", "scenarios to run (b also measures e)")
	pin := fs.Bool("pin", true, "pin servers to CPU "+serverCPU+" and the load generator to CPU "+driverCPU+" when there are two CPUs and taskset")
	jsonOut := fs.String("json", "", "also write every measurement to this file")
	profileDir := fs.String("profile", "", "write CPU profiles of the server runs to this directory (see -profile-impls)")
	profiled := fs.String("profile-impls", "ours", "the implementations -profile profiles")
	selfProfile := fs.String("loadprofile", "", "write a CPU profile of the load generator (this process) to this file")
	_ = fs.Parse(args)

	// A pinned re-run sees one CPU: it knows it is pinned from pinnedEnv.
	doPin := *pin && (os.Getenv(pinnedEnv) != "" || runtime.NumCPU() >= 2 && hasTaskset())
	if doPin && os.Getenv(pinnedEnv) == "" {
		// Re-run pinned: the Go runtime sizes GOMAXPROCS from the CPU
		// affinity at start.
		self, err := os.Executable()
		if err != nil {
			return err
		}
		argv := append([]string{"taskset", "-c", driverCPU, self, "run"}, args...)
		ts, err := exec.LookPath("taskset")
		if err != nil {
			return err
		}
		return syscall.Exec(ts, argv, append(os.Environ(), pinnedEnv+"=1"))
	}

	p := fullParams
	if *quick {
		p = quickParams
	}
	if *reps > 0 {
		p.Reps = *reps
	}
	names := strings.Split(*impls, ",")
	for _, n := range names {
		if !slices.Contains(impl.Names, n) {
			return fmt.Errorf("unknown implementation %q", n)
		}
	}
	keys := strings.Split(*only, ",")
	if *profileDir != "" {
		if err := os.MkdirAll(*profileDir, 0o755); err != nil {
			return err
		}
	}
	if err := checkFiles(p, keys); err != nil {
		return err
	}

	if *selfProfile != "" {
		f, err := os.Create(*selfProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}
	start := time.Now()
	info := machineInfo(doPin)
	mode := "full"
	if *quick {
		mode = "quick"
	}
	fmt.Fprintf(os.Stderr, "ssebench: %s run, %d repetition(s), pinned=%v, load %s\n", mode, p.Reps, doPin, loadAvg())
	var results []result
	for rep := 1; rep <= p.Reps; rep++ {
		e := &env{p: p, pin: doPin, profileDir: *profileDir, profiled: strings.Split(*profiled, ","), rep: rep}
		for _, sc := range scenarios {
			if !slices.Contains(keys, sc.Key) {
				continue
			}
			for _, name := range names {
				if sc.Impls != nil && !sc.Impls(name) {
					continue
				}
				t0 := time.Now()
				e.procs = nil
				parts, err := sc.Run(e, name)
				crash := ""
				for _, p := range e.procs {
					if c := p.crashed(); c != "" {
						crash = c
					}
				}
				if err != nil {
					for _, part := range sc.Parts {
						results = append(results, result{Scenario: part, Impl: name, Rep: rep, Err: err.Error(), Crash: crash})
					}
					fmt.Fprintf(os.Stderr, "  rep %d %-2s %-17s error after %v: %v\n", rep, sc.Key, name, time.Since(t0).Round(time.Millisecond), err)
					continue
				}
				for _, part := range sc.Parts {
					results = append(results, result{Scenario: part, Impl: name, Rep: rep, M: parts[part], Crash: crash})
				}
				fmt.Fprintf(os.Stderr, "  rep %d %-2s %-17s %v\n", rep, sc.Key, name, time.Since(t0).Round(time.Millisecond))
				time.Sleep(200 * time.Millisecond) // let the previous server's sockets go
			}
		}
	}
	elapsed := time.Since(start)
	info.Elapsed = elapsed.Round(time.Second).String()
	info.LoadAfter = loadAvg()
	info.Command = "ssebench run " + strings.Join(args, " ")
	info.Reps = p.Reps
	info.Mode = mode
	report(os.Stdout, info, p, names, results)
	// A peer that fails a scenario is a finding; ours or raw failing is a
	// bug in the hub or in this benchmark: exit non-zero (for CI).
	var failed []string
	for _, r := range results {
		if (impl.Ours(r.Impl) || r.Impl == "raw") && (r.Err != "" || r.Crash != "") {
			failed = append(failed, fmt.Sprintf("%s (%s, run %d): %s%s", r.Impl, r.Scenario, r.Rep, r.Err, r.Crash))
		}
	}
	if *jsonOut != "" {
		// JSON has no NaN ("never happened"): such figures become null.
		type jsonResult struct {
			result
			M map[string]*float64 `json:"metrics"`
		}
		var out []jsonResult
		for _, r := range results {
			jr := jsonResult{result: r, M: map[string]*float64{}}
			for k, v := range r.M {
				if !math.IsNaN(v) && !math.IsInf(v, 0) {
					jr.M[k] = &v
				} else {
					jr.M[k] = nil
				}
			}
			out = append(out, jr)
		}
		b, err := json.MarshalIndent(struct {
			Info    machine      `json:"machine"`
			Params  params       `json:"params"`
			Results []jsonResult `json:"results"`
		}{info, p, out}, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d measurement(s) of ours or raw failed: %s", len(failed), strings.Join(failed, "; "))
	}
	return nil
}

func hasTaskset() bool {
	_, err := exec.LookPath("taskset")
	return err == nil
}

// checkFiles makes sure the process may open enough sockets: the Go runtime
// raises the soft limit to the hard one, which must cover the idle
// scenarios run.
func checkFiles(p params, keys []string) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return nil
	}
	need := uint64(p.IdleN + 200)
	if slices.Contains(keys, "g") {
		need = max(need, uint64(p.ScaleN+200))
	}
	if rl.Cur < need {
		return fmt.Errorf("open file limit %d is below the %d the idle scenario needs: raise it (ulimit -n %d)", rl.Cur, need, need)
	}
	return nil
}

type machine struct {
	Date      string `json:"date"`
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	Go        string `json:"go"`
	Kernel    string `json:"kernel"`
	Pinned    bool   `json:"pinned"`
	LoadStart string `json:"load_start"`
	LoadAfter string `json:"load_after"`
	Elapsed   string `json:"elapsed"`
	Command   string `json:"command"`
	Reps      int    `json:"reps"`
	Mode      string `json:"mode"`
}

func machineInfo(pinned bool) machine {
	m := machine{
		Date:      time.Now().UTC().Format("2006-01-02 15:04 MST"),
		Cores:     runtime.NumCPU(),
		Go:        runtime.Version(),
		Pinned:    pinned,
		LoadStart: loadAvg(),
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	// All logical CPUs of the machine, not only those of this process.
	if b, err := os.ReadFile("/sys/devices/system/cpu/online"); err == nil {
		if n := countCPUs(strings.TrimSpace(string(b))); n > 0 {
			m.Cores = n
		}
	}
	return m
}

// countCPUs counts a CPU list such as "0-1,4".
func countCPUs(list string) int {
	n := 0
	for _, part := range strings.Split(list, ",") {
		var a, b int
		if _, err := fmt.Sscanf(part, "%d-%d", &a, &b); err == nil {
			n += b - a + 1
		} else if _, err := fmt.Sscanf(part, "%d", &a); err == nil {
			n++
		}
	}
	return n
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
