// @ts-self-types="./sse.d.ts"
// sse.js: the page side of github.com/ssehub/sse, served by the Go package
// itself (sse.ScriptHandler). One ES module, no build step, no dependencies.
//
//   import { connect } from "/sse.js";
//   const stream = connect("/sse", { onReset: reloadState });
//   const off = stream.on("price", (e) => show(JSON.parse(e.data)));
//   off(); // this registration, and nothing else
//
// What it adds to a bare EventSource:
//   - one connection per URL, shared by every caller of connect() (a store);
//   - listeners that cannot double: on(type, fn) twice is one registration,
//     and on() returns the only function that removes it;
//   - the hub's protocol: "sse-position" moves the resume point silently,
//     "sse-reset" calls onReset(reason) once, and a connection the module
//     opens anew resumes where the last one stopped;
//   - a fetch transport for headers (a bearer token from getToken() before
//     each connect), methods and bodies, with its own spec-exact parser, a
//     watchdog, backoff with jitter, and a stop on answers a retry cannot
//     mend (401, 403, 404...);
//   - optionally, one connection for all the tabs of an origin.
//
// The types are in sse.d.ts, served beside this file.

const DEFAULT_RETRY = 3000; // ms: the reconnection time browsers start with
const MAX_DELAY = 30000; // ms: the default cap of the backoff
const MAX_TIMEOUT = 2 ** 31 - 1; // setTimeout fires at once for longer delays
const SEEN = 4096; // event ids a shared stream remembers, to drop repeats

/** The shared store: absolute URL → open Stream. */
const streams = new Map();

/**
 * connect returns the stream of url, opening it if it is not open: every
 * call with the same URL (resolved against the page) returns the same
 * Stream until it is closed, so components share one connection and only
 * subscribe and unsubscribe. Options take effect when the stream opens; a
 * later call may pass none, or the very same object.
 */
export function connect(url, options) {
  const key = new URL(url, globalThis.location?.href).href;
  const open = streams.get(key);
  if (open) {
    if (options !== undefined && options !== open.options) {
      throw new Error(`sse.js: ${key} is open with other options: pass the same options object, or none, or close() it first`);
    }
    return open;
  }
  const stream = new Stream(key, options ?? {}, () => streams.get(key) === stream && streams.delete(key));
  streams.set(key, stream);
  return stream;
}

/** StreamError says why a connection failed; status is the HTTP status, or 0. */
export class StreamError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.name = "StreamError";
    this.status = status;
  }
}

// A status a retry may mend: the server is busy or failing for now. Every
// other answer but 200 with an event stream stops the stream (401, 403, 404,
// 204: a retry gets the same answer), as EventSource stops for all of them.
const retriable = (status) => status === 408 || status === 429 || status >= 500;

// report hands an exception thrown by the application's callback to the
// page's error handling, without stopping the other listeners.
const report = (err) => (globalThis.reportError ? globalThis.reportError(err) : console.error(err));

/**
 * A Stream is one connection (per URL and page, or per origin when shared)
 * and its listeners. Make one with connect().
 */
class Stream {
  #forget; // removes this stream from the store
  #transport; // "eventsource" or "fetch"
  #state = "connecting";
  #lastEventId; // the resume point: the last event ID string
  #retry; // the reconnection time, ms: the server's retry field, or the default
  #listeners = new Map(); // type → Map(fn → registration token)
  #watchers = new Set(); // onState functions
  #conn = null; // the current connection attempt, see #connect
  #timer = 0; // the pending reconnect
  #failures = 0; // attempts since the last healthy connection
  #closed = false;
  #shared = null; // tabs sharing one connection, see #share
  #visibility = null; // the visibilitychange handler, with pauseWhenHidden

