// Types of sse.js, the page side of github.com/ssehub/sse. Served beside
// it by sse.ScriptHandler (a path ending in .d.ts).

/** An event as listeners receive it: the fields of a MessageEvent that matter. */
export interface StreamEvent {
  /** The event's type: "message" for events without one. */
  readonly type: string;
  /** The event's data; for "sse-reset", the reason ("unknown", "expired", "epoch"...). */
  readonly data: string;
  /** The last event ID string when it was dispatched: the resume point. */
  readonly lastEventId: string;
}

/** The state of a stream's connection. */
export type StreamState = "connecting" | "open" | "paused" | "closed";

/** What onState watchers get with a state. */
export interface StateInfo {
  /** Why the last attempt failed, when one did. */
  readonly error?: StreamError;
  /** The ms until the next attempt, when one is scheduled. */
  readonly delay?: number;
}

/** Why a connection failed. */
export class StreamError extends Error {
  constructor(message: string, status?: number);
  /** The HTTP status of the answer, or 0 (a network error, a stall). */
  readonly status: number;
}

export interface Options {
  /**
   * "eventsource" (the default): the browser's EventSource, which cannot
   * send headers. "fetch": a fetch parsed by sse.js, needed for headers,
   * getToken, method and body (and chosen by default when one is given).
   */
  transport?: "eventsource" | "fetch";
  /** Send cookies to another origin (EventSource's withCredentials; fetch's credentials "include"). */
  withCredentials?: boolean;

  /** fetch: headers of every request. */
  headers?: HeadersInit;
  /** fetch: called before each connect; a non-empty result is sent as "Authorization: Bearer <token>". */
  getToken?: () => string | null | undefined | Promise<string | null | undefined>;
  /** fetch: the method. Default "GET" (the hub serves GET only). */
  method?: string;
  /** fetch: the body, or a function that returns it before each connect. */
  body?: BodyInit | null | (() => BodyInit | null | Promise<BodyInit | null>);

  /** The resume point to start from. Default "": the server's fresh start. */
  lastEventId?: string;
  /**
   * eventsource: the query parameter that carries the resume point when
   * sse.js opens a new EventSource (the hub's Config.LastEventIDParam).
   * Default "lastEventID"; "" sends none. fetch sends the Last-Event-ID header.
   */
  lastEventIdParam?: string;

  /** The reconnection time in ms until the server sends a retry field. Default 3000. */
  retry?: number;
  /** The cap of the backoff in ms (never below the server's retry). Default 30000. */
  maxRetryDelay?: number;
  /**
   * Retries in a row (with no event or comment received in between) after
   * which a failed attempt stops the stream (onStop). A stream the server
   * ends cleanly is always retried. Default Infinity.
   */
  maxRetries?: number;
  /**
   * fetch: the server's heartbeat interval in ms (the hub's Config.Heartbeat,
   * default 15 s). When nothing at all arrives for three of them the
   * connection is taken for dead and made anew. 0 turns the watchdog off.
   */
  heartbeat?: number;
  /** Close the connection while the tab is hidden, and resume when it shows. Not with shared. */
  pauseWhenHidden?: boolean;
  /**
   * One connection for all the tabs of the origin that open this URL with
   * shared set: one tab holds it (a Web Lock), the others receive through a
   * BroadcastChannel, and another takes over when it closes. A string names
   * the lock and channel. Without Web Locks, each tab connects on its own.
   */
  shared?: boolean | string;

  /** The hub could not resume: events were lost. Reload your state; the snapshot and live events follow. */
  onReset?: (reason: string) => void;
  /** The stream stopped for good: an answer no retry mends (401, 403, 404, 204...), or maxRetries. */
  onStop?: (error: StreamError) => void;
}

/** One connection and its listeners; get it from connect(). */
export interface Stream {
  /** The absolute URL. */
  readonly url: string;
  /** The options it was opened with. */
  readonly options: Options;
  readonly state: StreamState;
  /** The resume point: the id of the last event, or of the hub's last sse-position. */
  readonly lastEventId: string;
  /** The reconnection time in ms now in effect. */
  readonly retry: number;
  /** Whether this tab holds the connection: always, unless shared. */
  readonly leader: boolean;
  /**
   * Calls fn for every event of the type and returns the function that
   * removes this registration. The same fn twice for a type is one
   * registration. "sse-reset" listeners get the reason as data;
   * "sse-position" is never delivered.
   */
  on(type: string, fn: (event: StreamEvent) => void): () => void;
  /** Calls fn at every change of state and failed attempt; returns the function that removes it. */
  onState(fn: (state: StreamState, info: StateInfo) => void): () => void;
  /** Ends the connection for every user of the stream. A later connect() opens a new one. */
  close(): void;
}

/**
 * Returns the stream of url, opening it if it is not open: one per URL, so
 * every component shares it. A later call passes no options, or the same
 * object (another throws).
 */
export function connect(url: string | URL, options?: Options): Stream;
