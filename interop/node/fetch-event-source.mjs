// Opens the stream with @microsoft/fetch-event-source and reports every
// block it hands to onmessage (it has no named listeners: one handler gets
// every dispatched block). The library is written for browsers: it reads
// window.setTimeout and, unless openWhenHidden is set, document. It resolves
// when the server ends the stream, so onclose throws to have it reconnect
// (onerror then returns nothing, which waits the server's retry).
import { fetchEventSource } from "@microsoft/fetch-event-source";
import { emit, url } from "./emit.mjs";

globalThis.window = globalThis;
globalThis.document ??= { hidden: false, addEventListener() {}, removeEventListener() {} };

class StreamEnded extends Error {}

fetchEventSource(url(), {
  fetch: globalThis.fetch,
  openWhenHidden: true,
  async onopen(res) {
    if (res.status !== 200 || !(res.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
      throw new Error(`unexpected answer ${res.status} ${res.headers.get("content-type")}`);
    }
    emit({ kind: "open" });
  },
  onmessage(m) {
    // m.id is this block's own id ("" without an id line). The library
    // keeps the last one to send as Last-Event-ID but does not expose it.
    emit({ kind: "message", type: m.event || "message", id: m.id, data: m.data });
  },
  onclose() {
    throw new StreamEnded("the server ended the stream");
  },
  onerror(err) {
    emit({ kind: "error", error: err?.message ?? err });
    // undefined: retry after the interval the server's retry field set.
  },
}).catch((err) => {
  emit({ kind: "error", error: `gave up: ${err?.message ?? err}` });
  process.exit(1);
});
