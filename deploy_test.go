package sse

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A client that comes back after a restart of the hub's process (a
// deploy: a new epoch) is reset, then receives every event the new process
// published before it came back, then live events: the restart loses only
// what the old process never delivered. Keyed events come conflated, as a
// snapshot would have them.
func TestResetAfterRestartReplaysTheNewEpoch(t *testing.T) {
	before, oldSrv := newTestHub(t, Config{Heartbeat: -1}) // the old process
	c := dial(t, nil, oldSrv.URL, nil)
	waitStreams(t, before, 1)
	before.Broadcast(data("old"))
	last := c.next().ID
	c.close()

	h, srv := newTestHub(t, Config{Heartbeat: -1}) // the new process
	h.Broadcast(data("new 1"))
	h.Broadcast(Event{Key: "p", Data: []byte("p=1")})
	h.Send("someone else", data("not yours"))
	h.Broadcast(Event{Key: "p", Data: []byte("p=2")})
	h.Broadcast(data("new 2"))
	back := dial(t, nil, srv.URL, lastEventID(last))
	waitStreams(t, h, 1)
	h.Broadcast(data("live"))
	var got []string
	for range 5 {
		ev := back.next()
		got = append(got, ev.Type+":"+string(ev.Data))
	}
	want := []string{ResetEvent + ":epoch", ":new 1", ":p=2", ":new 2", ":live"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after the restart the client got %q, want %q", got, want)
	}
	if st := h.Stats(); st.ResetsBy.Epoch != 1 || st.EpochReplays != 1 || st.Snapshots != 0 {
		t.Fatalf("stats %+v, want one epoch reset, replayed", st)
	}
}

// When history no longer holds the whole new epoch for the stream, the
// client gets what it did before: the reset, the snapshot, live events.
func TestResetAfterRestartWithHistoryRolledOver(t *testing.T) {
	before, oldSrv := newTestHub(t, Config{Heartbeat: -1})
	c := dial(t, nil, oldSrv.URL, nil)
	waitStreams(t, before, 1)
	before.Broadcast(data("old"))
	last := c.next().ID
	c.close()

	h, srv := newTestHub(t, Config{Heartbeat: -1, History: 2})
	h.Broadcast(Event{Key: "p", Data: []byte("p=1")})
	for i := range 3 {
		h.Broadcast(data("rolled " + string(rune('a'+i))))
	}
	back := dial(t, nil, srv.URL, lastEventID(last))
	waitStreams(t, h, 1)
	h.Broadcast(data("live"))
	var got []string
	for range 3 {
		ev := back.next()
		got = append(got, ev.Type+":"+string(ev.Data))
	}
	want := []string{ResetEvent + ":epoch", ":p=1", ":live"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("got %q, want %q", got, want)
	}
	if st := h.Stats(); st.EpochReplays != 0 || st.Snapshots != 1 {
		t.Fatalf("stats %+v, want a snapshot", st)
	}
}

// serverProc is a hub in a process of its own (see serverProcess).
type serverProc struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string // what it prints, line by line
	addr  string
}

// startServerProcess starts the test binary as a server process on addr
// ("127.0.0.1:0" for any port) that broadcasts the events in publish
// before it serves.
func startServerProcess(t *testing.T, addr string, publish ...string) *serverProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$",
		fmt.Sprintf("-sse.hijack=%v", *hijackAll), fmt.Sprintf("-sse.poll=%v", *pollAll))
	cmd.Env = append(os.Environ(), "SSE_TEST_SERVER_ADDR="+addr, "SSE_TEST_SERVER_PUBLISH="+strings.Join(publish, ","))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serverProc{cmd: cmd, in: in, lines: make(chan string, 64)}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	line := p.await(t, "listening ")
	p.addr = strings.TrimPrefix(line, "listening ")
	return p
}

// await returns the next line the process prints that starts with prefix.
func (p *serverProc) await(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(testTimeout)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("the server process ended before it printed %q", prefix)
			}
			if strings.HasPrefix(line, prefix) {
				return line
			}
		case <-timeout:
			t.Fatalf("the server process did not print %q", prefix)
		}
	}
}

// stop ends the process as a deploy does: SIGTERM, then waits for it.
func (p *serverProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("the server process: %v", err)
	}
}

// A deploy, end to end: a server process is replaced by a new one on the
// same port, which publishes 4 events before the client is back. The
// client (this package's Client, as a program would run it) is reset once
// and then gets all 4, then live events.
func TestDeployLosesOnlyWhatTheOldProcessNeverSent(t *testing.T) {
	old := startServerProcess(t, "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type item struct {
		ev  Event
		err error
	}
	got := make(chan item, 64)
	c := &Client{MaxBackoff: 200 * time.Millisecond}
	go func() {
		for ev, err := range c.Connect(ctx, "http://"+old.addr+"/") {
			got <- item{ev, err}
		}
	}()
	next := func() item {
		t.Helper()
		select {
		case it := <-got:
			return it
		case <-time.After(testTimeout):
			t.Fatal("the client got nothing")
			return item{}
		}
	}
	old.await(t, "connected")
	fmt.Fprintln(old.in, "pub before the deploy")
	if it := next(); it.err != nil || string(it.ev.Data) != "before the deploy" {
		t.Fatalf("got %+v", it)
	}
	old.stop(t)

	fresh := startServerProcess(t, old.addr, "new 1", "new 2", "new 3", "new 4")
	fresh.await(t, "connected")
	fmt.Fprintln(fresh.in, "pub live")
	var reset *ResetError
	if it := next(); !errors.As(it.err, &reset) || reset.Reason != "epoch" {
		t.Fatalf("after the deploy the client got %+v, want a reset (epoch)", it)
	}
	for _, want := range []string{"new 1", "new 2", "new 3", "new 4", "live"} {
		if it := next(); it.err != nil || string(it.ev.Data) != want {
			t.Fatalf("got %q (%v), want %q", it.ev.Data, it.err, want)
		}
	}
}
