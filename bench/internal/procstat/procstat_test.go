package procstat

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// CPU grows with the CPU this process burns, and is zero for a process
// that does not exist.
func TestCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc, on Linux only")
	}
	before := CPU(os.Getpid())
	for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); {
	}
	if after := CPU(os.Getpid()); after <= before {
		t.Fatalf("CPU went from %v to %v over 100 ms of spinning", before, after)
	}
	if got := CPU(-1); got != 0 {
		t.Fatalf("CPU(-1) = %v, want 0", got)
	}
}
