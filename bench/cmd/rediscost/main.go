// Command rediscost measures what Redis costs per published event with
// sseredis and with centrifuge's Redis broker, side by side on one
// redis-server, in one run.
//
//	rediscost run [-nodes 2,4,8] [-modes one,many,rate] [-reps 3] [-streams 20] [-json FILE]
//	rediscost cell -lib sse|centrifuge -nodes N -mode one|many|rate -redis ADDR -redis-pid PID
//
// "run" is the driver: for every repetition, node count, mode and library
// it starts a fresh redis-server (pinned to CPU 1 when the machine has two
// CPUs and taskset) and a fresh "cell" process (pinned to CPU 0) holding
// the N nodes, their SSE streams and the publishers, and prints one
// Markdown report of medians with the ratios sseredis ÷ centrifuge. See
// bench/README.md.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runCmd(os.Args[2:])
	case "cell":
		err = cellCmd(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "rediscost %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: rediscost run [flags] | rediscost cell [flags] (-h for the flags)")
	os.Exit(2)
}
