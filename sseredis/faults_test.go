package sseredis

import "syscall"

// The fault tools of the tests: a frozen Redis (pause).

// pause freezes redis-server (SIGSTOP): its connections stay open and
// nothing answers, as with a Redis stuck on a slow disk or a long fork. It
// is resumed at cleanup, before stop.
func (s *redisServer) pause() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatal(err)
	}
	cmd := s.cmd
	s.t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGCONT) })
}
