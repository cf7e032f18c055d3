// Package procstat reads what Linux's /proc says of a process, for the
// bench commands that measure other processes (a hub, redis-server).
package procstat

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// CPU returns the CPU time (user and system) process pid has used, from
// /proc/PID/stat; zero when it cannot be read (the process is gone, or
// this is not Linux).
func CPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:] // the command name may hold spaces and parentheses
	}
	f := strings.Fields(s) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ is 100 on Linux
}
