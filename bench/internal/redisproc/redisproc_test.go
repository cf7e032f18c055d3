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

// A replica follows its primary; promoted, it keeps what it had and takes
// writes; the old primary, killed and rejoined as its replica, gets them.
func TestFailover(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CI must install redis-server (test.sh does)")
		}
		t.Skip("redis-server is not installed (apt-get install redis-server)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := Start("redis-server", true)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	r, err := StartReplica("redis-server", true, p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	pc := redis.NewClient(&redis.Options{Addr: p.Addr})
	defer pc.Close()
	rc := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer rc.Close()
	if err := pc.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for !r.InSync(ctx) || rc.Get(ctx, "k").Val() != "v" {
		if ctx.Err() != nil {
			t.Fatal("the replica never got k")
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Kill()
	if err := r.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rc.Set(ctx, "k2", "v2", 0).Err(); err != nil {
		t.Fatalf("the promoted replica refuses writes: %v", err)
	}
	if err := r.Restart(0); err != nil { // as a primary, from its own files
		t.Fatal(err)
	}
	if v, err := rc.Get(ctx, "k2").Result(); err != nil || v != "v2" {
		t.Fatalf("after the promoted replica's restart: %q, %v", v, err)
	}
	if err := p.Rejoin(r.Addr); err != nil {
		t.Fatal(err)
	}
	for !p.InSync(ctx) || pc.Get(ctx, "k2").Val() != "v2" {
		if ctx.Err() != nil {
			t.Fatal("the rejoined primary never got k2")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
