// The dashboard page: one stream, one listener per event type.
//
//   monitor_points  JSON [{pointId, value, status, updateAt}]: values. The
//                   stream follows the points the filter watches; it starts
//                   with their current values, one event each.
//   opcua_status    JSON {state, endpoint, error, since, attempt, points}.
//   watch           JSON {gen, all, count}: the server applied a new watch
//                   set; the current values of the points it added came
//                   just before.
//   sse-reset       the server could not resume this stream; the current
//                   values of the watched points follow on the same stream.
//
// The filter chips do not touch the stream: they POST the watched points to
// api/watch, and the server starts (or stops) sending those points on the
// open stream, current values first. The browser reconnects by itself after
// a drop and sends Last-Event-ID; the server then replays exactly what was
// missed of the points watched now, so the page keeps its state.
//
// The stream is opened with sse.js, the module the hub's Go package serves
// (sse.ScriptHandler, at /sse.js): it uses the browser's EventSource, and
// adds listeners that cannot double and one state callback for the
// indicator. With a plain EventSource, open() would read:
//
//   const es = new EventSource("events?" + q);
//   es.addEventListener("open", () => { setStream("live"); sync(); });
//   es.addEventListener("error", () => {
//     drops++;
//     if (es.readyState === EventSource.CLOSED) { setStream("closed"); setTimeout(open, 3000); }
//     else setStream("reconnecting");
//   });
//   es.addEventListener("monitor_points", (e) => JSON.parse(e.data).forEach(apply));
//   ...
import { connect } from "./sse.js";

