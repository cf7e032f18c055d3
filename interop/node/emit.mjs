// Shared output for the interop clients: one JSON object per line on
// stdout, read by the Go test (interop/clients_node_test.go).
//
//   kind: "open" | "message" | "named" | "error"
//   type: the event type the client reports ("message" when unnamed)
//   id:   the event's lastEventId as the client hands it to the app
//   data: the event's data
//   lastId: the client's own resume point, when it exposes one
//   ts:   Date.now() when the record was made
export function emit(rec) {
  const line = {
    kind: rec.kind,
    type: rec.type ?? "",
    id: rec.id ?? "",
    data: rec.data ?? "",
    lastId: rec.lastId ?? null,
    ts: Date.now(),
  };
  if (rec.error !== undefined) line.error = String(rec.error);
  process.stdout.write(JSON.stringify(line) + "\n");
}

// url returns the stream URL given as the script's only argument.
export function url() {
  const u = process.argv[2];
  if (!u) {
    process.stderr.write("usage: node <script> <stream url>\n");
    process.exit(2);
  }
  return u;
}
