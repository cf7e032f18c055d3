// Command flood measures what a flood of connects from one address does to
// everybody else: a hub (a process of its own) serves N streams from 250
// loopback addresses (127.0.1.x) and broadcasts timestamped events; a probe
// (from 127.0.2.x, one address after another) opens a stream every 20 ms
// and times it, from dialing to the stream's first event (the sse-position
// that ends a fresh start); meanwhile, in some phases, a flooder (a process
// of its own) from 127.0.0.2 opens streams as fast as -rate asks and drops
// each one as soon as its answer begins.
//
// Where taskset(1) is found, the flooder is pinned to CPU 1 and the rest
// (the hub, the streams, the probe) to CPU 0, so that what the others see
// is the hub's doing and not the flooder's: 5,000 connects a second cost
// the connecting side far more than the hub (run unpinned, the flooder's
// connects took both cores and starved the probe in the same process). The
// flooder's connects are as cheap as it can make them, as an attacker's
// would be: the port is picked at connect (IP_BIND_ADDRESS_NO_PORT) and a
// connection is dropped with a reset, leaving no TIME_WAIT to exhaust the
// address's ports.
//
// Three phases, each against a fresh server, side by side in one run:
//
//	quiet     no flood
//	flood     the flood, with the zero Config (no connect rate)
//	limited   the flood, with Config.ConnectRatePerAddress {5/s, burst 50}
//
// and for each: the probe's connect latency (p50, p99), the broadcast's
// delivery latency to the N streams (p50, p99), events lost, the flood's
// connects served and refused, and the server's CPU.
//
//	go run ./cmd/flood                        # 1,000 streams, 5,000 connects/s, 10 s a phase
//	go run ./cmd/flood -streams 200 -for 3s   # a quick look
//
// Linux only (127.0.0.2 and 127.0.0.3 are loopback there, /proc for CPU).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	sse "github.com/ssehub/sse"
	"github.com/ssehub/sse/bench/internal/procstat"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "server" {
		if err := serve(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "flood server:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "flooder" {
		flooder(os.Args[2:])
		return
	}
	pinSelf()
	streams := flag.Int("streams", 1000, "streams of the other clients, from 127.0.1.1 to 127.0.1.250")
	rate := flag.Float64("rate", 5000, "the flood's connects per second, from 127.0.0.2")
	events := flag.Float64("events", 20, "broadcasts per second")
	phase := flag.Duration("for", 10*time.Second, "the measured time of each phase")
	flag.Parse()
	fmt.Printf("flood: %d streams, %.0f connects/s from one address, %.0f events/s, %v a phase; pinned: %v\n\n", *streams, *rate, *events, *phase, pinned())
	fmt.Println("| phase | probe connect p50 | p99 | delivery p50 | p99 | lost | flood served | refused | server CPU | flooder CPU |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	failed := false
	for _, ph := range []struct {
		name    string
		flood   bool
		limited bool
	}{{"quiet", false, false}, {"flood", true, false}, {"limited", true, true}} {
		r, err := runPhase(*streams, *rate, *events, *phase, ph.flood, ph.limited)
		if err != nil {
			fmt.Fprintf(os.Stderr, "flood: %s: %v\n", ph.name, err)
			failed = true
			continue
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %d | %d | %d | %.0f %% | %.0f %% |\n", ph.name,
			ms(r.connect, 0.5), ms(r.connect, 0.99), ms(r.delivery, 0.5), ms(r.delivery, 0.99),
			r.lost, r.served, r.refused, 100*r.cpu, 100*r.flooderCPU)
	}
	if failed {
		os.Exit(1)
	}
}

// result is what one phase measured.
type result struct {
	connect, delivery []time.Duration
	lost              int64
	served, refused   int64
	cpu, flooderCPU   float64 // of one core
}

func ms(ds []time.Duration, q float64) string {
	if len(ds) == 0 {
		return "–"
	}
	slices.Sort(ds)
	return fmt.Sprintf("%.1f ms", float64(ds[int(q*float64(len(ds)-1))])/1e6)
}

// runPhase starts a server, connects the streams, runs the probe (and the
// flood) for d while the server broadcasts, and stops it all.
func runPhase(n int, rate, events float64, d time.Duration, flood, limited bool) (*result, error) {
	args := []string{"server", "-events", fmt.Sprint(events)}
	if limited {
		args = append(args, "-limited")
	}
	cmd := command("0", args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("the server said nothing: %w", err)
	}
	addr = strings.TrimSpace(addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var r result
	var mu sync.Mutex
	var wg sync.WaitGroup
	var live atomic.Int64
	for i := range n {
		from := fmt.Sprintf("127.0.1.%d", 1+i%250) // others: many addresses, a few streams each
		wg.Go(func() {
			lost, lat := follow(ctx, from, addr, &live)
			mu.Lock()
			r.lost += lost
			r.delivery = append(r.delivery, lat...)
			mu.Unlock()
		})
	}
	for deadline := time.Now().Add(time.Minute); live.Load() < int64(n); {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d streams live", live.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var fl *exec.Cmd
	var flOut strings.Builder
	if flood {
		fl = command("1", "flooder", "-addr", addr, "-rate", fmt.Sprint(rate))
		fl.Stdout, fl.Stderr = &flOut, os.Stderr
		if err := fl.Start(); err != nil {
			return nil, err
		}
		defer func() { _ = fl.Process.Kill(); _ = fl.Wait() }()
	}
	time.Sleep(time.Second) // the flood under way
	cpu0, t0 := procstat.CPU(cmd.Process.Pid), time.Now()
	var flCPU0 time.Duration
	if fl != nil {
		flCPU0 = procstat.CPU(fl.Process.Pid)
	}
	mu.Lock()
	r.delivery = r.delivery[:0] // measure from here
	mu.Unlock()
	probeEnd := time.Now().Add(d)
	for i := 0; time.Now().Before(probeEnd); i++ {
		if c, err := probe(fmt.Sprintf("127.0.2.%d", 1+i%250), addr); err == nil {
			r.connect = append(r.connect, c)
		} else {
			r.connect = append(r.connect, 10*time.Second) // counted as very slow
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := float64(time.Since(t0))
	r.cpu = float64(procstat.CPU(cmd.Process.Pid)-cpu0) / elapsed
	if fl != nil {
		r.flooderCPU = float64(procstat.CPU(fl.Process.Pid)-flCPU0) / elapsed
		_ = fl.Process.Signal(syscall.SIGTERM)
		if err := fl.Wait(); err != nil {
			return nil, fmt.Errorf("flooder: %w", err)
		}
		if _, err := fmt.Sscan(flOut.String(), &r.served, &r.refused); err != nil {
			return nil, fmt.Errorf("flooder said %q: %w", flOut.String(), err)
		}
	}
	cancel()
	wg.Wait()
	return &r, nil
}

// dial connects from the loopback address from.
func dial(from, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	return d.Dial("tcp", addr)
}

// follow reads a stream from the loopback address from until ctx ends, and
// returns the events it missed and the latency of each it got.
func follow(ctx context.Context, from, addr string, live *atomic.Int64) (lost int64, lat []time.Duration) {
	conn, err := dial(from, addr)
	if err != nil {
		return 0, nil
	}
	context.AfterFunc(ctx, func() { conn.Close() })
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
	br := bufio.NewReader(conn)
	first, next := true, int64(-1)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return lost, lat
		}
		if first && strings.HasPrefix(line, "event: sse-position") {
			first = false
			live.Add(1)
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		seqText, nanos, _ := strings.Cut(strings.TrimSpace(data), ",")
		seq, err1 := strconv.ParseInt(seqText, 10, 64)
		at, err2 := strconv.ParseInt(nanos, 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if next >= 0 && seq > next {
			lost += seq - next
		}
		next = seq + 1
		lat = append(lat, time.Since(time.Unix(0, at)))
	}
}

// probe opens a stream from the loopback address from and returns how long
// it took to get its first event (the sse-position that ends a fresh
// start).
func probe(from, addr string) (time.Duration, error) {
	began := time.Now()
	conn, err := dial(from, addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
	br := bufio.NewReader(conn)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return 0, err
		}
		if strings.HasPrefix(line, "event: sse-position") {
			return time.Since(began), nil
		}
		if strings.HasPrefix(line, "retry: ") && br.Buffered() == 0 {
			// A refusal is a lone retry field, then the end.
			if _, err := br.Peek(1); errors.Is(err, io.EOF) {
				return 0, errors.New("refused")
			}
		}
	}
}

// flooder is the flooding process: it opens streams from 127.0.0.2 at
// -rate per second, reading each answer's first bytes and dropping it,
// until SIGTERM; then it prints the streams it was served and the refusals
// it got.
func flooder(args []string) {
	fs := flag.NewFlagSet("flooder", flag.ExitOnError)
	addr := fs.String("addr", "", "the hub's address")
	rate := fs.Float64("rate", 5000, "connects per second")
	_ = fs.Parse(args)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	var served, refused atomic.Int64
	floodFrom(ctx, *addr, *rate, &served, &refused)
	fmt.Println(served.Load(), refused.Load())
}

// floodFrom opens streams from 127.0.0.2 at rate per second, reading each
// answer's first bytes and dropping it, until ctx ends.
func floodFrom(ctx context.Context, addr string, rate float64, served, refused *atomic.Int64) {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate * 10)) // ten at a time
	defer tick.Stop()
	sem := make(chan struct{}, 512) // connects in flight
	d := net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")},
		Timeout:   5 * time.Second,
		Control: func(_, _ string, c syscall.RawConn) error {
			// The port is picked at connect, for this destination only: a
			// bind to port 0 would look for one free for every destination.
			return c.Control(func(fd uintptr) {
				_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
			})
		},
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for range 10 {
			select {
			case sem <- struct{}{}:
			default:
				continue // the server is that slow: so is the flood
			}
			wg.Go(func() {
				defer func() { <-sem }()
				conn, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					return
				}
				_ = conn.(*net.TCPConn).SetLinger(0) // a reset: no TIME_WAIT holds the port
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
				fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
				br := bufio.NewReader(conn)
				for {
					line, err := br.ReadString('\n')
					if strings.HasPrefix(line, "event: sse-position") {
						served.Add(1) // a stream: drop it
						return
					}
					if err != nil {
						if errors.Is(err, io.EOF) {
							refused.Add(1) // a retry field, and the end
						}
						return
					}
				}
			})
		}
	}
}

