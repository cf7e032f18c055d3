package main

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
)

// SimulatorNamespace is the namespace URI of the simulator's points.
const SimulatorNamespace = "urn:sse-demo:plant"

// SimulatorConfig configures a Simulator.
type SimulatorConfig struct {
	// Port is the loopback TCP port to listen on. Zero means a free port.
	Port int
	// Rate is how often the points change. Zero means 250 ms.
	Rate time.Duration
	// Jitter moves each change up to this much earlier or later, at
	// random, so changes fall at every phase of a subscriber's publishing
	// interval instead of locking to it. Zero means none. At most Rate.
	Jitter time.Duration
}

// Simulator is an in-process OPC UA server on 127.0.0.1 whose variables
// behave like a small plant: a boiler (temperature, pressure), a production
// line (motor speed, running flag, parts counter, status text) and the
// ambient temperature. Values change every Rate; each change stamps the
// value with its source time and notifies subscribers.
//
// Close it after every client connected to it has closed: the gopcua
// server does not drop open connections and waits 10 s for them.
type Simulator struct {
	srv      *server.Server
	ns       *server.NodeNameSpace
	endpoint string
	rate     time.Duration
	jitter   time.Duration
	points   []*simPoint
	clock    *ua.NodeID // the server's CurrentTime, notified at every change

	cancel context.CancelFunc // the server's context, cancelled after it is closed
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// simPoint is one simulated variable. Its value is replaced, never changed
// in place, so the server may read it at any time.
type simPoint struct {
	name string
	id   *ua.NodeID
	dv   atomic.Pointer[ua.DataValue]
}

// simPointNames are the simulator's variables, in the order the browse
// returns them.
var simPointNames = []string{
	"Boiler.Temperature",  // °C
	"Boiler.Pressure",     // bar
	"Line1.MotorSpeed",    // rpm
	"Line1.Running",       // bool
	"Line1.PartsCount",    // counter
	"Line1.Status",        // text
	"Ambient.Temperature", // °C
}

// StartSimulator starts a Simulator. The gopcua server loads the standard
// node set first, which takes about 0.3 s (2–3 s under the race detector).
func StartSimulator(cfg SimulatorConfig) (*Simulator, error) {
	if cfg.Rate <= 0 {
		cfg.Rate = 250 * time.Millisecond
	}
	port := cfg.Port
	if port == 0 {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		port = p
	}
	srv := server.New(
		// The first endpoint is the listen address; the server cannot
		// listen on port 0 and report the port it got.
		server.EndPoint("127.0.0.1", port),
		server.EnableSecurity("None", ua.MessageSecurityModeNone),
		server.EnableAuthMode(ua.UserTokenTypeAnonymous),
		server.ServerName("sse-demo plant simulator"),
	)
	ns := server.NewNodeNameSpace(srv, SimulatorNamespace)
	root, err := srv.Namespace(0)
	if err != nil {
		return nil, err
	}
	root.Objects().AddRef(ns.Objects(), id.HasComponent, true)

	s := &Simulator{
		srv:      srv,
		ns:       ns,
		endpoint: "opc.tcp://127.0.0.1:" + strconv.Itoa(port),
		rate:     cfg.Rate,
		jitter:   min(max(cfg.Jitter, 0), cfg.Rate),
		clock:    ua.NewNumericNodeID(0, id.Server_ServerStatus_CurrentTime),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	model := newPlantModel(time.Now())
	now := time.Now()
	for _, name := range simPointNames {
		p := &simPoint{name: name, id: ua.NewStringNodeID(ns.ID(), name)}
		p.set(model.value(name), now)
		n := server.NewVariableNode(p.id, name, server.ValueFunc(p.dv.Load))
		ns.AddNode(n)
		ns.Objects().AddRef(n, id.HasComponent, true)
		s.points = append(s.points, p)
	}

	// The server stops serving requests, without closing connections, when
	// this context ends: it is cancelled only after Close.
	ctx, cancel := context.WithCancel(context.Background())
	if err := srv.Start(ctx); err != nil {
		cancel()
		return nil, fmt.Errorf("simulator: %w", err)
	}
	s.cancel = cancel
	go s.run(model)
	return s, nil
}

// Endpoint returns the simulator's URL, "opc.tcp://127.0.0.1:<port>".
func (s *Simulator) Endpoint() string { return s.endpoint }

// Close stops the changes and the server. It is safe to call more than once.
func (s *Simulator) Close() error {
	var err error
	s.once.Do(func() {
		close(s.stop)
		<-s.done
		err = s.srv.Close()
		s.cancel()
		// Subscriptions whose client vanished without deleting them would
		// otherwise tick on until their lifetime runs out.
		if subs := s.srv.SubscriptionService; subs != nil {
			subs.Mu.Lock()
			ids := slices.Collect(maps.Keys(subs.Subs))
			subs.Mu.Unlock()
			for _, id := range ids {
				subs.DeleteSubscription(id)
			}
		}
	})
	return err
}

// run changes the points every rate (± jitter) until Close.
func (s *Simulator) run(m *plantModel) {
	defer close(s.done)
	rng := rand.New(rand.NewPCG(5, 6))
	next := time.Now()
	t := time.NewTimer(s.rate)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			// The schedule advances by exactly rate; jitter only moves
			// each change around its slot, so the mean rate stays rate.
			next = next.Add(s.rate)
			off := time.Duration(0)
			if s.jitter > 0 {
				off = time.Duration(rng.Int64N(int64(2*s.jitter))) - s.jitter
			}
			t.Reset(max(time.Until(next.Add(s.rate+off)), 0))
			m.step(now)
			for _, p := range s.points {
				if v := m.value(p.name); !sameValue(v, p.dv.Load()) {
					p.set(v, now)
					s.ns.ChangeNotification(p.id)
				}
			}
			// The gopcua server samples nothing by itself; announcing its
			// clock, as real servers do, lets a reader see that its
			// subscription is alive.
			s.srv.ChangeNotification(s.clock)
		}
	}
}

