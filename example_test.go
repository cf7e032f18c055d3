package sse_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/ssehub/sse"
)

// A hub mounted on a mux, an event broadcast to every stream, and a Go
// client reading it with the Decoder.
func Example() {
	connected := make(chan struct{}, 1)
	hub, err := sse.NewHub(sse.Config{
		OnConnect: func(sse.StreamInfo) { connected <- struct{}{} },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer hub.Close()

	mux := http.NewServeMux()
	mux.Handle("GET /sse", hub)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/sse")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	<-connected

	n, err := hub.Broadcast(sse.Event{Type: "monitor_points", Data: []byte(`[{"pointId":"T1","value":21.5}]`)})
	fmt.Println("queued to", n, "stream(s), error:", err)

	// A new stream begins with its position: an event with the hub's
	// position as its id and no data, which browsers never pass to
	// onmessage. Then come the events.
	d := sse.NewDecoder(resp.Body)
	for range 2 {
		ev, err := d.Decode()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("type=%s data=%s\n", ev.Type, ev.Data)
	}
	// Output:
	// queued to 1 stream(s), error: <nil>
	// type=sse-position data=
	// type=monitor_points data=[{"pointId":"T1","value":21.5}]
}

// Clients identified by their login receive the events sent to that login
// on every tab they have open.
func ExampleHub_Send() {
	connected := make(chan string, 2)
	hub, err := sse.NewHub(sse.Config{
		// Identify streams by the application's session; here a header.
		ClientID: func(r *http.Request) (string, error) {
			if u := r.Header.Get("X-User"); u != "" {
				return u, nil
			}
			return "", &sse.StatusError{Code: http.StatusUnauthorized, Err: errors.New("not logged in")}
		},
		OnConnect: func(s sse.StreamInfo) { connected <- s.ClientID },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer hub.Close()
	srv := httptest.NewServer(hub)
	defer srv.Close()

	var tabs []*sse.Decoder
	for range 2 {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Header.Set("X-User", "operator-7")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		tabs = append(tabs, sse.NewDecoder(resp.Body))
		<-connected
	}

	n, _ := hub.Send("operator-7", sse.Event{Type: "alarm", Data: []byte("pump 3 stopped")})
	fmt.Println("tabs:", n)
	for _, tab := range tabs {
		tab.Decode() // the stream's sse.PositionEvent
		ev, _ := tab.Decode()
		fmt.Printf("%s: %s\n", ev.Type, ev.Data)
	}

	resp, _ := http.Get(srv.URL) // no X-User header
	resp.Body.Close()
	fmt.Println("anonymous:", resp.Status)
	// Output:
	// tabs: 2
	// alarm: pump 3 stopped
	// alarm: pump 3 stopped
	// anonymous: 401 Unauthorized
}

// Streams pick topics from their request; Publish reaches only the streams
// subscribed to a topic.
func ExampleHub_Publish() {
	connected := make(chan struct{}, 1)
	hub, err := sse.NewHub(sse.Config{
		Topics:    func(r *http.Request) ([]string, error) { return r.URL.Query()["topic"], nil },
		OnConnect: func(sse.StreamInfo) { connected <- struct{}{} },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer hub.Close()
	srv := httptest.NewServer(hub)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "?topic=line-3")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	<-connected

	n3, _ := hub.Publish("line-3", sse.Event{Data: []byte("line 3 running")})
	n4, _ := hub.Publish("line-4", sse.Event{Data: []byte("line 4 running")})
	fmt.Println("line-3:", n3, "line-4:", n4)
	d := sse.NewDecoder(resp.Body)
	d.Decode() // the stream's sse.PositionEvent
	ev, _ := d.Decode()
	fmt.Println(string(ev.Data))
	// Output:
	// line-3: 1 line-4: 0
	// line 3 running
}

// A browser that reconnects sends Last-Event-ID; the hub replays what it
// missed. A Go client does the same with the Decoder's LastEventID.
func ExampleHub_ServeHTTP_replay() {
	hub, err := sse.NewHub(sse.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer hub.Close()
	srv := httptest.NewServer(hub)
	defer srv.Close()

	hub.Broadcast(sse.Event{Data: []byte("one")})
	hub.Broadcast(sse.Event{Data: []byte("two")})
	hub.Broadcast(sse.Event{Data: []byte("three")})

	// Pretend the client had seen "one": resume from its id. (A real
	// client keeps Decoder.LastEventID from its previous connection.)
	first := firstEventID(srv.URL, hub)
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Last-Event-ID", first)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	d := sse.NewDecoder(resp.Body)
	for range 2 {
		ev, _ := d.Decode()
		fmt.Println(string(ev.Data))
	}
	// Output:
	// two
	// three
}

// firstEventID reads the id of the first event in the hub's history from
// the epoch of the position the hub tells every new stream (in its
// sse.PositionEvent).
func firstEventID(url string, hub *sse.Hub) string {
	resp, err := http.Get(url)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			log.Fatal(err)
		}
		if id, ok := strings.CutPrefix(line, "id: "); ok {
			epoch, _, _ := strings.Cut(strings.TrimSpace(id), "-")
			return epoch + "-1"
		}
	}
}

// Events with a Key are conflated: a stream that falls behind gets the
// newest value per key instead of a backlog.
func ExampleEvent_key() {
	hub, err := sse.NewHub(sse.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer hub.Close()
	for i := range 3 {
		hub.Broadcast(sse.Event{Type: "point", Key: "T1", Data: fmt.Appendf(nil, `{"T1":%d}`, 20+i)})
	}
	// A replay is conflated too: a reconnecting client gets only the newest.
	srv := httptest.NewServer(hub)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Last-Event-ID", strings.Split(firstEventID(srv.URL, hub), "-")[0]+"-0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	ev, _ := sse.NewDecoder(resp.Body).Decode()
	fmt.Println(string(ev.Data))
	// Output:
	// {"T1":22}
}

func ExampleAppendEvent() {
	frame, err := sse.AppendEvent(nil, sse.Event{ID: "42", Type: "status", Data: []byte("line one\r\nline two"), Retry: 5 * time.Second})
	fmt.Printf("%q %v\n", frame, err)
	_, err = sse.AppendEvent(nil, sse.Event{Type: "x\nevent: injected"})
	fmt.Println(err)
	// Output:
	// "id: 42\nevent: status\nretry: 5000\ndata: line one\ndata: line two\n\n" <nil>
	// sse: invalid event: event type contains a line feed (LF) at byte 1
}

func ExampleDecoder() {
	stream := "retry: 2000\n: a comment\nid: 7\nevent: status\ndata: up\ndata: and running\n\ndata: no id field\n\n"
	d := sse.NewDecoder(strings.NewReader(stream))
	for {
		ev, err := d.Decode()
		if err != nil {
			fmt.Println(err, "| resume from", d.LastEventID(), "| retry", d.Retry())
			return
		}
		fmt.Printf("id=%s type=%q data=%q\n", ev.ID, ev.Type, ev.Data)
	}
	// Output:
	// id=7 type="status" data="up\nand running"
	// id=7 type="" data="no id field"
	// EOF | resume from 7 | retry 2s
}

// Shut the hub down before the server: open streams are active requests,
// which http.Server.Shutdown would otherwise wait for. (Or register it:
// srv.RegisterOnShutdown(hub.Close) runs it when Shutdown begins.)
func ExampleHub_Shutdown() {
	connected := make(chan struct{}, 1)
	hub, err := sse.NewHub(sse.Config{OnConnect: func(sse.StreamInfo) { connected <- struct{}{} }})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(hub)
	resp, err := http.Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	<-connected

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println("hub:", hub.Shutdown(ctx))
	fmt.Println("server:", srv.Config.Shutdown(ctx))
	_, err = hub.Broadcast(sse.Event{Data: []byte("too late")})
	fmt.Println(err)
	// Output:
	// hub: <nil>
	// server: <nil>
	// sse: hub is closed
}

// A server holding very many mostly idle streams can let the hub take
// HTTP/1.x connections over (Config.Hijack): less than half the memory per
// idle stream. net/http then no longer tracks those connections, so register
// the hub's shutdown with the server's.
func ExampleConfig_hijack() {
	connected := make(chan struct{}, 1)
	hub, err := sse.NewHub(sse.Config{
		Hijack:    true,
		OnConnect: func(sse.StreamInfo) { connected <- struct{}{} },
	})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(hub)
	srv.Config.RegisterOnShutdown(hub.Close)
	defer srv.Close()

	resp, err := http.Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	<-connected
	hub.Broadcast(sse.Event{Type: "point", Data: []byte(`{"id":"TT-101","value":71.4}`)})
	d := sse.NewDecoder(resp.Body)
	d.Decode() // the stream's sse.PositionEvent
	ev, _ := d.Decode()
	fmt.Println(ev.Type, string(ev.Data))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println("server:", srv.Config.Shutdown(ctx)) // ends the stream too
	_, err = d.Decode()
	fmt.Println("stream:", err)
	// Output:
	// point {"id":"TT-101","value":71.4}
	// server: <nil>
	// stream: EOF
}

// A Go program following a hub's stream: events arrive in order across
// reconnects, a reset says "reload your state", and breaking out of the
// loop (or ending the context) closes the connection.
func ExampleClient_Connect() {
	connected := make(chan struct{}, 1)
	hub, err := sse.NewHub(sse.Config{OnConnect: func(sse.StreamInfo) { connected <- struct{}{} }})
	if err != nil {
		log.Fatal(err)
	}
	defer hub.Close()
	srv := httptest.NewServer(hub)
	defer srv.Close()
	go func() {
		<-connected
		hub.Broadcast(sse.Event{Type: "greeting", Data: []byte("hello")})
		hub.Broadcast(sse.Event{Type: "greeting", Data: []byte("world")})
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := &sse.Client{
		Header:            http.Header{"Authorization": {"Bearer secret"}},
		RetryServerErrors: true, // ride out a 502 or 503 while the server is redeployed
	}
	received := 0
	for ev, err := range client.Connect(ctx, srv.URL) {
		var reset *sse.ResetError
		if errors.As(err, &reset) {
			fmt.Println("reset:", reset.Reason) // reload your state here, then keep reading
			continue
		}
		if err != nil {
			log.Fatal(err) // a *sse.ResponseError, ErrEventTooLarge, or ctx.Err()
		}
		fmt.Printf("%s: %s\n", ev.Type, ev.Data)
		if received++; received == 2 {
			break
		}
	}
	// Output:
	// greeting: hello
	// greeting: world
}

// Without Prometheus (see the sseprom module for it), the standard
// library's expvar serves the hub's Stats as JSON at /debug/vars, on
// http.DefaultServeMux or wherever expvar.Handler() is mounted: one line,
// read at every request.
func ExampleHub_Stats_expvar() {
	hub, err := sse.NewHub(sse.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer hub.Close()
	expvar.Publish("sse", expvar.Func(func() any { return hub.Stats() }))

	hub.Broadcast(sse.Event{Data: []byte("counted")})
	srv := httptest.NewServer(expvar.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var vars struct {
		SSE sse.Stats `json:"sse"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&vars); err != nil {
		log.Fatal(err)
	}
	fmt.Println("published:", vars.SSE.Published, "streams:", vars.SSE.Streams)
	// Output:
	// published: 1 streams: 0
}
