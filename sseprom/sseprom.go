// Package sseprom exports a Hub's Stats as Prometheus metrics. It is a
// module of its own, so that the sse module stays free of dependencies.
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(sseprom.NewCollector(hub, nil))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// The collector reads hub.Stats() at every scrape: it holds no state and
// costs nothing between scrapes. Counters are exported as counters (their
// names end in _total), the hub's current state (streams, clients,
// topics) as gauges.
package sseprom

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/ssehub/sse"
)

// Collector is a prometheus.Collector for one Hub. Safe for concurrent
// scrapes, as Hub.Stats is. Create one with NewCollector.
type Collector struct {
	hub    *sse.Hub
	resets *prometheus.Desc
	simple []metric
}

// metric is one unlabelled metric and how to read it from Stats.
type metric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(sse.Stats) float64
}

// NewCollector returns a collector of hub's Stats. labels, which may be
// nil, are added to every metric: to tell several hubs in one process
// apart, give each a label of its own (hub="orders", say).
func NewCollector(hub *sse.Hub, labels prometheus.Labels) *Collector {
	gauge := func(name, help string, v func(sse.Stats) int) metric {
		return metric{prometheus.NewDesc("sse_"+name, help, nil, labels), prometheus.GaugeValue,
			func(s sse.Stats) float64 { return float64(v(s)) }}
	}
	counter := func(name, help string, v func(sse.Stats) uint64) metric {
		return metric{prometheus.NewDesc("sse_"+name+"_total", help, nil, labels), prometheus.CounterValue,
			func(s sse.Stats) float64 { return float64(v(s)) }}
	}
	return &Collector{
		hub: hub,
		resets: prometheus.NewDesc("sse_resets_total",
			"Reconnects sent a reset event instead of a replay, by reason.", []string{"reason"}, labels),
		simple: []metric{
			gauge("streams", "Event streams open now.", func(s sse.Stats) int { return s.Streams }),
			gauge("clients", "Distinct client IDs with at least one open stream.", func(s sse.Stats) int { return s.Clients }),
			gauge("topics", "Topics with at least one subscribed stream.", func(s sse.Stats) int { return s.Topics }),
			counter("events_published", "Events accepted by Send, Broadcast and Publish.",
				func(s sse.Stats) uint64 { return s.Published }),
			counter("frames_queued", "Frames queued to streams, one per recipient.",
				func(s sse.Stats) uint64 { return s.Queued }),
			counter("frames_written", "Frames written to streams, replays included.",
				func(s sse.Stats) uint64 { return s.Written }),
			counter("slow_disconnects", "Streams ended because their queue overflowed.",
				func(s sse.Stats) uint64 { return s.SlowDisconnects }),
			counter("replays", "Reconnects resumed exactly from their Last-Event-ID.",
				func(s sse.Stats) uint64 { return s.Replays }),
			counter("epoch_replays", "Reconnects from an earlier epoch replayed the whole current epoch after their reset.",
				func(s sse.Stats) uint64 { return s.EpochReplays }),
			counter("snapshots", "Streams that started with a snapshot of keyed events.",
				func(s sse.Stats) uint64 { return s.Snapshots }),
			counter("refused", "Requests refused by a stream limit or a closing hub.",
				func(s sse.Stats) uint64 { return s.Refused }),
			counter("rate_limited", "Of the refused requests, those over a connect rate.",
				func(s sse.Stats) uint64 { return s.RateLimited }),
			counter("expired", "Streams ended when their credential expired.",
				func(s sse.Stats) uint64 { return s.Expired }),
			counter("lifetime_ends", "Streams ended at their maximum lifetime.",
				func(s sse.Stats) uint64 { return s.LifetimeEnds }),
			counter("heartbeats", "Heartbeat comments queued.",
				func(s sse.Stats) uint64 { return s.Heartbeats }),
			counter("broker_gaps", "Deliveries the Broker reported lost, each ending every stream.",
				func(s sse.Stats) uint64 { return s.BrokerGaps }),
			counter("broker_epochs", "New epochs the Broker reported with nothing lost to the hub.",
				func(s sse.Stats) uint64 { return s.BrokerEpochs }),
			counter("replay_failures", "Reconnects whose replay the Broker failed: the stream ended, and its client retries.",
				func(s sse.Stats) uint64 { return s.ReplayFailures }),
			counter("hook_panics", "OnConnect or OnDisconnect calls that panicked.",
				func(s sse.Stats) uint64 { return s.HookPanics }),
			counter("no_write_deadline_streams", "Streams whose ResponseWriter takes no write deadline (middleware without Unwrap).",
				func(s sse.Stats) uint64 { return s.NoWriteDeadline }),
			counter("server_write_timeouts", "Streams cut by http.Server.WriteTimeout, their ResponseWriter taking no deadline.",
				func(s sse.Stats) uint64 { return s.ServerWriteTimeouts }),
			counter("unflushable_requests", "Requests answered 500 because their ResponseWriter cannot flush.",
				func(s sse.Stats) uint64 { return s.Unflushable }),
			counter("compressed_streams", "Streams that middleware gave a Content-Encoding.",
				func(s sse.Stats) uint64 { return s.Compressed }),
		},
	}
}

// Describe sends the descriptions of every metric the collector exports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.simple {
		ch <- m.desc
	}
	ch <- c.resets
}

// Collect reads the hub's Stats once and sends every metric.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.hub.Stats()
	for _, m := range c.simple {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(st))
	}
	for reason, n := range map[string]uint64{
		"expired": st.ResetsBy.Expired,
		"unknown": st.ResetsBy.Unknown,
		"epoch":   st.ResetsBy.Epoch,
		"other":   st.ResetsBy.Other,
	} {
		ch <- prometheus.MustNewConstMetric(c.resets, prometheus.CounterValue, float64(n), reason)
	}
}