(() => {
  const WINDOW = 30000; // ms of history in a trend line
  const $ = (id) => document.getElementById(id);

  const points = new Map(); // pointId -> {sample, trend: [{t, v}], row}, for watched points only
  let filter = new Set(splitList(new URLSearchParams(location.search).get("points"))); // none: every point
  let stream = null; // sse.js's Stream of the page's current client ID
  let clientId = "";
  let applied = ""; // the watch set the server has for clientId, as watchKey gives it
  let posting = false; // a POST to api/watch is on its way: the next one waits for its answer
  let retry = null;
  let drops = 0;
  let opcuaState = "connecting";
  let streamState = "connecting";

  // window.dashboard is read by the browser test.
  window.dashboard = { clientId: "", points, source: null, watchGen: 0 };

  function splitList(s) {
    return (s || "").split(",").map((x) => x.trim()).filter(Boolean);
  }

  function randomId() {
    const b = new Uint8Array(12);
    crypto.getRandomValues(b);
    return btoa(String.fromCharCode(...b)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // open starts a fresh stream with a new client ID, following the points of
  // the filter: the server answers with their current values, then changes.
  // Changing the filter later does not reopen it (see sync).
  function open() {
    const old = stream;
    stream = null;
    if (old) old.close();
    clientId = randomId();
    applied = watchKey();
    const q = new URLSearchParams({ client: clientId, points: filter.size ? [...filter].join(",") : "*" });
    const s = connect("events?" + q, {
      // When the browser gives up on the stream (the server answered an
      // error status, for example because it no longer had this client's
      // watch set), start over with a new client ID, a little later.
      maxRetries: 0,
      onStop: () => {
        if (s !== stream) return;
        setStream("closed");
        setTimeout(() => s === stream && open(), 3000);
      },
    });
    stream = s;
    window.dashboard.clientId = clientId;
    window.dashboard.source = s;
    $("stream-url").textContent = "/events?" + q;
    setStream("connecting");

    let last = "connecting";
    s.onState((state) => {
      if (s !== stream || state === last) return;
      if (last === "open" && state === "connecting") drops++;
      last = state;
      if (state === "open") {
        setStream("live");
        sync(); // a change the server did not take while the stream was away
      } else if (state === "connecting") {
        setStream("reconnecting"); // the browser retries by itself
      }
    });
    s.on("monitor_points", (e) => JSON.parse(e.data).forEach(apply));
    s.on("opcua_status", (e) => setOpcua(JSON.parse(e.data)));
    s.on("watch", (e) => {
      window.dashboard.watchGen = JSON.parse(e.data).gen;
      document.body.dataset.watchGen = String(window.dashboard.watchGen);
    });
    pruneRows();
  }

  function watched(id) {
    return filter.size === 0 || filter.has(id);
  }

  // watchKey names the filter's watch set.
  function watchKey() {
    return filter.size ? [...filter].sort().join("\n") : "*";
  }

  // sync tells the server the points the filter watches, unless it has them
  // already: POST api/watch. One request at a time, so they arrive in order;
  // a failed one is tried again a second later, or when the stream opens.
  function sync() {
    if (posting || !stream) return;
    const want = watchKey();
    if (want === applied) return;
    clearTimeout(retry);
    posting = true;
    const id = clientId;
    const body = filter.size ? { client: id, points: [...filter] } : { client: id, all: true };
    fetch("api/watch", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
      .then((r) => {
        if (r.ok && id === clientId) applied = want;
        return r.ok;
      })
      .catch(() => false)
      .then((ok) => {
        posting = false;
        if (ok) sync(); // the filter may have changed meanwhile
        else retry = setTimeout(sync, 1000);
      });
  }

  // apply records a sample of a watched point unless the page already shows
  // a value at least as new. The server never sends a value out of order,
  // and a value twice only when it starts over (a reset, a fresh stream) or
  // when a resume follows a drop just after current values it sent (a
  // filter change's, or those a resume starts with: see the README); the
  // check keeps the page right then. Values of points the filter no longer
  // watches were on their way before the server applied the filter: they
  // are dropped.
  function apply(s) {
    addChip(s.pointId);
    if (!watched(s.pointId)) return;
    let p = points.get(s.pointId);
    if (!p) {
      p = { sample: null, trend: [], row: null };
      points.set(s.pointId, p);
    }
    const fresh = !p.sample || s.updateAt > p.sample.updateAt; // fixed-width UTC stamps
    if (fresh) {
      p.sample = s;
      const v = numeric(s.value);
      if (v !== null) p.trend.push({ t: Date.now(), v }); // arrival time: immune to clock skew
    }
    render(s.pointId, p, fresh);
  }

  function numeric(v) {
    if (typeof v === "number") return v;
    if (typeof v === "boolean") return v ? 1 : 0;
    return null;
  }

  function displayName(id) {
    return id.replace(/^ns=\d+;s=/, "");
  }

  function render(id, p, changed) {
    if (!p.row) p.row = addRow(id);
    const s = p.sample;
    const r = p.row;
    r.value.textContent = formatValue(s.value);
    r.value.className = "num value" + (typeof s.value === "boolean" ? " bool-" + s.value : "");
    r.quality.textContent = s.status;
    r.quality.className = "quality " + qualityClass(s.status);
    r.time.textContent = formatTime(s.updateAt);
    r.time.title = s.updateAt;
    drawTrend(r.svg, p.trend, Date.now());
    if (changed) {
      r.value.classList.remove("flash");
      void r.value.offsetWidth; // restart the animation
      r.value.classList.add("flash");
    }
  }

  function addRow(id) {
    const empty = document.querySelector("#rows .empty");
    if (empty) empty.remove();
    const tr = document.createElement("tr");
    tr.dataset.point = id;
    tr.innerHTML =
      '<td class="name"></td><td class="num value"></td><td class="quality"></td>' +
      '<td class="time"></td><td class="trend"><svg viewBox="0 0 160 32" preserveAspectRatio="none">' +
      '<polyline points=""/><circle r="2.5" cx="-10" cy="-10"/></svg></td>';
    tr.querySelector(".name").textContent = displayName(id);
    tr.querySelector(".name").title = id;
    insertInOrder($("rows"), tr, "tr[data-point]");
    return {
      tr,
      value: tr.querySelector(".value"),
      quality: tr.querySelector(".quality"),
      time: tr.querySelector(".time"),
      svg: tr.querySelector("svg"),
    };
  }

  // pruneRows forgets the points the filter no longer watches (the server
  // sends their current values again when they are watched again) and
  // repaints the others.
  function pruneRows() {
    for (const [id, p] of points) {
      if (!watched(id)) {
        if (p.row) p.row.tr.remove();
        points.delete(id);
      } else if (p.sample) {
        render(id, p, false);
      }
    }
    if (!document.querySelector("#rows tr")) {
      $("rows").innerHTML = '<tr class="empty"><td colspan="5">Waiting for values…</td></tr>';
    }
    document.querySelectorAll("#chips .chip").forEach((c) => c.classList.toggle("on", filter.has(c.dataset.point)));
    $("filter-all").classList.toggle("on", filter.size === 0);
  }

  function formatValue(v) {
    if (v === null || v === undefined) return "—";
    if (typeof v === "number") {
      return Number.isInteger(v)
        ? v.toLocaleString("en-US")
        : v.toLocaleString("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 3 });
    }
    if (typeof v === "boolean") return v ? "true" : "false";
    if (typeof v === "string") return v;
    return JSON.stringify(v);
  }

  function formatTime(stamp) {
    const d = new Date(stamp);
    const pad = (n, w = 2) => String(n).padStart(w, "0");
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }

  function qualityClass(status) {
    if (status === "Good") return "good";
    if (status.startsWith("Uncertain")) return "uncertain";
    return "bad";
  }

  // drawTrend draws the last WINDOW ms of a point as a step line ending at
  // now: a value holds until the next one arrives.
  function drawTrend(svg, trend, now) {
    const line = svg.querySelector("polyline");
    const dot = svg.querySelector("circle");
    while (trend.length > 1 && trend[1].t <= now - WINDOW) trend.shift();
    if (trend.length === 0) return;
    let lo = Infinity, hi = -Infinity;
    for (const p of trend) {
      lo = Math.min(lo, p.v);
      hi = Math.max(hi, p.v);
    }
    if (hi - lo < 1e-9) {
      lo -= 1;
      hi += 1;
    }
    const w = 160, h = 32, pad = 3;
    const x = (t) => Math.max(0, w - ((now - t) / WINDOW) * w).toFixed(1);
    const y = (v) => (h - pad - ((v - lo) / (hi - lo)) * (h - 2 * pad)).toFixed(1);
    const pts = [];
    trend.forEach((p, i) => {
      if (i > 0) pts.push(`${x(p.t)},${y(trend[i - 1].v)}`);
      pts.push(`${x(p.t)},${y(p.v)}`);
    });
    const last = trend[trend.length - 1];
    pts.push(`${w},${y(last.v)}`);
    line.setAttribute("points", pts.join(" "));
    dot.setAttribute("cx", String(w - 2.5));
    dot.setAttribute("cy", y(last.v));
  }

  // Trend lines move with time, also for points that do not change.
  setInterval(() => {
    const now = Date.now();
    for (const p of points.values()) if (p.row) drawTrend(p.row.svg, p.trend, now);
  }, 500);

  function setStream(state) {
    streamState = state;
    document.body.dataset.stream = state;
    document.body.dataset.drops = String(drops);
    $("stream-state").textContent = state;
    $("drops").textContent = drops ? ` · ${drops} drop${drops > 1 ? "s" : ""}` : "";
    $("stream-pill").className = "pill " + (state === "live" ? "ok" : state === "closed" ? "bad" : "warn");
    markStale();
  }

  function setOpcua(st) {
    opcuaState = st.state;
    document.body.dataset.opcua = st.state;
    $("opcua-state").textContent = st.state;
    $("opcua-points").textContent = st.state === "connected" && st.points ? ` · ${st.points} points` : "";
    $("opcua-pill").className =
      "pill " + (st.state === "connected" ? "ok" : st.state === "down" ? "bad" : "warn");
    let detail = st.endpoint + " · since " + formatTime(st.since);
    if (st.error) detail += ` · attempt ${st.attempt}: ${st.error}`;
    $("opcua-detail").textContent = detail;
    $("opcua-detail").className = "detail" + (st.error ? " error" : "");
    if (st.state === "connected") loadChips(); // the server's points may have changed
    markStale();
  }

  function markStale() {
    document.body.classList.toggle("stale", streamState !== "live" || opcuaState !== "connected");
  }

  // Rows and chips follow the server's order of points (api/points: the
  // order it first saw them, which is browse order), whatever order values
  // come in; points it did not list yet go last.
  let order = new Map(); // pointId -> rank
  function rank(id) {
    return order.has(id) ? order.get(id) : Infinity;
  }
  function insertInOrder(parent, el, sel) {
    const next = [...parent.querySelectorAll(sel)].find((o) => rank(o.dataset.point) > rank(el.dataset.point));
    parent.insertBefore(el, next || null);
  }
  // sortChildren moves only what is out of order: a click must not lose
  // the chip it is on.
  function sortChildren(parent, sel) {
    const els = [...parent.querySelectorAll(sel)];
    const sorted = [...els].sort((a, b) => rank(a.dataset.point) - rank(b.dataset.point) || 0);
    if (sorted.every((el, i) => el === els[i])) return;
    sorted.forEach((el) => parent.appendChild(el));
  }

  // Filter chips: one per known point; none selected means every point.
  function addChip(id) {
    if (!order.has(id)) loadChipsSoon();
    if (document.querySelector(`#chips .chip[data-point="${CSS.escape(id)}"]`)) return;
    const b = document.createElement("button");
    b.type = "button";
    b.className = "chip" + (filter.has(id) ? " on" : "");
    b.dataset.point = id;
    b.textContent = displayName(id);
    b.title = id;
    b.addEventListener("click", () => {
      if (filter.has(id)) filter.delete(id);
      else filter.add(id);
      applyFilter();
    });
    insertInOrder($("chips"), b, ".chip");
  }

  // applyFilter shows the new filter at once and tells the server; the
  // stream stays open.
  function applyFilter() {
    const url = new URL(location.href);
    if (filter.size) url.searchParams.set("points", [...filter].join(","));
    else url.searchParams.delete("points");
    history.replaceState(null, "", url);
    pruneRows();
    sync();
  }

  $("filter-all").addEventListener("click", () => {
    filter = new Set();
    applyFilter();
  });

  // The chips list every point, also those the filter does not watch.
  let loading = null;
  function loadChipsSoon() {
    if (!loading) loading = setTimeout(loadChips, 200);
  }
  function loadChips() {
    clearTimeout(loading);
    loading = null;
    fetch("api/points")
      .then((r) => r.json())
      .then((list) => {
        order = new Map(list.map((s, i) => [s.pointId, i]));
        list.forEach((s) => addChip(s.pointId));
        sortChildren($("chips"), ".chip");
        sortChildren($("rows"), "tr[data-point]");
      })
      .catch(() => {});
  }
  filter.forEach(addChip);
  loadChips();
  open();
})();