// set replaces the point's value, stamped with t.
func (p *simPoint) set(v any, t time.Time) {
	p.dv.Store(&ua.DataValue{
		EncodingMask:    ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
		Value:           ua.MustVariant(v),
		SourceTimestamp: t,
		ServerTimestamp: t,
	})
}

// sameValue reports whether dv already holds v.
func sameValue(v any, dv *ua.DataValue) bool {
	return dv != nil && dv.Value != nil && dv.Value.Value() == v
}

// plantModel computes the simulated values. Only the simulator's goroutine
// uses it after creation.
type plantModel struct {
	start   time.Time
	rng     *rand.Rand
	temp    float64 // boiler temperature, °C
	running bool
	speed   float64 // rpm
	parts   int64
	since   time.Time // when the line last started or stopped
}

func newPlantModel(now time.Time) *plantModel {
	return &plantModel{
		start: now, rng: rand.New(rand.NewPCG(1, 2)),
		temp: 72, running: true, speed: 1450, since: now,
	}
}

// The line runs for lineOn, then stops for lineOff (a changeover).
const (
	lineOn  = 40 * time.Second
	lineOff = 8 * time.Second
)

// step advances the model to now.
func (m *plantModel) step(now time.Time) {
	t := now.Sub(m.start).Seconds()
	target := 72 + 5*math.Sin(2*math.Pi*t/90)
	m.temp += 0.2*(target-m.temp) + m.rng.NormFloat64()*0.15
	switch {
	case m.running && now.Sub(m.since) >= lineOn:
		m.running, m.since = false, now
	case !m.running && now.Sub(m.since) >= lineOff:
		m.running, m.since = true, now
	}
	if m.running {
		m.speed += 0.3*(1450-m.speed) + m.rng.NormFloat64()*4
		m.parts++
	} else {
		m.speed *= 0.6
		if m.speed < 1 {
			m.speed = 0
		}
	}
}

// value returns the current value of the named point.
func (m *plantModel) value(name string) any {
	t := time.Since(m.start).Seconds()
	switch name {
	case "Boiler.Temperature":
		return round(m.temp, 2)
	case "Boiler.Pressure":
		return round(1.8+0.045*(m.temp-60), 3)
	case "Line1.MotorSpeed":
		return round(m.speed, 1)
	case "Line1.Running":
		return m.running
	case "Line1.PartsCount":
		return m.parts
	case "Line1.Status":
		if m.running {
			return "Running"
		}
		return "Changeover"
	case "Ambient.Temperature":
		return round(21.5+1.5*math.Sin(2*math.Pi*t/600), 1)
	}
	return nil
}

func round(f float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(f*p) / p
}

// freePort returns a TCP port that is free on 127.0.0.1 right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
