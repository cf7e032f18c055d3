package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ssehub/sse/bench/internal/server"
)

// proc is one running server process and a client for its control API.
type proc struct {
	cmd  *exec.Cmd
	impl string
	addr string
	path string
	ctl  *http.Client
	exit chan struct{}

	mu       sync.Mutex
	panicMsg string // the first "panic:" line the server printed
}

// scanStderr passes the server's stderr on, but of a panic only its first
// line, which it also keeps.
func (p *proc) scanStderr(r io.Reader, done chan<- struct{}) {
	defer close(done)
	sc := bufio.NewScanner(r)
	inPanic := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "panic:") {
			p.mu.Lock()
			if p.panicMsg == "" {
				p.panicMsg = line
			}
			p.mu.Unlock()
			if !inPanic {
				fmt.Fprintf(os.Stderr, "    server %s: %s\n", p.impl, line)
			}
			inPanic = true
			continue
		}
		if !inPanic {
			fmt.Fprintf(os.Stderr, "    server %s: %s\n", p.impl, line)
		}
	}
}

// crashed returns the server's panic message, if it panicked.
func (p *proc) crashed() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.panicMsg
}

// startServer starts "ssebench server" for implName, pinned to serverCPU
// when pin is set.
func startServer(implName string, replay, sndbuf int, cpuprofile string, pin bool) (*proc, error) {
	args := []string{"-replay", fmt.Sprint(replay), "-sndbuf", fmt.Sprint(sndbuf)}
	if cpuprofile != "" {
		args = append(args, "-cpuprofile", cpuprofile)
	}
	return startServerArgs(implName, args, pin)
}

// startServerArgs starts "ssebench server -impl implName" with the flags
// in args, pinned to serverCPU when pin is set.
func startServerArgs(implName string, args []string, pin bool) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args = append([]string{"server", "-impl", implName}, args...)
	if r := os.Getenv("SSEBENCH_MEMPROFILERATE"); r != "" {
		args = append(args, "-memprofilerate", r)
	}
	var cmd *exec.Cmd
	if pin {
		cmd = exec.Command("taskset", append([]string{"-c", serverCPU, self}, args...)...)
	} else {
		cmd = exec.Command(self, args...)
	}
	errOut, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, exit: make(chan struct{}), impl: implName}
	stderrDone := make(chan struct{})
	go p.scanStderr(errOut, stderrDone)
	go func() { <-stderrDone; _ = cmd.Wait(); close(p.exit) }()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- line
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case line := <-ready:
		addr, path, _ := strings.Cut(line, " ")
		p.addr, p.path = addr, path
	case <-p.exit:
		return nil, errors.New("server exited before it was ready")
	case <-time.After(10 * time.Second):
		p.kill()
		return nil, errors.New("server not ready after 10s")
	}
	p.ctl = &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 4},
	}
	return p, nil
}

func (p *proc) url(path string) string { return "http://" + p.addr + path }

func (p *proc) call(method, path string, out any) error {
	req, err := http.NewRequest(method, p.url(path), nil)
	if err != nil {
		return err
	}
	res, err := p.ctl.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		return fmt.Errorf("%s %s: %s: %s", method, path, res.Status, b)
	}
	if out == nil {
		_, err = io.Copy(io.Discard, res.Body)
		return err
	}
	return json.NewDecoder(res.Body).Decode(out)
}

func (p *proc) stats() (server.Stats, error) {
	var st server.Stats
	err := p.call("GET", "/ctl/stats", &st)
	return st, err
}

// publish starts the server's publisher: size-byte events at rate per
// second (0: as fast as it can), until count events (0: no limit) or dur
// (0: until stopped). A yielding publisher calls runtime.Gosched after
// every event.
func (p *proc) publish(size int, rate float64, count int, dur time.Duration, yield bool) error {
	y := 0
	if yield {
		y = 1
	}
	q := fmt.Sprintf("/ctl/publish?size=%d&rate=%g&count=%d&dur=%s&yield=%d", size, rate, count, dur, y)
	return p.call("POST", q, nil)
}

// stop stops the publisher and returns the stats after it; stopped is false
// if the publisher is stuck in Publish.
func (p *proc) stop() (st server.Stats, stopped bool, err error) {
	var r struct {
		server.Stats
		Stopped bool `json:"stopped"`
	}
	err = p.call("POST", "/ctl/stop", &r)
	return r.Stats, r.Stopped, err
}

func (p *proc) gc() error { return p.call("POST", "/ctl/gc", nil) }

// close asks the server to exit and kills it if it does not.
func (p *proc) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", p.url("/ctl/exit"), nil)
	if res, err := p.ctl.Do(req); err == nil {
		_ = res.Body.Close()
	}
	select {
	case <-p.exit:
	case <-ctx.Done():
		p.kill()
	}
	p.ctl.CloseIdleConnections()
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exit
}