  constructor(url, options, forget) {
    /** The absolute URL of the stream. */
    this.url = url;
    /** The options the stream was opened with. */
    this.options = options;
    this.#forget = forget;
    const o = options;
    const fetchOnly = o.headers || o.getToken || o.method || o.body !== undefined;
    this.#transport = o.transport ?? (fetchOnly ? "fetch" : "eventsource");
    if (this.#transport !== "fetch" && this.#transport !== "eventsource") {
      throw new TypeError(`sse.js: transport is "eventsource" or "fetch", not ${JSON.stringify(o.transport)}`);
    }
    if (this.#transport === "eventsource" && fetchOnly) {
      throw new TypeError('sse.js: headers, getToken, method and body need transport "fetch"');
    }
    this.#lastEventId = o.lastEventId ?? "";
    this.#retry = o.retry ?? DEFAULT_RETRY;
    if (o.shared && typeof BroadcastChannel === "function" && globalThis.navigator?.locks) {
      this.#share(typeof o.shared === "string" ? o.shared : "sse.js " + url);
      return;
    }
    if (o.pauseWhenHidden && globalThis.document) {
      this.#visibility = () => {
        if (this.#closed) return;
        if (document.hidden) this.#pause();
        else if (this.#state === "paused") this.#connect();
      };
      document.addEventListener("visibilitychange", this.#visibility);
    }
    this.#connect();
  }

  /** "connecting", "open", "paused" (a hidden tab, with pauseWhenHidden) or "closed". */
  get state() {
    return this.#state;
  }

  /** The resume point: the id of the last event, or of the hub's last sse-position. */
  get lastEventId() {
    return this.#lastEventId;
  }

  /** The reconnection time in ms: the server's latest retry field, or the default. */
  get retry() {
    return this.#retry;
  }

  /** Whether this tab holds the connection: always, unless shared. */
  get leader() {
    return !this.#shared || this.#shared.leader;
  }

  /**
   * on calls fn(event) for every event of the type ("message" for events
   * without one; "sse-reset" with the reason as data) and returns the
   * function that removes this registration. The same fn registered twice
   * for a type is one registration, called once per event; each returned
   * off() removes it only while it is the registration it returned.
   */
  on(type, fn) {
    if (typeof fn !== "function") throw new TypeError("sse.js: on(type, fn) needs a function");
    type = String(type);
    let fns = this.#listeners.get(type);
    if (!fns) {
      fns = new Map();
      this.#listeners.set(type, fns);
      this.#conn?.listen?.(type);
      if (this.#shared && !this.#shared.types.has(type)) {
        this.#learn(type);
        this.#shared.ch.postMessage({ k: "types", types: [type] });
      }
    }
    let token = fns.get(fn);
    if (!token) {
      token = {};
      fns.set(fn, token);
    }
    return () => {
      if (fns.get(fn) === token) fns.delete(fn);
    };
  }

  /**
   * onState calls fn(state, info) at every change of state, and at every
   * failed attempt (info.error, and info.delay: the ms until the next). It
   * returns the function that removes it.
   */
  onState(fn) {
    if (typeof fn !== "function") throw new TypeError("sse.js: onState(fn) needs a function");
    const watcher = { fn }; // its own, even if fn is registered twice
    this.#watchers.add(watcher);
    return () => this.#watchers.delete(watcher);
  }

  /** close ends the connection for every user of the stream, for good. */
  close() {
    this.#close({});
  }

  #close(info) {
    if (this.#closed) return;
    this.#closed = true;
    this.#end();
    clearTimeout(this.#timer);
    if (this.#visibility) document.removeEventListener("visibilitychange", this.#visibility);
    const sh = this.#shared;
    if (sh) {
      sh.abort.abort(); // a lock request still waiting
      sh.release?.(); // the lock held: another tab takes over
      sh.ch.close();
    }
    this.#forget();
    this.#setState("closed", info);
  }

  // ---- connections --------------------------------------------------------

  // #connect starts one connection attempt. Every callback of the attempt
  // checks that it is still this.#conn: an attempt that was ended (a
  // reconnect, close, a pause) can still deliver a callback or two, and
  // those must change nothing.
  #connect() {
    clearTimeout(this.#timer);
    if (this.#closed) return;
    if (this.#visibility && document.hidden) {
      this.#setState("paused");
      return;
    }
    const conn = { stop() {}, listen: null };
    this.#conn = conn;
    this.#setState("connecting");
    if (this.#transport === "fetch") this.#runFetch(conn);
    else this.#runEventSource(conn);
  }

  #end() {
    const conn = this.#conn;
    this.#conn = null;
    conn?.stop();
  }

  #pause() {
    this.#end();
    clearTimeout(this.#timer);
    this.#setState("paused");
  }

  // #healthy notes that the connection works: it dispatched a block or a
  // comment. A server that refuses with 200 (the hub over a limit sends
  // a retry field and closes) delivers neither, so its backoff grows.
  #healthy(conn) {
    if (conn === this.#conn) this.#failures = 0;
  }

  // #retryLater ends the attempt and schedules the next, after the
  // reconnection time (the server's retry field), doubled for each attempt
  // since the last healthy connection up to maxRetryDelay, plus up to half
  // again at random so that pages cut together come back spread. An attempt
  // that failed with an error counts towards maxRetries; a stream that just
  // ended does not.
  #retryLater(conn, error, after = 0) {
    if (conn !== this.#conn || this.#closed) return;
    this.#end();
    const o = this.options;
    if (error && this.#failures >= (o.maxRetries ?? Infinity)) {
      this.#stop(error);
      return;
    }
    let delay = this.#retry;
    if (this.#failures > 0) {
      const cap = Math.max(o.maxRetryDelay ?? MAX_DELAY, this.#retry);
      delay = Math.min(cap, Math.max(this.#retry, 100) * 2 ** Math.min(this.#failures, 20));
    }
    delay = Math.min(MAX_TIMEOUT, Math.max(delay, after) * (1 + Math.random() / 2));
    this.#failures++;
    this.#setState("connecting", { error, delay });
    this.#timer = setTimeout(() => this.#connect(), delay);
  }

  // #stop ends the stream for good: an answer no retry mends. Every tab
  // sharing it stops too.
  #stop(error, tell = true) {
    if (this.#closed) return;
    if (tell && this.#shared?.leader) this.#post({ k: "stop", message: error.message, status: error.status });
    this.#close({ error });
    try {
      this.options.onStop?.(error);
    } catch (err) {
      report(err);
    }
  }

  // The native transport: the browser's EventSource, which reconnects by
  // itself with Last-Event-ID. When it gives up (it does for any answer but
  // 200 with an event stream, and cannot say which), a HEAD request asks the
  // server why (the hub answers HEAD as it would GET, without opening a
  // stream); a retriable answer gets a new EventSource later, resuming from
  // the query parameter (Config.LastEventIDParam) since a new EventSource
  // cannot send the header.
  #runEventSource(conn) {
    const o = this.options;
    let url = this.url;
    const param = o.lastEventIdParam ?? "lastEventID";
    if (this.#lastEventId && param) {
      const u = new URL(url);
      u.searchParams.set(param, this.#lastEventId);
      url = u.href;
    }
    const es = new EventSource(url, { withCredentials: !!o.withCredentials });
    conn.stop = () => es.close();
    const listening = new Set();
    conn.listen = (type) => {
      if (listening.has(type)) return;
      listening.add(type);
      es.addEventListener(type, (e) => {
        // "open" and "error" listeners also get the EventSource's own events.
        if (conn !== this.#conn || !(e instanceof MessageEvent)) return;
        this.#healthy(conn);
        this.#receive(e.type, e.data, e.lastEventId);
      });
    };
    const types = ["message", "sse-reset", "sse-position", ...this.#listeners.keys(), ...(this.#shared?.types ?? [])];
    for (const type of types) conn.listen(type);
    es.onopen = () => conn === this.#conn && this.#setState("open");
    es.onerror = () => {
      if (conn !== this.#conn) return;
      if (es.readyState !== EventSource.CLOSED) {
        this.#setState("connecting"); // the browser retries by itself
        return;
      }
      this.#probe(conn);
    };
  }

  async #probe(conn) {
    let error;
    try {
      const res = await fetch(this.url, { method: "HEAD", cache: "no-store", credentials: this.options.withCredentials ? "include" : "same-origin" });
      error = answerError(res) ?? new StreamError("sse.js: the EventSource failed", 0);
    } catch (err) {
      error = new StreamError("sse.js: " + err.message);
    }
    if (conn !== this.#conn) return;
    if (error.status && !retriable(error.status)) this.#stop(error);
    else this.#retryLater(conn, error);
  }

  // The fetch transport: one fetch per connection, parsed by Parser. It
  // sends the resume point as Last-Event-ID, and reconnects when the body
  // ends, when the network fails, and when nothing at all (not even a
  // heartbeat comment) arrived for three heartbeat intervals.
  async #runFetch(conn) {
    const o = this.options;
    const ctrl = new AbortController();
    const limit = o.heartbeat === 0 ? 0 : 3 * (o.heartbeat ?? 15000);
    let watchdog = 0;
    const kick = () => {
      if (!limit) return;
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        this.#retryLater(conn, new StreamError(`sse.js: nothing arrived for ${limit} ms`));
      }, limit);
    };
    conn.stop = () => {
      clearTimeout(watchdog);
      ctrl.abort();
    };
    try {
      const headers = new Headers(o.headers);
      headers.set("Accept", "text/event-stream");
      if (o.getToken) {
        const token = await o.getToken();
        if (conn !== this.#conn) return;
        if (token) headers.set("Authorization", "Bearer " + token);
      }
      if (this.#lastEventId) headers.set("Last-Event-ID", byteString(this.#lastEventId));
      const body = typeof o.body === "function" ? await o.body() : o.body;
      if (conn !== this.#conn) return;
      kick();
      const res = await fetch(this.url, {
        method: o.method ?? "GET",
        headers,
        body,
        cache: "no-store",
        credentials: o.withCredentials ? "include" : "same-origin",
        signal: ctrl.signal,
      });
      if (conn !== this.#conn) return;
      const error = answerError(res);
      if (error) {
        res.body?.cancel().catch(() => {});
        if (retriable(error.status)) this.#retryLater(conn, error, retryAfter(res));
        else this.#stop(error);
        return;
      }
      this.#setState("open");
      const parser = new Parser(this.#lastEventId, {
        event: (type, data, id) => {
          if (conn !== this.#conn) return;
          this.#healthy(conn);
          this.#receive(type, data, id);
        },
        id: (id) => {
          if (conn !== this.#conn) return;
          this.#healthy(conn);
          this.#moveTo(id);
        },
        retry: (ms) => {
          if (conn === this.#conn) this.#retry = ms ?? o.retry ?? DEFAULT_RETRY;
        },
        comment: () => this.#healthy(conn),
      });
      const reader = res.body.getReader();
      const decoder = new TextDecoder(); // UTF-8, U+FFFD for bad bytes, one leading BOM dropped
      for (;;) {
        const { value, done } = await reader.read();
        if (conn !== this.#conn) return;
        if (done) break;
        kick();
        parser.feed(decoder.decode(value, { stream: true }));
      }
      // The body ended: an event it cut off is discarded (the spec), and
      // the connection starts again from the last dispatched block.
      this.#retryLater(conn);
    } catch (err) {
      this.#retryLater(conn, err instanceof StreamError ? err : new StreamError("sse.js: " + err.message));
    } finally {
      clearTimeout(watchdog);
    }
  }

  // ---- events -----------------------------------------------------------

  // #receive handles an event of this tab's connection.
  #receive(type, data, id) {
    if (type === "sse-position") {
      this.#moveTo(id); // the hub's position: nothing to deliver
      return;
    }
    if (type === "sse-reset") {
      this.#post({ k: "reset", reason: data, id });
      this.#reset(data, id);
      return;
    }
    if (this.#shared && !this.#shared.first(id)) return; // delivered before a takeover
    this.#lastEventId = id;
    this.#post({ k: "event", type, data, id });
    this.#emit(type, data, id);
  }

  // #moveTo sets the resume point without an event, and tells the other tabs.
  #moveTo(id) {
    if (id === this.#lastEventId) return;
    this.#lastEventId = id;
    this.#post({ k: "id", id });
  }

  // #reset: the hub could not resume, events are lost: the application
  // reloads its state (onReset, then the "sse-reset" listeners, once each);
  // the snapshot and the live events follow on the stream.
  #reset(reason, id) {
    this.#shared?.forget();
    this.#lastEventId = id;
    try {
      this.options.onReset?.(reason);
    } catch (err) {
      report(err);
    }
    this.#emit("sse-reset", reason, id);
  }

  #emit(type, data, lastEventId) {
    const fns = this.#listeners.get(type);
    if (!fns) return;
    const event = { type, data, lastEventId };
    for (const fn of [...fns.keys()]) {
      if (!fns.has(fn)) continue; // removed by an earlier listener
      try {
        fn(event);
      } catch (err) {
        report(err);
      }
    }
  }

  #setState(state, info = {}) {
    this.#state = state;
    this.#post({ k: "state", state, status: info.error?.status ?? 0 });
    for (const w of [...this.#watchers]) {
      try {
        w.fn(state, info);
      } catch (err) {
        report(err);
      }
    }
  }

  // ---- one connection for every tab --------------------------------------
  //
  // Every tab asks for the same Web Lock; the tab that holds it (the leader)
  // connects and posts what it receives on a BroadcastChannel, the others
  // (followers) deliver what it posts and keep its resume point. When the
  // leader's tab closes, the browser gives the lock to another tab, which
  // connects from the last position it saw. Repeats are possible only around
  // a takeover (a follower was ahead of the new leader), and they are
  // dropped by id: every event of a hub has an id of its own. An
  // EventSource dispatches only the types it has listeners for, so every
  // tab tells the others the types it listens to, and a leader listens to
  // all of them.

  #share(name) {
    const seen = new Set();
    const sh = {
      name,
      leader: false,
      types: new Set(), // the types any of the tabs listens to
      ch: new BroadcastChannel(name),
      abort: new AbortController(),
      release: null, // lets the lock go
      answered: null, // ends the wait for a position, see #lead
      // first reports whether an id was not delivered yet, and remembers it.
      first(id) {
        if (!id) return true;
        if (seen.has(id)) return false;
        seen.add(id);
        if (seen.size > SEEN) seen.delete(seen.values().next().value);
        return true;
      },
      forget: () => seen.clear(), // a reset: the snapshot may repeat ids
    };
    this.#shared = sh;
    sh.ch.onmessage = (e) => this.#onShared(e.data);
    sh.ch.postMessage({ k: "hello" });
    navigator.locks
      .request(name, { signal: sh.abort.signal }, () => {
        if (this.#closed) return undefined;
        sh.leader = true;
        return new Promise((release) => {
          sh.release = release;
          this.#lead();
        });
      })
      .catch(() => {}); // close() aborted the request
  }

  async #lead() {
    const sh = this.#shared;
    if (!this.#lastEventId) {
      // This tab has no position (it joined while the previous leader was
      // starting): take one from a follower, if any, so as not to start
      // afresh under the others' feet.
      const { pending = [] } = await navigator.locks.query();
      if (pending.some((l) => l.name === sh.name)) {
        sh.ch.postMessage({ k: "ask" });
        await new Promise((done) => {
          sh.answered = done;
          setTimeout(done, 100);
        });
        sh.answered = null;
      }
    }
    this.#connect();
  }

  #post(msg) {
    if (this.#shared?.leader && !this.#closed) this.#shared.ch.postMessage(msg);
  }

  // #learn notes a type some tab listens to.
  #learn(type) {
    this.#shared.types.add(type);
    this.#conn?.listen?.(type);
  }

  #onShared(m) {
    const sh = this.#shared;
    if (this.#closed) return;
    for (const type of m.types ?? []) if (!sh.types.has(type)) this.#learn(type);
    if (m.k === "types") return;
    if (m.k === "hello" || m.k === "ask") {
      // A new tab, or a new leader without a position.
      if ((sh.leader && m.k === "hello") || (this.#lastEventId && m.k === "ask")) {
        sh.ch.postMessage({ k: "welcome", id: this.#lastEventId, state: this.#state, types: [...sh.types] });
      }
      return;
    }
    if (sh.leader) {
      // A late message of the previous leader: what this tab lacks of it,
      // its own connection delivers.
      if (m.k === "welcome" && !this.#lastEventId) {
        this.#lastEventId = m.id;
        sh.answered?.();
      }
      return;
    }
    switch (m.k) {
      case "event":
        if (!sh.first(m.id)) return;
        this.#lastEventId = m.id;
        this.#emit(m.type, m.data, m.id);
        return;
      case "id":
        this.#lastEventId = m.id;
        return;
      case "reset":
        this.#reset(m.reason, m.id);
        return;
      case "welcome":
        if (!this.#lastEventId) this.#lastEventId = m.id;
        if (m.state !== this.#state && m.state !== "closed") this.#setState(m.state);
        return;
      case "state":
        this.#setState(m.state, m.status ? { error: new StreamError("sse.js: the leader tab's connection failed", m.status) } : {});
        return;
      case "stop":
        this.#stop(new StreamError(m.message, m.status), false);
    }
  }
}

// answerError returns why a response is not an event stream: a status
// other than 200, or another Content-Type; null if it is one.
function answerError(res) {
  if (res.status !== 200) return new StreamError(`sse.js: the server answered ${res.status}`, res.status);
  const type = (res.headers.get("Content-Type") ?? "").split(";")[0].trim().toLowerCase();
  if (type !== "text/event-stream") {
    return new StreamError(`sse.js: the server answered ${type || "no Content-Type"}, not text/event-stream`, 200);
  }
  return null;
}

// byteString returns s as its UTF-8 bytes, one character each: header
// values are byte strings, and EventSource sends Last-Event-ID in UTF-8.
function byteString(s) {
  return String.fromCharCode(...new TextEncoder().encode(s));
}

// retryAfter reads a Retry-After header (seconds or a date) as ms.
function retryAfter(res) {
  const v = res.headers.get("Retry-After");
  if (!v) return 0;
  const ms = /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v) - Date.now();
  return Number.isFinite(ms) && ms > 0 ? ms : 0;
}

/**
 * Parser reads the text of an event stream as the WHATWG HTML spec's
 * "event stream interpretation" says, and as Chromium's EventSource does.
 * The caller decodes bytes with a streaming TextDecoder, which already does
 * the spec's UTF-8 part: invalid bytes become U+FFFD and one byte order mark
 * at the very start is dropped (a later one stays, and spoils its line).
 */
class Parser {
  #line = ""; // the line read so far
  #cr = false; // the text so far ended with CR: an LF that follows ends nothing
  #data = ""; // the data buffer
  #type = ""; // the event type buffer
  #id; // the last event ID buffer

  // Like Chromium, and unlike the spec's text, a new connection's id buffer
  // starts at the last event ID string, so that an event without an id
  // field after a reconnect reports the resume point.
  constructor(lastEventId, on) {
    this.#id = lastEventId;
    this.on = on;
  }

  // feed parses the next piece of text. A line ends at CRLF, LF or CR, and
  // a CRLF may be split between two pieces.
  feed(text) {
    let i = 0;
    if (this.#cr && text.length > 0) {
      this.#cr = false;
      if (text[0] === "\n") i = 1;
    }
    const end = /[\r\n]/g;
    while (i < text.length) {
      end.lastIndex = i;
      const m = end.exec(text);
      if (!m) {
        this.#line += text.slice(i);
        return;
      }
      const line = this.#line + text.slice(i, m.index);
      this.#line = "";
      i = m.index + 1;
      if (text[m.index] === "\r") {
        if (i === text.length) this.#cr = true;
        else if (text[i] === "\n") i++;
      }
      this.#process(line);
    }
  }

  #process(line) {
    if (line === "") {
      this.#dispatch();
      return;
    }
    if (line[0] === ":") {
      this.on.comment(); // a heartbeat
      return;
    }
    // The name is all before the first colon, the value all after it, less
    // one leading space (not a tab, not a second space). A line without a
    // colon is a name with an empty value: "data" appends an empty line.
    const colon = line.indexOf(":");
    let name = line;
    let value = "";
    if (colon >= 0) {
      name = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value[0] === " ") value = value.slice(1);
    }
    // Names are compared as they are: "Data" and "data " are unknown fields.
    switch (name) {
      case "data":
        this.#data += value + "\n";
        break;
      case "event":
        this.#type = value;
        break;
      case "id":
        if (!value.includes("\0")) this.#id = value; // an id with NUL is ignored
        break;
      case "retry":
        // Digits only, in ms, now (even if the block is never dispatched).
        // An empty value sets the default back, as Chromium does; digits
        // beyond 64 bits are ignored, as Chromium does.
        if (value === "") this.on.retry(null);
        else if (/^[0-9]+$/.test(value) && BigInt(value) < 2n ** 64n) this.on.retry(Math.min(Number(value), MAX_TIMEOUT));
        break;
    }
  }

  // #dispatch ends a block. The resume point moves at every block, also one
  // without data (an id-only block); an event needs data. The type does not
  // leak into the next block; the id does.
  #dispatch() {
    const data = this.#data;
    const type = this.#type || "message";
    this.#data = "";
    this.#type = "";
    if (data === "") this.on.id(this.#id);
    else this.on.event(type, data.slice(0, -1), this.#id);
  }
}
