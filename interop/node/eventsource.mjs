// Opens the stream with npm "eventsource" (the WHATWG EventSource for
// Node) and reports what it hands to the page's handlers: onmessage, the
// named "sse-reset" and "sse-position" listeners, onopen and onerror. The
// client reconnects by itself; its resume point is private, so only the
// lastEventId of each event is reported.
import { EventSource } from "eventsource";
import { emit, url } from "./emit.mjs";

const es = new EventSource(url());
es.onopen = () => emit({ kind: "open" });
es.onerror = (e) => emit({ kind: "error", error: e.message ?? "" });
es.onmessage = (e) => emit({ kind: "message", type: e.type, id: e.lastEventId, data: e.data });
for (const name of ["sse-reset", "sse-position"]) {
  es.addEventListener(name, (e) => emit({ kind: "named", type: e.type, id: e.lastEventId, data: e.data }));
}
