package main

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/sse"
)

// TestReaderReconnects cuts the OPC UA connection at a loopback proxy and
// keeps it refused for a while. The status event must go reconnecting, then
// down, then connected again; values must resume; and no browser stream may
// see a value twice or out of order, although the new subscription
// delivers every current value again. Then the server drops the
// subscription while the connection stays up, the failure gopcua's
// auto-reconnect misses: the reader must notice the silence and rebuild.
func TestReaderReconnects(t *testing.T) {
	sim := startSimulator(t, 100*time.Millisecond)
	proxy := startProxy(t, strings.TrimPrefix(sim.Endpoint(), "opc.tcp://"))
	s := startStack(t, proxy.endpoint(), ReaderConfig{
		Interval:   50 * time.Millisecond,
		Probe:      500 * time.Millisecond,
		DownAfter:  time.Second,
		Silent:     time.Second,
		MinBackoff: 100 * time.Millisecond,
		MaxBackoff: 300 * time.Millisecond,
	}, DashboardConfig{})
	const temp = "ns=1;s=Boiler.Temperature"

	st := s.openStream(t, "/events?client=reconnect-01", "")
	check := newOrderCheck()
	var latest time.Time // of the temperature
	track := func(ev sse.Event) {
		if ev.Type == EventPoints {
			batch := samples(t, ev)
			check.see(t, "stream", batch)
			for _, x := range batch {
				if x.PointID == temp {
					latest = x.UpdateAt.Time
				}
			}
		}
	}
	untilStatus := func(wait time.Duration, state string) Status {
		t.Helper()
		ev := st.waitFor(wait, "status "+state, func(ev sse.Event) bool {
			track(ev)
			return ev.Type == EventStatus && status(t, ev).State == state
		})
		return status(t, ev)
	}
	untilStatus(startWait, StateConnected)
	st.waitFor(5*time.Second, "values", func(ev sse.Event) bool { track(ev); return !latest.IsZero() })

	proxy.cut(true)
	cutAt := time.Now()
	if got := untilStatus(10*time.Second, StateReconnecting); got.Error == "" || got.Attempt < 1 {
		t.Errorf("reconnecting status without the error: %+v", got)
	}
	if got := untilStatus(10*time.Second, StateDown); got.Error == "" {
		t.Errorf("down status without the error: %+v", got)
	}
	proxy.heal()
	untilStatus(15*time.Second, StateConnected)
	t.Logf("connection back %v after the cut", time.Since(cutAt).Round(time.Millisecond))
	st.waitFor(5*time.Second, "new values after the reconnect", func(ev sse.Event) bool {
		track(ev)
		return latest.After(cutAt)
	})

	// The server forgets every subscription; the connection stays up and
	// the liveness read keeps working.
	time.Sleep(500 * time.Millisecond) // the clock must be seen changing first
	subs := sim.srv.SubscriptionService
	subs.Mu.Lock()
	ids := slices.Collect(maps.Keys(subs.Subs))
	subs.Mu.Unlock()
	for _, id := range ids {
		subs.DeleteSubscription(id)
	}
	dropAt := time.Now()
	if got := untilStatus(10*time.Second, StateReconnecting); !strings.Contains(got.Error, "silent") {
		t.Errorf("status after the subscription vanished: %+v, want a silence error", got)
	}
	untilStatus(10*time.Second, StateConnected)
	st.waitFor(5*time.Second, "new values after the rebuild", func(ev sse.Event) bool {
		track(ev)
		return latest.After(dropAt)
	})
}
