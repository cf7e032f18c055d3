// Package redisproc starts redis-server processes on loopback for the
// bench module's commands: ssebench's Redis runs and the soak.
package redisproc

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server this process started, on a free loopback port
// with its files in a temporary directory. Its methods are safe to call
// concurrently.
type Server struct {
	Addr    string // host:port
	bin     string
	dir     string
	persist bool

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start starts bin (a path, or a name looked up in PATH) and waits until it
// answers. With persist, it keeps an append-only file synced on every
// write, so that Restart loses nothing; without, it keeps nothing on disk.
func Start(bin string, persist bool) (*Server, error) {
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (Debian: apt-get install redis-server)", bin, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	dir, err := os.MkdirTemp("", "bench-redis-")
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), bin: path, dir: dir, persist: persist}
	if err := s.start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	aof := []string{"--appendonly", "no"}
	if s.persist {
		aof = []string{"--appendonly", "yes", "--appendfsync", "always"}
	}
	args := append([]string{"--port", port, "--bind", "127.0.0.1", "--dir", s.dir, "--save", "",
		"--daemonize", "no", "--logfile", filepath.Join(s.dir, "redis.log")}, aof...)
	cmd := exec.Command(s.bin, args...)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	for deadline := time.Now().Add(20 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("redis-server exited: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("redis-server did not answer: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Restart stops the server as an operator would (SIGTERM, or a kill after
// 10 s) and starts it again on the same port and files after down.
func (s *Server) Restart(down time.Duration) error {
	cmd, done := s.proc()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	time.Sleep(down)
	return s.start()
}

// Stop kills the server and removes its files. Calling it again does
// nothing more.
func (s *Server) Stop() {
	cmd, done := s.proc()
	_ = cmd.Process.Kill()
	<-done
	_ = os.RemoveAll(s.dir)
}

// Pid returns the process ID of the running server.
func (s *Server) Pid() int {
	cmd, _ := s.proc()
	return cmd.Process.Pid
}

func (s *Server) proc() (*exec.Cmd, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd, s.done
}
