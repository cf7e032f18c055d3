// Package server is the server mode of ssebench: one implementation per
// process, mounted at its path next to a small control API that the load
// generator drives, so that the process's CPU time, memory and allocations
// belong to that implementation alone.
//
// Control API (all answers are JSON):
//
//	GET  /ctl/stats                       process and publisher counters
//	POST /ctl/publish?size=&rate=&count=&dur=  start publishing in the background
//	POST /ctl/stop                        stop publishing, wait up to a second
//	POST /ctl/gc                          runtime.GC and debug.FreeOSMemory
//	POST /ctl/exit                        flush the CPU profile and exit
//	     /debug/pprof/...                 net/http/pprof
package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"runtime/debug"
	rpprof "runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ssehub/sse/bench/internal/impl"
	"github.com/ssehub/sse/bench/internal/load"
)

// Stats is what /ctl/stats answers.
type Stats struct {
	CPUNanos   int64  `json:"cpu_ns"`     // user + system CPU time of the process
	Mallocs    uint64 `json:"mallocs"`    // heap objects allocated, ever
	RSS        int64  `json:"rss"`        // resident set size, bytes (VmRSS)
	HeapInuse  uint64 `json:"heap_inuse"` // bytes
	StackInuse uint64 `json:"stack_inuse"`
	Goroutines int    `json:"goroutines"`
	WriteCalls int64  `json:"write_calls"` // write system calls, ever (syscw in /proc/self/io)
	Streams    int    `json:"streams"`     // as the implementation counts them
	Published  uint64 `json:"published"`   // events published since start
	LastSeq    uint64 `json:"last_seq"`    // the last sequence number published
	Publishing bool   `json:"publishing"`
	PubErrors  uint64 `json:"pub_errors"`
	UnixNanos  int64  `json:"unix_ns"`
}

// Config is the server mode's configuration.
type Config struct {
	Impl       string
	Addr       string // listen address; "127.0.0.1:0" picks a port
	Replay     int    // impl.Options.Replay
	CPUProfile string // write a CPU profile of the whole run here
	SndBuf     int    // if positive, SO_SNDBUF of every accepted connection
	Redis      string // impl.Options.Redis
}

type server struct {
	impl      impl.Impl
	seq       atomic.Uint64
	published atomic.Uint64
	errors    atomic.Uint64

	mu      sync.Mutex // guards the current publisher
	stop    chan struct{}
	stopped chan struct{}
	running atomic.Int32

	profile *os.File

	streamsMu   sync.Mutex // one Streams call at a time
	lastStreams atomic.Int64
}

// Run serves until /ctl/exit. It prints "READY <addr> <path>" on stdout
// once it listens.
func Run(cfg Config) error {
	im, err := impl.New(cfg.Impl, impl.Options{Replay: cfg.Replay, Redis: cfg.Redis})
	if err != nil {
		return err
	}
	s := &server{impl: im}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return err
		}
		if err := rpprof.StartCPUProfile(f); err != nil {
			return err
		}
		s.profile = f
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	if cfg.SndBuf > 0 {
		ln = sndBufListener{ln.(*net.TCPListener), cfg.SndBuf}
	}
	mux := http.NewServeMux()
	mux.Handle("/sse", im.Handler())
	mux.HandleFunc("GET /ctl/stats", s.handleStats)
	mux.HandleFunc("POST /ctl/publish", s.handlePublish)
	mux.HandleFunc("POST /ctl/stop", s.handleStop)
	mux.HandleFunc("POST /ctl/gc", func(w http.ResponseWriter, _ *http.Request) {
		runtime.GC()
		debug.FreeOSMemory()
		writeJSON(w, map[string]bool{"ok": true})
	})
	mux.HandleFunc("POST /ctl/exit", s.handleExit)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		// Peers that write after a client left make net/http log
		// "superfluous WriteHeader"; that is noise here.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	fmt.Printf("READY %s %s\n", ln.Addr(), im.Path())
	return srv.Serve(ln)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *server) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, s.stats())
}

func (s *server) stats() Stats {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Stats{
		CPUNanos:   CPUTime(),
		Mallocs:    ms.Mallocs,
		RSS:        RSS(),
		HeapInuse:  ms.HeapInuse,
		StackInuse: ms.StackInuse,
		Goroutines: runtime.NumGoroutine(),
		WriteCalls: writeCalls(),
		Streams:    s.streams(),
		Published:  s.published.Load(),
		LastSeq:    s.seq.Load(),
		Publishing: s.running.Load() > 0,
		PubErrors:  s.errors.Load(),
		UnixNanos:  time.Now().UnixNano(),
	}
}

