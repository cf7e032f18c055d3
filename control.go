package sse

import (
	"strconv"
	"time"
)

// The frames a hub writes on its own, never from history: the retry field
// a stream starts with, the ResetEvent and PositionEvent that start a
// stream, and heartbeats. Each travels in an envelope with a zero Message,
// so it is never conflated, replayed or counted as an event.

// control wraps hub-made bytes as an envelope that never enters history.
func control(frame []byte) *envelope {
	return &envelope{frame: frame}
}

// retryFrame appends a retry field line, with no blank line after it: it
// joins the stream's first block, since several popular clients
// (@microsoft/fetch-event-source, the Go clients) hand the application an
// empty event for a block that holds nothing but a retry field. Every
// client applies the field as soon as it reads the line.
func retryFrame(dst []byte, d time.Duration) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, max(d.Milliseconds(), 1), 10)
	return append(dst, '\n')
}

// positionFrame builds the PositionEvent frame for pos.
func positionFrame(pos string) []byte {
	b := appendIDLine(nil, pos)
	return append(b, "event: "+PositionEvent+"\ndata:\n\n"...)
}

// resetFrame builds the ResetEvent frame: its id, if not empty, moves the
// client's resume point there; its data is the reason.
func resetFrame(id, why string) []byte {
	var b []byte
	if id != "" {
		b = appendIDLine(b, id)
	}
	b = append(b, "event: "+ResetEvent+"\ndata: "...)
	b = append(b, why...)
	return append(b, '\n', '\n')
}

// heartbeatMessage builds the heartbeat frame (see Hub.beat).
func heartbeatMessage() *envelope {
	m := control([]byte(":\n"))
	m.heartbeat = true
	return m
}
