package sse

import (
	"os"
	"strings"
	"testing"
)

// The README's whole program is examples/quickstart, which the build
// compiles and vets, so the program shown cannot rot.
func TestReadmeProgramIsExamplesQuickstart(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	program, err := os.ReadFile("examples/quickstart/main.go")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "## A whole program\n\n```go\n")
	if !ok {
		t.Fatal(`README.md has no "## A whole program" section opening with a Go block`)
	}
	shown, _, ok := strings.Cut(rest, "```\n")
	if !ok {
		t.Fatal("the README's program block does not end")
	}
	if shown != string(program) {
		t.Fatalf("README.md's program differs from examples/quickstart/main.go: copy the file into the README\nREADME:\n%s", shown)
	}
}