// handlePublish starts a publisher: size-byte events, rate per second (0:
// as fast as Publish returns), until count events (0: no limit) or dur
// (0: until /ctl/stop) have passed. A running publisher is stopped first;
// if it does not stop (Publish blocks), the new one runs beside it.
// streams asks the implementation how many streams it has, but gives up
// after 200ms: a peer stuck behind a client that does not read may block
// the call (alexandrevicenzi's ClientCount waits on a lock the stuck fan-out
// holds). It then returns the last answer, or -1.
func (s *server) streams() int {
	if !s.streamsMu.TryLock() {
		return int(s.lastStreams.Load())
	}
	done := make(chan int, 1)
	go func() {
		defer s.streamsMu.Unlock()
		n := s.impl.Streams()
		s.lastStreams.Store(int64(n))
		done <- n
	}()
	select {
	case n := <-done:
		return n
	case <-time.After(200 * time.Millisecond):
		return -1
	}
}

func (s *server) handlePublish(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	size, _ := strconv.Atoi(q.Get("size"))
	rate, _ := strconv.ParseFloat(q.Get("rate"), 64)
	count, _ := strconv.ParseUint(q.Get("count"), 10, 64)
	dur, _ := time.ParseDuration(q.Get("dur"))
	yield := q.Get("yield") == "1"
	s.stopPublisher(time.Second)
	s.mu.Lock()
	stop, stopped := make(chan struct{}), make(chan struct{})
	s.stop, s.stopped = stop, stopped
	s.mu.Unlock()
	s.running.Add(1)
	go s.publish(size, rate, count, dur, yield, stop, stopped)
	writeJSON(w, s.stats())
}

func (s *server) publish(size int, rate float64, count uint64, dur time.Duration, yield bool, stop, stopped chan struct{}) {
	defer close(stopped)
	defer s.running.Add(-1)
	buf := make([]byte, 0, size+64)
	start := time.Now()
	var deadline time.Time
	if dur > 0 {
		deadline = start.Add(dur)
	}
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
	}
	for i := uint64(0); count == 0 || i < count; i++ {
		select {
		case <-stop:
			return
		default:
		}
		now := time.Now()
		if !deadline.IsZero() && !now.Before(deadline) {
			return
		}
		if interval > 0 {
			next := start.Add(time.Duration(i) * interval)
			if d := next.Sub(now); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-stop:
					t.Stop()
					return
				case <-t.C:
				}
			}
		}
		seq := s.seq.Add(1)
		buf = load.Payload(buf, seq, time.Now().UnixNano(), size)
		if err := s.impl.Publish(buf); err != nil {
			s.errors.Add(1)
			continue
		}
		s.published.Add(1)
		if yield {
			runtime.Gosched()
		}
	}
}

func (s *server) stopPublisher(wait time.Duration) bool {
	s.mu.Lock()
	stop, stopped := s.stop, s.stopped
	s.stop, s.stopped = nil, nil
	s.mu.Unlock()
	if stop == nil {
		return true
	}
	close(stop)
	select {
	case <-stopped:
		return true
	case <-time.After(wait):
		return false
	}
}

func (s *server) handleStop(w http.ResponseWriter, _ *http.Request) {
	ok := s.stopPublisher(time.Second)
	st := s.stats()
	writeJSON(w, struct {
		Stats
		Stopped bool `json:"stopped"`
	}{st, ok})
}

func (s *server) handleExit(w http.ResponseWriter, _ *http.Request) {
	if s.profile != nil {
		rpprof.StopCPUProfile()
		_ = s.profile.Close()
		// The allocation profile beside it: go tool pprof -sample_index=alloc_objects.
		if f, err := os.Create(s.profile.Name() + ".allocs"); err == nil {
			_ = rpprof.Lookup("allocs").WriteTo(f, 0)
			_ = f.Close()
		}
	}
	writeJSON(w, map[string]bool{"ok": true})
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		done := make(chan struct{})
		go func() { s.impl.Close(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
		}
		os.Exit(0)
	}()
}

// sndBufListener sets the send buffer of every connection it accepts, which
// also turns off the kernel's send buffer autotuning for it.
type sndBufListener struct {
	*net.TCPListener
	size int
}

func (l sndBufListener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	if err := c.SetWriteBuffer(l.size); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// CPUTime returns the user and system CPU time the process has used.
func CPUTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// writeCalls returns how many write system calls the process has made,
// from /proc/self/io, or 0 where there is none.
func writeCalls() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("syscw:")); ok {
			n, _ := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			return n
		}
	}
	return 0
}

// RSS returns the process's resident set size from /proc/self/status, or 0
// where there is no /proc.
func RSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:")); ok {
			kb, _ := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))), 10, 64)
			return kb << 10
		}
	}
	return 0
}
