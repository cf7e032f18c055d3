package sse

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeBlock returns the fenced block of README.md that opens right after
// intro, without its fences.
func readmeBlock(t *testing.T, intro string) string {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), intro)
	if !ok {
		t.Fatalf("README.md has no %q", intro)
	}
	block, _, ok := strings.Cut(rest, "```\n")
	if !ok {
		t.Fatalf("the README's block after %q does not end", intro)
	}
	return block
}

// The README's whole program is examples/quickstart, which the build
// compiles and vets, so the program shown cannot rot.
func TestReadmeProgramIsExamplesQuickstart(t *testing.T) {
	shown := readmeBlock(t, "## A whole program\n\n```go\n")
	program, err := os.ReadFile("examples/quickstart/main.go")
	if err != nil {
		t.Fatal(err)
	}
	if shown != string(program) {
		t.Fatalf("README.md's program differs from examples/quickstart/main.go: copy the file into the README\nREADME:\n%s", shown)
	}
}

// What varies between two runs of the quickstart: the ids (a random epoch,
// and a sequence that depends on when curl connects) and the clock's time.
var (
	streamID   = regexp.MustCompile(`(?m)^id: [a-z2-7]+-[0-9]+$`)
	streamTime = regexp.MustCompile(`(?m)^data: [0-2][0-9]:[0-5][0-9]:[0-5][0-9]$`)
)

func normaliseStream(s string) string {
	s = streamID.ReplaceAllLiteralString(s, "id: <epoch>-<sequence>")
	return streamTime.ReplaceAllLiteralString(s, "data: <hh:mm:ss>")
}

// The README's sample of what curl shows is what the quickstart's hub
// writes: the same Config, a clock event as the program broadcasts it, and
// the stream's first bytes up to the end of that event, equal to the
// README's block but for the ids and the time.
func TestReadmeStreamIsWhatTheQuickstartWrites(t *testing.T) {
	shown := readmeBlock(t, "`curl -N localhost:8080/sse` shows the stream as written:\n\n```\n")

	hub, err := NewHub(Config{}) // examples/quickstart's
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(hub)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	defer func() {
		if err := hub.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/sse", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	waitStreams(t, hub, 1)
	if _, err := hub.Broadcast(Event{Type: "clock", Data: []byte(time.Now().Format(time.TimeOnly))}); err != nil {
		t.Fatal(err)
	}

	// Read up to the blank line that ends the clock event.
	br := bufio.NewReader(resp.Body)
	var wire strings.Builder
	for !strings.Contains(wire.String(), "\nevent: clock\n") || !strings.HasSuffix(wire.String(), "\n\n") {
		line, err := br.ReadString('\n')
		wire.WriteString(line)
		if err != nil {
			t.Fatalf("reading the stream: %v; got so far:\n%s", err, wire.String())
		}
	}
	if got, want := normaliseStream(wire.String()), normaliseStream(shown); got != want {
		t.Fatalf("README.md's sample stream is not what the hub writes (ids and time aside)\nhub writes:\n%s\nREADME shows:\n%s", wire.String(), shown)
	}
}