// ipBindAddressNoPort is Linux's IP_BIND_ADDRESS_NO_PORT socket option.
const ipBindAddressNoPort = 24

// command returns a command running this program with args, pinned to cpu
// where taskset(1) is found.
func command(cpu string, args ...string) *exec.Cmd {
	if path, err := exec.LookPath("taskset"); err == nil && runtime.NumCPU() > 1 {
		return exec.Command(path, append([]string{"-c", cpu, os.Args[0]}, args...)...)
	}
	return exec.Command(os.Args[0], args...)
}

// pinned reports whether this process runs pinned (see pinSelf).
func pinned() bool { return os.Getenv("FLOOD_PINNED") != "" }

// pinSelf runs this program again pinned to CPU 0 (where the hub runs too),
// where taskset(1) is found, and exits with its status.
func pinSelf() {
	path, err := exec.LookPath("taskset")
	if pinned() || err != nil || runtime.NumCPU() < 2 {
		return
	}
	cmd := exec.Command(path, append([]string{"-c", "0", os.Args[0]}, os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), "FLOOD_PINNED=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "flood:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serve is the server process: a hub on a loopback port (printed first),
// broadcasting "<seq>,<unix-nanos>" events, until SIGTERM.
func serve(args []string) error {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	events := fs.Float64("events", 20, "broadcasts per second")
	limited := fs.Bool("limited", false, "Config.ConnectRatePerAddress {5/s, burst 50}")
	_ = fs.Parse(args)
	cfg := sse.Config{MaxStreams: -1, RefuseRetry: time.Second}
	if *limited {
		cfg.ConnectRatePerAddress = sse.Rate{PerSecond: 5, Burst: 50}
	}
	hub, err := sse.NewHub(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: hub, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Println(ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	tick := time.NewTicker(time.Duration(float64(time.Second) / *events))
	defer tick.Stop()
	for seq := 0; ; seq++ {
		select {
		case <-ctx.Done():
			timeout, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = hub.Shutdown(timeout)
			return srv.Shutdown(timeout)
		case <-tick.C:
			hub.Broadcast(sse.Event{Data: fmt.Appendf(nil, "%d,%d", seq, time.Now().UnixNano())})
		}
	}
}
