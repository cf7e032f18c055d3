//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package sse

import "syscall"

// openFileLimit returns the process's limit on open files (the soft
// RLIMIT_NOFILE, which Go raises to the hard limit when it starts), or 0
// when there is none or it cannot be read.
func openFileLimit() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	if r.Cur <= 0 || r.Cur > 1<<30 { // RLIM_INFINITY, on every platform
		return 0
	}
	return int(r.Cur)
}
