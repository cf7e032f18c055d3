package redisproc

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A persistent server keeps what it acknowledged across Restart, on the
// same address; Stop leaves no files behind.
func TestRestartKeepsData(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CI must install redis-server (test.sh does)")
		}
		t.Skip("redis-server is not installed (apt-get install redis-server)")
	}
	s, err := Start("redis-server", true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	pid := s.Pid()
	if err := s.Restart(0); err != nil {
		t.Fatal(err)
	}
	if s.Pid() == pid {
		t.Fatal("Restart kept the same process")
	}
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("after Restart: %q, %v", v, err)
	}
	dir := s.dir
	s.Stop()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("Stop left %s: %v", dir, err)
	}
}
