package main

import (
	"os"
	"strings"
	"testing"
)

// The root README's GoFrame program is cmd/goframe, which the build
// compiles and TestGoFrameProgramShutsTheHubDownFirst runs, so the program
// shown cannot rot.
func TestReadmeGoFrameProgramIsCmdGoframe(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	program, err := os.ReadFile("cmd/goframe/main.go")
	if err != nil {
		t.Fatal(err)
	}
	const intro = "[`examples/frameworks/cmd/goframe`](examples/frameworks/cmd/goframe)"
	_, rest, ok := strings.Cut(string(readme), intro)
	if !ok {
		t.Fatalf("README.md does not link %s", intro)
	}
	_, rest, ok = strings.Cut(rest, "```go\n")
	if !ok {
		t.Fatal("README.md has no Go block after its link to cmd/goframe")
	}
	shown, _, ok := strings.Cut(rest, "```\n")
	if !ok {
		t.Fatal("the README's GoFrame program block does not end")
	}
	if shown != string(program) {
		t.Fatalf("README.md's GoFrame program differs from examples/frameworks/cmd/goframe/main.go: copy the file into the README\nREADME:\n%s", shown)
	}
}
