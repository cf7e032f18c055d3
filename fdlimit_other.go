//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package sse

// openFileLimit returns 0: this platform has no limit the hub can read.
func openFileLimit() int { return 0 }
