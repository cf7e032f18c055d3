package main

import "time"

// The states of the OPC UA connection, as Status.State.
const (
	StateConnecting   = "connecting"   // the first attempt, never connected yet
	StateConnected    = "connected"    // subscribed; values are live
	StateReconnecting = "reconnecting" // the connection was lost; retrying
	StateDown         = "down"         // retrying for longer than ReaderConfig.DownAfter
)

// Status is the state of the reader's OPC UA connection, as the page
// receives it in an "opcua_status" event.
type Status struct {
	State    string `json:"state"`             // one of the State constants
	Endpoint string `json:"endpoint"`          // the server's URL
	Error    string `json:"error,omitempty"`   // why the last attempt or connection failed
	Since    Stamp  `json:"since"`             // when the connection was made or lost
	Attempt  int    `json:"attempt,omitempty"` // failed attempts since the last connection
	Points   int    `json:"points,omitempty"`  // points monitored, when connected
}

// Sink receives what a Reader reads. Points gets the IDs of the points
// monitored, in browse order, at each connection before their values;
// Update gets the values of one OPC UA notification; SetStatus gets every
// change of the connection's state.
// The reader calls them from one goroutine, never concurrently, and its
// subscription waits while they run, so they must return quickly.
type Sink interface {
	Points(ids []string)
	Update(batch []Sample)
	SetStatus(st Status)
}

// statusSince returns a Status with Since set to now.
func statusSince(state, endpoint string, now time.Time) Status {
	return Status{State: state, Endpoint: endpoint, Since: NewStamp(now)}
}
