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
	"strings"
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

	mu        sync.Mutex
	cmd       *exec.Cmd
	done      chan struct{} // closed when cmd has exited
	replicaOf string        // host:port of its primary, "" for a primary
}

// Start starts bin (a path, or a name looked up in PATH) and waits until it
// answers. With persist, it keeps an append-only file synced on every
// write, so that Restart loses nothing; without, it keeps nothing on disk.
func Start(bin string, persist bool) (*Server, error) {
	return StartReplica(bin, persist, "")
}

// StartReplica starts bin as Start does, as a replica of the Redis at
// primary (host:port), or as a primary when primary is "". It returns once
// the server answers, which may be before it has synchronised with its
// primary (see InSync).
func StartReplica(bin string, persist bool, primary string) (*Server, error) {
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
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), bin: path, dir: dir, persist: persist, replicaOf: primary}
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
		"--daemonize", "no", "--logfile", filepath.Join(s.dir, "redis.log"),
		"--repl-diskless-sync-delay", "0"}, aof...)
	s.mu.Lock()
	if s.replicaOf != "" {
		host, pport, _ := net.SplitHostPort(s.replicaOf)
		args = append(args, "--replicaof", host, pport)
	}
	s.mu.Unlock()
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
//
// A server that is writing its first append-only file (a replica just
// synchronised, say) refuses SIGTERM, and would be killed with nothing on
// disk: Restart waits for that write first.
func (s *Server) Restart(down time.Duration) error {
	if s.persist {
		s.awaitRewrite(10 * time.Second)
	}
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

// Signal sends sig to the running server: SIGSTOP freezes it (it answers
// nothing, and its clients' connections stay open) until SIGCONT.
func (s *Server) Signal(sig os.Signal) error {
	cmd, _ := s.proc()
	return cmd.Process.Signal(sig)
}

// Promote makes a replica a primary (REPLICAOF NO ONE) that keeps what it
// has; Restart then starts it as a primary.
func (s *Server) Promote(ctx context.Context) error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	if err := c.Do(ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
		return err
	}
	s.mu.Lock()
	s.replicaOf = ""
	s.mu.Unlock()
	return nil
}

// Kill ends the server at once (SIGKILL), as a crash would: it writes
// nothing more.
func (s *Server) Kill() {
	cmd, done := s.proc()
	_ = cmd.Process.Kill()
	<-done
}

// Rejoin starts a server that Kill ended, on the same port, as an empty
// replica of primary (host:port): its files are removed first, as for a
// machine replaced after a crash.
func (s *Server) Rejoin(primary string) error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(s.dir, e.Name())); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.replicaOf = primary
	s.mu.Unlock()
	return s.start()
}

// InSync reports whether a replica's link to its primary is up and its
// initial synchronisation done.
func (s *Server) InSync(ctx context.Context) bool {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	info, err := c.Info(ctx, "replication").Result()
	return err == nil && strings.Contains(info, "master_link_status:up") &&
		strings.Contains(info, "master_sync_in_progress:0")
}

// awaitRewrite waits, at most max, until the server rewrites no
// append-only file.
func (s *Server) awaitRewrite(max time.Duration) {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	for deadline := time.Now().Add(max); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := c.Info(ctx, "persistence").Result()
		cancel()
		if err == nil && strings.Contains(info, "aof_rewrite_in_progress:0") &&
			strings.Contains(info, "aof_rewrite_scheduled:0") {
			return
		}
	}
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
