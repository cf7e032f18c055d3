package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// cmd/goframe, the README's GoFrame program, run as a process: 401 without
// a token, a stream with one, and on SIGTERM the hub shut down before
// GoFrame, so the stream ends cleanly at once and the program exits 0. Had
// GoFrame been shut down first, its Shutdown would have waited for the open
// stream for its GracefulTimeout (2 s by default: GoFrame v2.9.0 bounds the
// wait by GracefulTimeout, not GracefulShutdownTimeout). A main ending
// with GoFrame's Run instead cuts the stream by exiting, which its client
// cannot tell from a clean end: this test does not catch that.
func TestGoFrameProgramShutsTheHubDownFirst(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "goframe")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/goframe").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the program listens there itself

	var output bytes.Buffer // read only once the program has exited
	cmd := exec.Command(bin, "-addr", addr)
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	base := "http://" + addr + "/sse"
	var status int
	waitFor(t, "the program to listen", func() bool {
		resp, err := http.Get(base) // no token
		if err != nil {
			return false
		}
		resp.Body.Close()
		status = resp.StatusCode
		return true
	})
	if status != http.StatusUnauthorized {
		t.Fatalf("without a token: %d, want 401", status)
	}
	c := connect(t, base+"?token=token-ann", nil)
	if ev := c.next(t); ev.Type != "clock" { // the program publishes the time every second
		t.Fatalf("got %+v, want a clock event", ev)
	}

	signaled := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = c.ended(t)
	took := time.Since(signaled)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("the stream ended with %v, want a clean end", err)
	}
	select {
	case <-exited:
	case <-time.After(patience):
		t.Fatalf("the program did not exit within %v of SIGTERM", patience)
	}
	if exitErr != nil {
		t.Fatalf("the program exited with %v:\n%s", exitErr, output.String())
	}
	if took > time.Second {
		t.Fatalf("the stream ended %v after SIGTERM: did GoFrame's Shutdown wait for it?\n%s", took, output.String())
	}
	t.Logf("the stream ended %v after SIGTERM", took.Round(time.Millisecond))
}
