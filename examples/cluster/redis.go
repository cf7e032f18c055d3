package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// redisServer is a redis-server process of the demo's own, on a free
// loopback port, keeping nothing on disk.
type redisServer struct {
	Addr string
	cmd  *exec.Cmd
	dir  string
	done chan error
}

// errNoRedis says that no redis-server binary was found.
var errNoRedis = errors.New("no redis-server on PATH (Debian: apt-get install redis-server), or pass -redis host:port")

// startRedis starts redis-server (from PATH) on a free loopback port and
// waits until it accepts connections.
func startRedis(ctx context.Context) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errNoRedis
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sse-cluster-redis-")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	r := &redisServer{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, dir: dir, done: make(chan error, 1)}
	go func() { r.done <- cmd.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", r.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return r, nil
		}
		select {
		case err := <-r.done:
			os.RemoveAll(dir)
			return nil, fmt.Errorf("redis-server exited: %v (log in %s)", err, dir)
		default:
		}
		if time.Now().After(deadline) {
			r.Stop()
			return nil, fmt.Errorf("redis-server did not listen on %s within 10 s", r.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the server and removes its directory.
func (r *redisServer) Stop() {
	if r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
	}
	<-r.done
	os.RemoveAll(r.dir)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
