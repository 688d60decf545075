/* mcpsniff timeline: draws the embedded analysis on a canvas. Capture data is
   untrusted: it only ever reaches the page through textContent, never as HTML. */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("mcpsniff-data").textContent);
  var NS = D.ns, HP = D.hp, END = Math.max(D.end || 0, 0.001);
  var css = getComputedStyle(document.documentElement);
  function v(name) { return css.getPropertyValue(name).trim(); }
  var C = {
    gens: [v("--gen0"), v("--gen1"), v("--gen2"), v("--gen3"), "#3b5bdb", "#087f5b", "#0b7285", "#5c940d"],
    s404: v("--s404"), s409: v("--s409"), s4xx: v("--s4xx"), s5xx: v("--s5xx"), refused: v("--refused"), reset: v("--reset"),
    bad: v("--bad"), fg: "#1f2328", muted: "#656d76", line: "#d0d7de", grid: "#eef1f4", tick: "#1f2328"
  };
  var GUT = 200, AXIS = 42, HEAD = 24, ROW = 16, BAR = 10, PADR = 14, MAXROWS = { post: 3, get: 4 };

  // ---- data preparation -----------------------------------------------------------
  var EX = D.ex.map(function (x) {
    // No end seen: a stream or unanswered request stays open until the capture ends.
    var open = x.o !== "refused" && (x.o === "open-at-end" || x.s == null || (x.st && !x.o));
    var end = x.e != null ? x.e : open ? END : x.r != null ? x.r : x.t;
    var methods = x.m === "GET" ? ["GET stream"] : x.rpc ? x.rpc.split(",") : ["(" + x.m + " without JSON-RPC)"];
    return {
      x: x, t: x.t, end: Math.max(end, x.t), ns: x.n, lane: x.m === "GET" ? "get" : "post", methods: methods,
      refused: x.o === "refused", reset: x.o === "reset", noresp: x.s == null && x.o !== "refused",
      bad: x.s == null || x.s >= 400 || !!x.err, label: x.m === "GET" ? "GET stream" : (x.m + " " + (x.rpc || "")).trim()
    };
  });
  var BYID = Object.create(null);  // keys may come from the capture: no prototype to trip over
  EX.forEach(function (it) { BYID[it.x.i] = it; });
  var UN = (D.un || []).slice().sort(function (a, b) { return a.t - b.t; });

  function genColor(g) { return g > 0 ? C.gens[1 + (g - 1) % (C.gens.length - 1)] : C.gens[0]; }
  function statusColor(it) {
    var s = it.x.s;
    if (s == null) return null;
    if (s === 404) return C.s404;
    if (s >= 500) return C.s5xx;
    if (s === 409) return C.s409;
    if (s >= 400) return C.s4xx;
    return it.x.err ? C.s4xx : null;
  }
  function fmt(t) {
    if (t == null) return "–";
    var span = view.v1 - view.v0;
    return (t < 0 ? "−" : "+") + Math.abs(t).toFixed(span < 0.05 ? 4 : span < 2 ? 3 : 2) + " s";
  }
  function abs(t) { return new Date((D.t0 + t) * 1000).toISOString().replace("T", " ").replace("Z", " UTC"); }
  function dur(a, b) { var d = b - a; return d < 1 ? (d * 1000).toFixed(1) + " ms" : d.toFixed(3) + " s"; }

  // ---- filters and layout --------------------------------------------------------------
  var shownNs = NS.map(function () { return true; });
  var method = "";
  var lanes = [], height = 0, selected = null;

  function matches(it) { return shownNs[it.ns] && (!method || it.methods.indexOf(method) >= 0); }

  function pack(items, max) {
    var rows = [];
    items.forEach(function (it) {
      var best = -1;
      for (var r = 0; r < rows.length; r++) { if (rows[r].last <= it.t) { best = r; break; } }
      if (best < 0 && rows.length < max) { rows.push({ items: [], last: -Infinity, maxDur: 0 }); best = rows.length - 1; }
      if (best < 0) { best = 0; for (r = 1; r < rows.length; r++) if (rows[r].last < rows[best].last) best = r; }
      var row = rows[best];
      it.row = row; row.items.push(it); row.last = Math.max(row.last, it.end); row.maxDur = Math.max(row.maxDur, it.end - it.t);
    });
    return rows;
  }

  function layout() {
    lanes = []; var y = AXIS, shown = 0;
    EX.forEach(function (it) { it.row = null; });
    if (UN.length) { lanes.push({ type: "tcp", y: y, h: HEAD + 4, rows: [] }); y += HEAD + 4; }
    NS.forEach(function (ns, n) {
      if (!shownNs[n]) return;
      var mine = EX.filter(function (it) { return it.ns === n && matches(it); });
      shown += mine.length;
      var lane = { type: "ns", n: n, y: y, rows: [] }, ry = y + HEAD;
      ["post", "get"].forEach(function (kind) {
        var rows = pack(mine.filter(function (it) { return it.lane === kind; }), MAXROWS[kind]);
        if (!rows.length && kind === "post" && !mine.length) rows = [{ items: [], last: 0, maxDur: 0 }];
        rows.forEach(function (row, i) { row.kind = kind; row.first = i === 0; row.y = ry; ry += ROW; lane.rows.push(row); });
      });
      lane.h = ry - y + 8; y += lane.h; lanes.push(lane);
    });
    height = y + 2;
    document.getElementById("count").textContent = "showing " + shown.toLocaleString("en") + " of " + EX.length.toLocaleString("en") + " exchanges";
  }

  // ---- view (zoom and pan) -------------------------------------------------------------
  var view = { v0: -0.01 * END, v1: END * 1.01 };
  var tl = document.getElementById("tl"), canvas = document.getElementById("tl-canvas"), ctx = canvas.getContext("2d");
  var W = 800;
  function X(t) { return GUT + (t - view.v0) / (view.v1 - view.v0) * (W - GUT - PADR); }
  function T(x) { return view.v0 + (x - GUT) / (W - GUT - PADR) * (view.v1 - view.v0); }
  function setView(a, b) {
    var full = END * 1.1 + 1, span = Math.min(Math.max(b - a, 0.0005), full);
    var mid = (a + b) / 2, lo = -0.05 * END - 0.5, hi = END * 1.05 + 0.5;
    a = mid - span / 2; b = mid + span / 2;
    if (a < lo) { b += lo - a; a = lo; }
    if (b > hi) { a -= b - hi; b = hi; }
    view.v0 = a; view.v1 = b; draw();
  }
  function zoom(f, at) {
    var c = at == null ? (view.v0 + view.v1) / 2 : at;
    setView(c - (c - view.v0) * f, c + (view.v1 - c) * f);
  }
  function fit() { setView(-0.01 * END, END * 1.01); }
  function zoomRestart() {
    var r = D.restarts[0];
    if (!r) return fit();
    var back = r.back != null ? r.back : Math.min(END, r.down + 10);
    var pad = Math.max(2, (back - r.down) * 0.6);
    setView(r.down - pad, back + 2.5 * pad);
  }

  // ---- drawing -------------------------------------------------------------------------------
  function niceStep(pxPerSec) {
    var steps = [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600];
    for (var i = 0; i < steps.length; i++) if (steps[i] * pxPerSec >= 90) return steps[i];
    return 7200;
  }
  function lowerBound(items, t) {
    var lo = 0, hi = items.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (items[mid].t < t) lo = mid + 1; else hi = mid; }
    return lo;
  }
  function text(s, x, y, max, color, font, align) {
    ctx.fillStyle = color; ctx.font = font || "12px system-ui, sans-serif"; ctx.textAlign = align || "left";
    if (max != null && ctx.measureText(s).width > max) {
      while (s.length > 1 && ctx.measureText(s + "…").width > max) s = s.slice(0, -1);
      s += "…";
    }
    ctx.fillText(s, x, y);
  }
  function cross(x, y, col) {
    ctx.strokeStyle = col; ctx.lineWidth = 2.2; ctx.beginPath();
    ctx.moveTo(x - 4, y - 4); ctx.lineTo(x + 4, y + 4); ctx.moveTo(x + 4, y - 4); ctx.lineTo(x - 4, y + 4); ctx.stroke();
  }
  function diamond(x, y, col) {
    ctx.fillStyle = col; ctx.beginPath();
    ctx.moveTo(x, y - 5); ctx.lineTo(x + 4, y); ctx.lineTo(x, y + 5); ctx.lineTo(x - 4, y); ctx.closePath(); ctx.fill();
  }

  function drawItem(it, y, state) {
    var x1 = X(it.t), x2 = X(it.end), w = Math.max(2, x2 - x1), yc = y + BAR / 2;
    if (it.refused) { cross(x1, yc, C.refused); return; }
    var col = statusColor(it) || genColor(it.x.g);
    var px = Math.round(x1);
    if (w <= 2 && px === state.px && col === state.col) return;  // same pixel, same look: skip
    state.px = px; state.col = col;
    if (it.noresp) {
      ctx.strokeStyle = "#868e96"; ctx.setLineDash([3, 2]); ctx.lineWidth = 1; ctx.strokeRect(x1 + 0.5, y + 0.5, w, BAR - 1); ctx.setLineDash([]);
      ctx.fillStyle = "#868e96"; ctx.fillRect(x1, y, 2, BAR);
    } else {
      ctx.fillStyle = col; ctx.fillRect(x1, y, w, BAR);
    }
    if (it.bad) { ctx.fillStyle = genColor(it.x.g); ctx.fillRect(x1, y + BAR + 1, w, 2); }
    if (it.x.ev && w > 6) {
      ctx.fillStyle = C.tick;
      for (var i = 0; i < it.x.ev.length; i++) {
        var tx = X(it.x.ev[i][0]);
        if (tx >= x1 - 1 && tx <= x1 + w + 1) ctx.fillRect(Math.round(tx) - 0.75, y - 2, 1.5, BAR + 4);
      }
    }
    if (it.reset) diamond(x1 + w, yc, C.reset);
    if (w > 70) {
      var lbl = it.x.m === "GET" ? "GET stream" : (it.x.rpc || it.x.m);
      text(lbl + (it.x.s != null ? " " + it.x.s : ""), x1 + 4, y + BAR - 1, w - 8, "#fff", "10px system-ui, sans-serif");
    }
  }

  function draw() {
    W = Math.max(tl.clientWidth, 400);
    var dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(W * dpr); canvas.height = Math.round(height * dpr);
    canvas.style.width = W + "px"; canvas.style.height = height + "px";
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, height);
    ctx.textBaseline = "alphabetic";
    // lane backgrounds
    lanes.forEach(function (lane, i) {
      var stalled = lane.type === "ns" && NS[lane.n].verdict === "stalled";
      ctx.fillStyle = stalled ? "#fff5f5" : i % 2 ? "#fbfcfd" : "#fff";
      ctx.fillRect(0, lane.y, W, lane.h);
      ctx.fillStyle = C.line; ctx.fillRect(0, lane.y + lane.h - 1, W, 1);
    });
    // grid and axis
    var step = niceStep((W - GUT - PADR) / (view.v1 - view.v0));
    ctx.save(); ctx.beginPath(); ctx.rect(GUT, 0, W - GUT, height); ctx.clip();
    for (var g = Math.ceil(view.v0 / step) * step; g <= view.v1; g += step) {
      var gx = Math.round(X(g)) + 0.5;
      ctx.fillStyle = C.grid; ctx.fillRect(gx, AXIS, 1, height - AXIS);
      ctx.fillStyle = C.line; ctx.fillRect(gx, AXIS - 6, 1, 6);
      var digits = step < 0.001 ? 4 : step < 0.01 ? 3 : step < 0.1 ? 2 : step < 1 ? 1 : 0;
      text((g < -step / 2 ? "−" : "+") + Math.abs(Math.abs(g) < step / 2 ? 0 : g).toFixed(digits) + " s", gx, AXIS - 9, null, C.muted, "11px system-ui, sans-serif", "center");
    }
    // restart bands across every lane
    D.restarts.forEach(function (r) {
      var x1 = X(r.down), x2 = X(r.back != null ? r.back : END);
      ctx.fillStyle = "rgba(224,49,49,0.09)"; ctx.fillRect(x1, AXIS, x2 - x1, height - AXIS);
      ctx.fillStyle = "rgba(224,49,49,0.55)"; ctx.fillRect(x1, AXIS, 1.5, height - AXIS);
      ctx.fillStyle = "rgba(26,127,55,0.8)"; if (r.back != null) ctx.fillRect(x2 - 1, AXIS, 2, height - AXIS);
      ctx.fillStyle = "rgba(224,49,49,0.85)"; ctx.fillRect(x1, AXIS - 4, Math.max(x2 - x1, 2), 4);
      var lbl = r.back != null ? "server down " + (r.back - r.down).toFixed(2) + " s" : "server down (not back)";
      text(lbl, Math.max(x1, GUT) + 4, 13, Math.max(x2 - Math.max(x1, GUT) - 8, 70), C.bad, "600 11px system-ui, sans-serif");
    });
    ctx.fillStyle = C.line; ctx.fillRect(GUT, AXIS - 1, W - GUT, 1);
    // lanes
    lanes.forEach(function (lane) {
      if (lane.type === "tcp") {
        var px = -1;
        for (var i = lowerBound(UN, view.v0 - 0.001); i < UN.length && UN[i].t <= view.v1; i++) {
          var ux = X(UN[i].t); if (Math.round(ux) === px) continue; px = Math.round(ux);
          if (UN[i].ev === "refused") cross(ux, lane.y + lane.h / 2, C.refused); else diamond(ux, lane.y + lane.h / 2, C.reset);
        }
        return;
      }
      NS[lane.n].gens.forEach(function (gen) {
        var a = X(gen.t), b = X(gen.tl != null ? gen.tl : END), col = genColor(gen.i);
        ctx.fillStyle = col; ctx.globalAlpha = 0.22; ctx.fillRect(a, lane.y + 5, Math.max(b - a, 2), 14); ctx.globalAlpha = 1;
        ctx.fillRect(a, lane.y + 5, 2, 14);
        var vis = Math.max(a, GUT) + 5;
        if (b - vis > 60) text("session " + gen.i + (gen.sid ? " · " + gen.sid.slice(0, 8) : "") + (gen.tools != null ? " · " + gen.tools + " tools" : ""), vis, lane.y + 16, b - vis - 4, col, "600 11px system-ui, sans-serif");
      });
      lane.rows.forEach(function (row) {
        var items = row.items, state = { px: -1, col: "" };
        for (var i = lowerBound(items, view.v0 - row.maxDur - 1e-9); i < items.length && items[i].t <= view.v1; i++) {
          if (items[i].end >= view.v0) drawItem(items[i], row.y + 3, state);
        }
      });
    });
    if (selected) {
      var row = selected.row;
      if (row) {
        var sx = X(selected.t), sw = Math.max(X(selected.end) - sx, 2);
        ctx.strokeStyle = C.fg; ctx.lineWidth = 2; ctx.strokeRect(sx - 3, row.y, sw + 6, ROW);
      }
    }
    ctx.restore();
    // gutter labels (drawn last, over the plot)
    ctx.fillStyle = "#f6f8fa"; ctx.fillRect(0, 0, GUT, height); ctx.fillStyle = C.line; ctx.fillRect(GUT - 1, 0, 1, height);
    text("time since capture start", 10, AXIS - 9, GUT - 16, C.muted, "11px system-ui, sans-serif");
    lanes.forEach(function (lane) {
      if (lane.type === "tcp") { text("TCP, no request", 10, lane.y + 17, GUT - 20, C.muted, "600 12px system-ui, sans-serif"); return; }
      var ns = NS[lane.n];
      text(ns.name, 10, lane.y + 16, GUT - 20, C.fg, "600 13px system-ui, sans-serif");
      lane.rows.forEach(function (row) {
        if (row.first) text(row.kind === "post" ? "POST" : "GET (SSE)", GUT - 10, row.y + 12, GUT - 20, C.muted, "11px system-ui, sans-serif", "right");
      });
      var vc = ns.verdict === "stalled" ? C.bad : ns.verdict === "rebound" ? "#1a7f37" : C.muted;
      text(ns.verdict, 10, lane.y + 32, GUT - 70, vc, "600 11px system-ui, sans-serif");
    });
    placeMarkers();
    document.getElementById("range").textContent = fmt(view.v0) + " … " + fmt(view.v1) + " (" + dur(view.v0, view.v1) + " shown)";
  }

  // ---- stall markers (DOM, so they stay crisp and clickable) ---------------------
  var overlay = document.getElementById("tl-overlay"), markers = [];
  NS.forEach(function (ns, n) {
    if (!ns.stall) return;
    var m = document.createElement("div");
    m.className = "stall-marker"; m.setAttribute("data-ns", String(n));
    var flag = document.createElement("span");
    flag.className = "flag"; flag.textContent = "⚑ stall: " + (ns.sig || "stalled");
    flag.title = ns.stall.desc + (ns.expl ? "\n\n" + ns.expl : "");
    flag.addEventListener("click", function (e) { e.stopPropagation(); selectStall(n, false); });
    m.appendChild(flag); overlay.appendChild(m); markers.push({ n: n, el: m });
  });
  function placeMarkers() {
    markers.forEach(function (mk) {
      var lane = lanes.filter(function (l) { return l.type === "ns" && l.n === mk.n; })[0];
      var x = X(NS[mk.n].stall.t);
      var off = !lane || x < GUT || x > W - PADR + 1;
      mk.el.classList.toggle("offscreen", off);
      if (off) return;
      mk.el.style.left = (x - 1.5) + "px"; mk.el.style.top = lane.y + "px"; mk.el.style.height = (lane.h - 1) + "px";
    });
  }

  // ---- hit testing ---------------------------------------------------------------------------
  function hit(px, py) {
    if (px < GUT) return null;
    for (var i = 0; i < lanes.length; i++) {
      var lane = lanes[i];
      if (py < lane.y || py >= lane.y + lane.h) continue;
      if (lane.type === "tcp") {
        var best = null, bd = 7;
        UN.forEach(function (u) { var d = Math.abs(X(u.t) - px); if (d < bd) { bd = d; best = u; } });
        return best && { un: best };
      }
      for (var j = 0; j < lane.rows.length; j++) {
        var row = lane.rows[j];
        if (py < row.y || py >= row.y + ROW) continue;
        var t1 = T(px + 6), found = null, fd = Infinity;
        for (var k = lowerBound(row.items, T(px - 6) - row.maxDur); k < row.items.length && row.items[k].t <= t1; k++) {
          var it = row.items[k], x1 = X(it.t), x2 = Math.max(X(it.end), x1 + 2);
          if (px < x1 - 6 || px > x2 + 6) continue;
          var d = px >= x1 && px <= x2 ? 0 : Math.min(Math.abs(px - x1), Math.abs(px - x2));
          if (d < fd || (d === fd && it.t > found.t)) { fd = d; found = it; }
        }
        if (!found) return null;
        var tick = -1, near = 4;  // an SSE tick within 4 px wins over the bar
        (found.x.ev || []).forEach(function (ev, e) { var td = Math.abs(X(ev[0]) - px); if (td < near) { near = td; tick = e; } });
        return { it: found, tick: tick };
      }
      return null;
    }
    return null;
  }

  // ---- details panel --------------------------------------------------------------------------
  var details = document.getElementById("details");
  function el(tag, cls, txt) { var e = document.createElement(tag); if (cls) e.className = cls; if (txt != null) e.textContent = String(txt); return e; }
  function pretty(s) {
    if (!s) return "";
    var c = s.trim().charAt(0);
    if (c === "{" || c === "[") { try { return JSON.stringify(JSON.parse(s), null, 2); } catch (e) { /* not JSON */ } }
    return s;
  }
  function dl(pairs) {
    var d = el("dl");
    pairs.forEach(function (p) { if (p[1] == null || p[1] === "") return; d.appendChild(el("dt", null, p[0])); d.appendChild(el("dd", null, p[1])); });
    return d;
  }
  function headersTable(idx) {
    var tb = el("table");
    (idx || []).forEach(function (i) { var tr = el("tr"); tr.appendChild(el("td", null, HP[i][0])); tr.appendChild(el("td", null, HP[i][1])); tb.appendChild(tr); });
    if (!idx || !idx.length) { var tr = el("tr"); tr.appendChild(el("td", "muted", "(none)")); tb.appendChild(tr); }
    return tb;
  }
  function conn(c) { var a = D.conns[c]; return a ? c + "  " + a[0] + " → " + a[1] : c; }
  function stallOf(xid) { for (var n = 0; n < NS.length; n++) if (NS[n].stall && NS[n].stall.xid === xid) return n; return -1; }
  function stallOfConn(c) { for (var n = 0; n < NS.length; n++) if (NS[n].stall && NS[n].stall.xid == null && NS[n].stall.c === c) return n; return -1; }
  function stallBox(sn) {
    var box = el("div", "stall-card");
    box.appendChild(el("p", null, "⚑ Stall point of " + NS[sn].name + ": " + (NS[sn].sig || "stalled")));
    if (NS[sn].stall.how) box.appendChild(el("p", "muted", "Tied to " + NS[sn].name + " by " + NS[sn].stall.how));
    if (NS[sn].expl) box.appendChild(el("p", "explanation", NS[sn].expl));
    if (NS[sn].advice) box.appendChild(el("p", "advice", "Fix: " + NS[sn].advice));
    return box;
  }

  function showExchange(it, tickIdx) {
    var x = it.x;
    details.replaceChildren();
    var st = x.s != null ? String(x.s) : x.o === "refused" ? "refused" : "no response";
    var h = el("h3", null, NS[x.n].name + ": " + it.label + " → ");
    h.appendChild(el("span", it.bad ? "status-bad" : "status-ok", st + (x.err ? " " + x.err : "")));
    details.appendChild(h);
    var sn = stallOf(x.i);
    if (sn >= 0) details.appendChild(stallBox(sn));
    var gen = NS[x.n].gens.filter(function (g) { return g.i === x.g; })[0];
    details.appendChild(dl([
      ["exchange", x.i + (x.f != null ? "  (frame #" + x.f + ")" : "")],
      ["request", fmt(x.t) + "   " + abs(x.t)], ["target", x.m + " " + x.u],
      ["response", x.r != null ? fmt(x.r) + "  after " + dur(x.t, x.r) : null],
      ["ended", x.e != null ? fmt(x.e) + "  " + (x.o || "") : x.o],
      ["connection", conn(x.c)], ["session", x.sid], ["new session", x.nsid],
      ["generation", x.g ? (gen && gen.k === "instance" ? "client instance " : "session ") + x.g + (gen && gen.sid ? " (" + gen.sid + ")" : "") : "before any known session"],
      ["protocol", x.pv], ["Mcp-Method", x.mm], ["Mcp-Name", x.mn],
      ["JSON-RPC ids", x.ids ? x.ids.join(", ") : null], ["tools listed", x.tc], ["error", x.ed]
    ]));
    var cols = el("div", "cols"), q = el("div"), r = el("div");
    q.appendChild(el("h4", null, "Request headers")); q.appendChild(headersTable(x.qh));
    if (x.qb) { q.appendChild(el("h4", null, "Request body")); q.appendChild(el("pre", null, pretty(x.qb))); }
    r.appendChild(el("h4", null, "Response headers")); r.appendChild(headersTable(x.rh));
    if (x.rb) { r.appendChild(el("h4", null, "Response body")); r.appendChild(el("pre", null, pretty(x.rb))); }
    cols.appendChild(q); cols.appendChild(r); details.appendChild(cols);
    if (x.ev && x.ev.length) {
      details.appendChild(el("h4", null, "SSE events (" + x.ev.length + ")"));
      var tb = el("table", "sse"), hl = null;
      x.ev.forEach(function (ev, i) {
        var tr = el("tr");
        var meta = [fmt(ev[0]), ev[4] ? "event: " + ev[4] : "", ev[3] != null ? "id: " + ev[3] : "", ev[5] != null ? "retry: " + ev[5] : "", ev[1]].filter(Boolean).join("  ");
        tr.appendChild(el("td", null, meta));
        var td = el("td"); td.appendChild(el("pre", null, ev[2] ? pretty(ev[2]) : "(empty data)")); tr.appendChild(td);
        if (i === tickIdx) { tr.className = "hl"; hl = tr; }
        tb.appendChild(tr);
      });
      details.appendChild(tb);
      if (hl) hl.scrollIntoView({ block: "nearest" });
    }
  }
  function showConn(u) {
    details.replaceChildren();
    details.appendChild(el("h3", null, "TCP connection " + u.ev + " (no HTTP request)"));
    var sn = stallOfConn(u.c);
    if (sn >= 0) details.appendChild(stallBox(sn));
    details.appendChild(dl([["time", fmt(u.t) + "   " + abs(u.t)], ["connection", u.c], ["client", u.client], ["server", u.server], ["frame", u.f != null ? "#" + u.f : null]]));
  }
  function select(h) {
    if (!h) return;
    if (h.un) { selected = null; showConn(h.un); }
    else { selected = h.it; showExchange(h.it, h.tick); }
    details.setAttribute("data-selected", h.un ? "conn:" + h.un.c : h.it.x.i);
    draw();
  }
  function selectStall(n, scroll) {
    var s = NS[n].stall, pad = 6;
    var r = D.restarts[0];
    var a = r && r.down < s.t ? Math.max(r.down - 2, s.t - 25) : s.t - pad;
    setView(a, s.t + Math.max(pad, (s.t - a) * 0.6));
    var it = s.xid != null ? BYID[s.xid] : null;
    if (it) select({ it: it, tick: -1 });
    else {
      var u = (D.un || []).filter(function (c) { return c.c === s.c; })[0];
      if (u) select({ un: u });
    }
    if (scroll) document.getElementById("timeline").scrollIntoView({ block: "start" });
  }

  // ---- controls ------------------------------------------------------------------------------
  var nsBox = document.getElementById("ns-filter");
  NS.forEach(function (ns, n) {
    var lab = el("label", ns.verdict === "stalled" ? "stalled" : null), cb = el("input");
    cb.type = "checkbox"; cb.checked = true; cb.setAttribute("data-ns", String(n));
    cb.addEventListener("change", function () { shownNs[n] = cb.checked; layout(); draw(); });
    lab.appendChild(cb); lab.appendChild(document.createTextNode(ns.name)); lab.title = ns.name + ": " + ns.verdict;
    nsBox.appendChild(lab);
  });
  var counts = Object.create(null);
  EX.forEach(function (it) { it.methods.forEach(function (m) { counts[m] = (counts[m] || 0) + 1; }); });
  var sel = document.getElementById("method-filter");
  Object.keys(counts).sort().forEach(function (m) { var o = el("option", null, m + " (" + counts[m] + ")"); o.value = m; sel.appendChild(o); });
  sel.addEventListener("change", function () { method = sel.value; layout(); draw(); });
  document.getElementById("zoom-in").addEventListener("click", function () { zoom(0.5); });
  document.getElementById("zoom-out").addEventListener("click", function () { zoom(2); });
  document.getElementById("zoom-fit").addEventListener("click", fit);
  document.getElementById("zoom-restart").addEventListener("click", zoomRestart);
  Array.prototype.forEach.call(document.querySelectorAll("a.stall-link"), function (a) {
    a.addEventListener("click", function (e) { e.preventDefault(); selectStall(Number(a.getAttribute("data-stall")), true); });
  });

  tl.addEventListener("wheel", function (e) {
    e.preventDefault();
    var rect = canvas.getBoundingClientRect(), px = e.clientX - rect.left;
    if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
      var dt = (e.deltaX || e.deltaY) / (W - GUT) * (view.v1 - view.v0);
      setView(view.v0 + dt, view.v1 + dt);
    } else {
      zoom(Math.exp(e.deltaY * 0.0015), px > GUT ? T(px) : null);
    }
  }, { passive: false });
  var drag = null;
  tl.addEventListener("pointerdown", function (e) {
    if (e.button !== 0 || e.target.closest(".flag")) return;
    drag = { x: e.clientX, v0: view.v0, v1: view.v1, moved: false };
    tl.setPointerCapture(e.pointerId);
  });
  tl.addEventListener("pointermove", function (e) {
    var rect = canvas.getBoundingClientRect();
    if (drag) {
      if (Math.abs(e.clientX - drag.x) > 3) { drag.moved = true; tl.classList.add("dragging"); }
      if (drag.moved) { var dt = (drag.x - e.clientX) / (W - GUT - PADR) * (drag.v1 - drag.v0); setView(drag.v0 + dt, drag.v1 + dt); }
      return;
    }
    tooltip(hit(e.clientX - rect.left, e.clientY - rect.top), e.clientX - rect.left, e.clientY - rect.top);
  });
  tl.addEventListener("pointerup", function (e) {
    var rect = canvas.getBoundingClientRect();
    if (drag && !drag.moved) select(hit(e.clientX - rect.left, e.clientY - rect.top));
    drag = null; tl.classList.remove("dragging");
  });
  tl.addEventListener("pointerleave", function () { tooltip(null); });
  tl.addEventListener("keydown", function (e) {
    var span = view.v1 - view.v0, k = e.key;
    if (k === "+" || k === "=") zoom(0.5); else if (k === "-") zoom(2); else if (k === "0") fit();
    else if (k === "ArrowLeft") setView(view.v0 - span * 0.1, view.v1 - span * 0.1);
    else if (k === "ArrowRight") setView(view.v0 + span * 0.1, view.v1 + span * 0.1);
    else return;
    e.preventDefault();
  });
  var tip = document.getElementById("tooltip");
  function tooltip(h, px, py) {
    if (!h) { tip.hidden = true; return; }
    if (h.un) tip.textContent = "TCP " + h.un.ev + "  " + fmt(h.un.t) + "\n" + h.un.client + " → " + h.un.server;
    else {
      var x = h.it.x;
      tip.textContent = NS[x.n].name + ": " + h.it.label + " → " + (x.s != null ? x.s : x.o || "no response") + (x.err ? " " + x.err : "") +
        "\n" + fmt(x.t) + (x.e != null ? ", " + dur(x.t, x.e) : "") + (x.sid ? "\nsession " + x.sid : "") +
        (h.tick >= 0 ? "\nSSE: " + (x.ev[h.tick][1] || x.ev[h.tick][4] || "event") : x.ev ? "\n" + x.ev.length + " SSE event(s)" : "");
    }
    tip.hidden = false;
    tip.style.left = Math.min(px + 14, W - 300) + "px"; tip.style.top = (py + 16) + "px";
  }
  if (window.ResizeObserver) new ResizeObserver(function () { if (tl.clientWidth !== W) draw(); }).observe(tl);

  // A small handle for automated checks (tests, benchmark); it exposes nothing from the capture that the page does not show.
  window.mcpsniffReport = {
    view: function () { return [view.v0, view.v1]; },
    setView: setView,
    point: function (xid, tick) {
      var it = BYID[xid], row = it && it.row, rect = canvas.getBoundingClientRect();
      if (!row) return null;
      var x = tick != null ? X(it.x.ev[tick][0]) : (Math.max(X(it.t), GUT) + Math.min(X(it.end), W - PADR)) / 2;
      return { x: rect.left + x, y: rect.top + row.y + 3 + BAR / 2 };
    }
  };
  layout(); draw();
  if (window.performance && performance.mark) performance.mark("mcpsniff-ready");
  document.documentElement.setAttribute("data-ready", "1");
})();
