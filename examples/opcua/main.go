// Command opcua serves a live dashboard of OPC UA point values over
// Server-Sent Events.
//
// With no flags it starts an embedded OPC UA simulator on loopback, reads it
// with a subscription, and serves the dashboard on localhost:8080:
//
//	go -C examples/opcua run .
//
// With -endpoint it reads a real server instead:
//
//	go -C examples/opcua run . -endpoint opc.tcp://plc:4840 -nodes 'ns=2;s=Temp,ns=2;s=Speed'
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	err := run(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "opcua:", err)
		os.Exit(1)
	}
}

// run parses args, starts everything and serves until SIGINT or SIGTERM.
func run(args []string) error {
	fl := flag.NewFlagSet("opcua", flag.ContinueOnError)
	addr := fl.String("addr", "localhost:8080", "HTTP listen address of the dashboard")
	endpoint := fl.String("endpoint", "", "OPC UA server to read, opc.tcp://host:port (default: start the embedded simulator)")
	nodes := fl.String("nodes", "", "comma-separated node IDs to monitor, e.g. 'ns=2;s=Temp,ns=2;i=1001' (default: browse the server's Objects folder for variables)")
	interval := fl.Duration("interval", 100*time.Millisecond, "OPC UA publishing interval")
	simRate := fl.Duration("sim-rate", 250*time.Millisecond, "how often the simulator's points change")
	verbose := fl.Bool("v", false, "log debug messages, the gopcua server's included")
	if err := fl.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	} else {
		log.SetOutput(io.Discard) // the gopcua server logs its node-set import with package log
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ids, err := parseNodeIDs(*nodes)
	if err != nil {
		return err
	}
	url := *endpoint
	var sim *Simulator
	if url == "" {
		if sim, err = StartSimulator(SimulatorConfig{Rate: *simRate}); err != nil {
			return err
		}
		url = sim.Endpoint()
		logger.Info("simulator started", "endpoint", url, "points", len(simPointNames), "rate", *simRate)
	}

	dash, err := NewDashboard(DashboardConfig{Logger: logger})
	if err != nil {
		return err
	}
	reader, err := NewReader(ReaderConfig{Endpoint: url, Nodes: ids, Interval: *interval, Logger: logger}, dash)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: dash, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("dashboard ready", "url", "http://"+displayAddr(ln.Addr()), "opcua", url)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		reader.Run(ctx)
	}()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case <-ctx.Done():
	case err = <-served:
	}
	stop()
	logger.Info("shutting down")
	<-readerDone // the client closes before the simulator
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = dash.Shutdown(sctx)
	_ = srv.Shutdown(sctx)
	if sim != nil {
		_ = sim.Close()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// displayAddr turns a listen address into one a browser can open:
// "localhost:8080" for ":8080" and "[::]:8080".
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
