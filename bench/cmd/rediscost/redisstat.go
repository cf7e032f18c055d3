package main

import (
	"bufio"
	"context"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisStats are Redis's counters: commands executed (INFO commandstats,
// the commands scripts run included, INFO excluded), request batches read
// from clients and replies or pushes written to them (INFO stats
// total_reads_processed, total_writes_processed: one read is one round
// trip's requests, however many commands a client pipelined in it), and
// network bytes.
type redisStats struct {
	commands, reads, writes, inBytes, outBytes int64
	scriptUsec                                 int64 // time Redis spent in EVALSHA and EVAL (commandstats usec)
}

func (a redisStats) sub(b redisStats) redisStats {
	return redisStats{a.commands - b.commands, a.reads - b.reads, a.writes - b.writes, a.inBytes - b.inBytes, a.outBytes - b.outBytes, a.scriptUsec - b.scriptUsec}
}

func readStats(ctx context.Context, c *redis.Client) (redisStats, error) {
	var s redisStats
	text, err := c.Info(ctx, "stats", "commandstats").Result()
	if err != nil {
		return s, err
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		name, rest, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		if strings.HasPrefix(name, "cmdstat_") {
			if name == "cmdstat_info" {
				continue
			}
			for _, kv := range strings.Split(rest, ",") {
				if v, ok := strings.CutPrefix(kv, "calls="); ok {
					n, _ := strconv.ParseInt(v, 10, 64)
					s.commands += n
				}
				if v, ok := strings.CutPrefix(kv, "usec="); ok && (name == "cmdstat_evalsha" || name == "cmdstat_eval") {
					n, _ := strconv.ParseInt(v, 10, 64)
					s.scriptUsec += n
				}
			}
			continue
		}
		n, _ := strconv.ParseInt(rest, 10, 64)
		switch name {
		case "total_reads_processed":
			s.reads = n
		case "total_writes_processed":
			s.writes = n
		case "total_net_input_bytes":
			s.inBytes = n
		case "total_net_output_bytes":
			s.outBytes = n
		}
	}
	return s, nil
}
