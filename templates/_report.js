/* mcpsniff report viewer: a timeline on a canvas and a virtualised request table over the
   embedded analysis, with filters, deep links, keyboard navigation and a sibling view.
   The same script draws the two timelines of `mcpsniff diff --html`: each `.tl[data-src]`
   pane is one Timeline over one analysis, and every timeline on a page shares one time axis
   (the clock), each at its own offset (its restart, when the pane asks to be aligned), so
   zoom and pan move them together; the details drawer is shared too.
   Capture data is untrusted: it only ever reaches the page through textContent, never as
   HTML, and object keys that come from the capture live in prototype-less maps. */
(function () {
  "use strict";
  var root = document.documentElement;

  // ---- theme: first, so the page does not flash before the data is parsed ---------------------
  var THEME_KEY = "mcpsniff-theme";
  var darkQuery = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  function storedTheme() { try { return window.localStorage.getItem(THEME_KEY); } catch (e) { return null; } }
  var theme = storedTheme() || (darkQuery && darkQuery.matches ? "dark" : "light");
  root.setAttribute("data-theme", theme);

  var C = {};
  function palette() {
    var css = getComputedStyle(root);
    function v(name) { return css.getPropertyValue(name).trim(); }
    C = {
      gens: [v("--gen0"), v("--gen1"), v("--gen2"), v("--gen3"), v("--gen4"), v("--gen5"), v("--gen6"), v("--gen7")],
      s404: v("--s404"), s409: v("--s409"), s4xx: v("--s4xx"), s5xx: v("--s5xx"), refused: v("--refused"), reset: v("--reset"), nores: v("--nores"),
      bad: v("--bad"), ok: v("--ok"), fg: v("--fg"), muted: v("--muted"), line: v("--line"), grid: v("--tl-grid"), tick: v("--tick"),
      bg: v("--tl-bg"), alt: v("--tl-alt"), stalled: v("--tl-stalled"), gutter: v("--tl-gutter"), barText: v("--bar-text"),
      down: v("--down"), downEdge: v("--down-edge"), downTop: v("--down-top"), back: v("--back"), focus: v("--focus")
    };
  }
  palette();
  var GUT = 200, AXIS = 42, HEAD = 24, ROW = 16, BAR = 10, PADR = 14, MAXROWS = { post: 3, get: 4 };

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
  function dur(a, b) { var d = b - a; return d < 1 ? (d * 1000).toFixed(1) + " ms" : d.toFixed(3) + " s"; }

  // ---- the clock: one time axis for every timeline on the page --------------------------------
  // Its times are aligned: a timeline's own time (from its capture's start) minus its offset.
  var panels = [], clock = { v0: 0, v1: 1 };
  function extent() {
    var a = Infinity, b = -Infinity;
    panels.forEach(function (p) { a = Math.min(a, -p.off); b = Math.max(b, p.end - p.off); });
    return a <= b ? [a, b] : [0, 0.001];
  }
  function fitSpan() { var e = extent(), l = e[1] - e[0]; return [e[0] - 0.01 * l, e[1] + 0.01 * l]; }
  function clockSet(a, b) {
    var e = extent(), l = e[1] - e[0], full = l * 1.1 + 1, span = Math.min(Math.max(b - a, 0.0005), full);
    var mid = (a + b) / 2, lo = e[0] - 0.05 * l - 0.5, hi = e[1] + 0.05 * l + 0.5;
    a = mid - span / 2; b = mid + span / 2;
    if (a < lo) { b += lo - a; a = lo; }
    if (b > hi) { a -= b - hi; b = hi; }
    clock.v0 = a; clock.v1 = b;
    panels.forEach(function (p) { p.viewChanged(); });
  }
  function clockZoom(f, at) {
    var c = at == null ? (clock.v0 + clock.v1) / 2 : at;
    clockSet(c - (c - clock.v0) * f, c + (clock.v1 - c) * f);
  }
  function clockFit() { var f = fitSpan(); clockSet(f[0], f[1]); }
  function clockRestart() {  // every downtime framed, a little margin on each side
    var a = Infinity, b = -Infinity;
    panels.forEach(function (p) { var s = p.restartSpan(); if (s) { a = Math.min(a, s[0]); b = Math.max(b, s[1]); } });
    if (a > b) return clockFit();
    var m = Math.max((b - a) * 0.12, 0.2);
    clockSet(a - m, b + m);
  }

  // ---- the details drawer (one per page, shown for the timeline that selected something) --------
  var details = document.getElementById("details"), drawerOwner = null, returnFocus = null;
  function drawerOpen() { return document.body.classList.contains("drawer-open"); }
  function openDrawer(owner) {
    if (drawerOwner && drawerOwner !== owner) drawerOwner.unselect();
    drawerOwner = owner;
    if (!drawerOpen()) {
      var a = document.activeElement;
      returnFocus = a && a !== document.body && !details.contains(a) ? a : null;
      document.body.classList.add("drawer-open");
    }
  }
  function closeDrawer() {
    if (!drawerOpen()) return false;
    document.body.classList.remove("drawer-open");
    details.removeAttribute("data-selected"); details.removeAttribute("data-panel");
    var owner = drawerOwner;
    drawerOwner = null;
    if (owner) owner.unselect();
    if (returnFocus && document.contains(returnFocus)) returnFocus.focus();
    returnFocus = null;
    return true;
  }
  function drawerHead(title) {
    details.replaceChildren();
    var close = el("button", "close", "✕ Close");
    close.type = "button"; close.title = "Close the details (Esc)"; close.id = "details-close";
    close.addEventListener("click", closeDrawer);
    details.appendChild(close);
    details.appendChild(title);
  }

  // ---- one timeline over one embedded analysis ---------------------------------------------------
  // pane: its .tl element; data-src / data-bodies name its JSON blocks, data-prefix the prefix of
  // its element ids, data-align puts its t = 0 at its first restart, data-label names it in the
  // details, data-viewer gives it the report's filters, request table, deep links and sibling view.
  function Timeline(pane) {
    var PREFIX = pane.getAttribute("data-prefix") || "", LABEL = pane.getAttribute("data-label") || "", VIEWER = pane.hasAttribute("data-viewer");
    function $(id) { return document.getElementById(PREFIX + id); }
    var self = {};
    var D = JSON.parse(document.getElementById(pane.getAttribute("data-src")).textContent);
    var NS = D.ns, HP = D.hp, HS = D.hs || [], SX = D.sx || [], END = Math.max(D.end || 0, 0.001);
    var ALIGN = pane.hasAttribute("data-align") && D.restarts.length > 0, OFF = ALIGN ? D.restarts[0].down : 0;
    // Bodies and SSE data sit apart, one JSON string per line, parsed when shown or searched.
    var bodyText = document.getElementById(pane.getAttribute("data-bodies")), bodyLines = null, bodyDone = [];
    function body(i) {
      if (i == null) return "";
      if (bodyDone[i] === undefined) {
        if (!bodyLines) { var s = bodyText.textContent; bodyLines = s.length > 2 ? s.slice(1, -1).split(",\n") : []; }
        var v = ""; try { v = JSON.parse(bodyLines[i]); } catch (e) { v = ""; }
        bodyDone[i] = typeof v === "string" ? v : "";
      }
      return bodyDone[i];
    }
    var STR_FIELDS = ["m", "rpc", "o", "c", "u", "err", "ed", "sid", "nsid", "pv", "mm", "mn"];

    // ---- data preparation -----------------------------------------------------------------
    var EX = D.ex.map(function (x, idx) {
      for (var f = 0; f < STR_FIELDS.length; f++) { var k = STR_FIELDS[f]; if (x[k] != null) x[k] = SX[x[k]]; }
      if (x.ev) for (var e = 0; e < x.ev.length; e++) { x.ev[e][1] = SX[x.ev[e][1]]; x.ev[e][4] = SX[x.ev[e][4]]; }
      // No end seen: a stream or unanswered request stays open until the capture ends.
      var open = x.o !== "refused" && (x.o === "open-at-end" || x.s == null || (x.st && !x.o));
      var end = x.e != null ? x.e : open ? END : x.r != null ? x.r : x.t;
      var methods = x.m === "GET" ? ["GET stream"] : x.rpc ? x.rpc.split(",") : ["(" + x.m + " without JSON-RPC)"];
      return {
        x: x, idx: idx, t: x.t, end: Math.max(end, x.t), open: open && x.e == null, ns: x.n, lane: x.m === "GET" ? "get" : "post", methods: methods,
        refused: x.o === "refused", reset: x.o === "reset", noresp: x.s == null && x.o !== "refused",
        bad: x.s == null || x.s >= 400 || !!x.err, label: x.m === "GET" ? "GET stream" : (x.m + " " + (x.rpc || "")).trim(),
        cls: x.s == null ? "none" : Math.floor(x.s / 100) + "xx", hay: null
      };
    });
    var BYID = Object.create(null);  // keys come from the capture: no prototype to trip over
    EX.forEach(function (it) { BYID[it.x.i] = it; });
    var UN = (D.un || []).slice().sort(function (a, b) { return a.t - b.t; });
    var STALL_XID = Object.create(null);
    NS.forEach(function (ns, n) { if (ns.stall && ns.stall.xid != null) STALL_XID[ns.stall.xid] = n; });
    function headers(i) { return i == null ? [] : typeof i === "number" ? (HS[i] || []) : i; }

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
    function fmt(t) {  // on the shared axis: from this capture's start, or from its restart when aligned
      if (t == null) return "–";
      var span = view.v1 - view.v0;
      t -= OFF;
      return (t < 0 ? "−" : "+") + Math.abs(t).toFixed(span < 0.05 ? 4 : span < 2 ? 3 : 2) + " s";
    }
    function abs(t) { return new Date((D.t0 + t) * 1000).toISOString().replace("T", " ").replace("Z", " UTC"); }
    function genOf(it) { return NS[it.ns].gens.filter(function (g) { return g.i === it.x.g; })[0]; }
    function sessionLabel(it) {
      if (!it.x.g) return it.x.sid ? it.x.sid.slice(0, 8) : "–";
      var gen = genOf(it), kind = gen && gen.k === "instance" ? "instance " : "session ";
      var sid = it.x.sid || (gen && gen.sid) || "";
      return kind + it.x.g + (sid ? " · " + sid.slice(0, 8) : "");
    }
    function rpcLabel(it) {
      var x = it.x, s = x.m === "GET" ? "GET stream" : x.rpc || "–";
      if (x.mm && x.mm !== x.rpc) s += " [" + x.mm + "]";
      if (x.mn) s += " · " + x.mn;
      return s;
    }
    function statusText(it) { return it.x.s != null ? String(it.x.s) : it.refused ? "refused" : "–"; }
    function durationOf(it) { return it.open ? null : it.end - it.t; }
    function outcomeText(it) { return [it.x.o || "", it.x.err || ""].filter(Boolean).join(" · ") || "–"; }

    // ---- filters ------------------------------------------------------------------------------
    var F = { ns: NS.map(function () { return true; }), method: "", status: "", errors: false, text: "", range: true };
    var sib = null;  // sibling view: { n: stalled namespace, m: the sibling shown beside it }
    var FILT = [], byNs = [];

    function haystack(it) {
      if (it.hay == null) {
        var x = it.x, parts = [NS[x.n].name, x.i, x.m, x.u, x.rpc, x.mm, x.mn, x.pv, x.sid, x.nsid, x.s, x.o, x.err, x.ed, body(x.qb), body(x.rb)];
        (x.ev || []).forEach(function (ev) { parts.push(ev[1], body(ev[2]), ev[4]); });
        it.hay = parts.filter(function (p) { return p != null && p !== ""; }).join("\n").toLowerCase();
      }
      return it.hay;
    }
    function nsShown(n) { return sib ? n === sib.n || n === sib.m : F.ns[n]; }
    function passes(it) {
      if (!nsShown(it.ns)) return false;
      if (F.method && it.methods.indexOf(F.method) < 0) return false;
      if (F.status && it.cls !== F.status) return false;
      if (F.errors && !it.bad) return false;
      if (F.text && haystack(it).indexOf(F.text) < 0) return false;
      return true;
    }
    function refilter() {
      FILT = []; byNs = NS.map(function () { return []; });
      for (var i = 0; i < EX.length; i++) { var it = EX[i]; if (passes(it)) { FILT.push(it); byNs[it.ns].push(it); } }
      if (cursor && !passes(cursor)) cursor = null;
      layout(); draw(); tableRefresh(true); writeHash();
    }

    // ---- layout ---------------------------------------------------------------------------------
    var lanes = [], height = 0, selected = null, selConn = null, cursor = null;
    function laneOrder() {
      if (sib) return [sib.n, sib.m];
      return NS.map(function (ns, n) { return n; });
    }
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
      if (UN.length && !sib) { lanes.push({ type: "tcp", y: y, h: HEAD + 4, rows: [] }); y += HEAD + 4; }
      laneOrder().forEach(function (n) {
        if (!nsShown(n)) return;
        var mine = byNs[n] || [];
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
      var count = $("count");
      if (count) count.textContent = "showing " + shown.toLocaleString("en") + " of " + EX.length.toLocaleString("en") + " exchanges";
    }
    function laneOf(n) { for (var i = 0; i < lanes.length; i++) if (lanes[i].type === "ns" && lanes[i].n === n) return lanes[i]; return null; }

    // ---- view (zoom and pan): this timeline's own times, the clock's plus its offset ------------------
    var view = { v0: -0.01 * END, v1: END * 1.01 };
    var tl = pane, canvas = $("tl-canvas"), ctx = canvas.getContext("2d");
    var W = 800;
    function X(t) { return GUT + (t - view.v0) / (view.v1 - view.v0) * (W - GUT - PADR); }
    function T(x) { return view.v0 + (x - GUT) / (W - GUT - PADR) * (view.v1 - view.v0); }
    function sync() { view.v0 = clock.v0 + OFF; view.v1 = clock.v1 + OFF; }
    function setView(a, b) { clockSet(a - OFF, b - OFF); }
    function zoom(f, at) { clockZoom(f, at == null ? null : at - OFF); }
    var fit = clockFit;
    function restartSpan() {  // its first downtime on the shared axis
      var r = D.restarts[0];
      if (!r) return null;
      var back = r.back != null ? r.back : Math.min(END, r.down + 10);
      return [r.down - OFF, back - OFF];
    }
    function reveal(it) {
      if (it.t >= view.v0 && it.t <= view.v1) return;
      var span = view.v1 - view.v0, d = Math.max(it.end - it.t, 0);
      if (d < span * 0.8) setView(it.t - span * 0.3, it.t - span * 0.3 + span); else setView(it.t - span * 0.1, it.t + span * 0.9);
    }

    // ---- drawing -------------------------------------------------------------------------------------
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
        ctx.strokeStyle = C.nores; ctx.setLineDash([3, 2]); ctx.lineWidth = 1; ctx.strokeRect(x1 + 0.5, y + 0.5, w, BAR - 1); ctx.setLineDash([]);
        ctx.fillStyle = C.nores; ctx.fillRect(x1, y, 2, BAR);
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
        text(lbl + (it.x.s != null ? " " + it.x.s : ""), x1 + 4, y + BAR - 1, w - 8, C.barText, "10px system-ui, sans-serif");
      }
    }
    function outline(it, dashed) {
      if (!it || !it.row) return;
      var sx = X(it.t), sw = Math.max(X(it.end) - sx, 2);
      ctx.strokeStyle = dashed ? C.focus : C.fg; ctx.lineWidth = 2;
      if (dashed) ctx.setLineDash([4, 3]);
      ctx.strokeRect(sx - (dashed ? 5 : 3), it.row.y - (dashed ? 1 : 0), sw + (dashed ? 10 : 6), ROW + (dashed ? 2 : 0));
      ctx.setLineDash([]);
    }

    function draw() {
      W = Math.max(tl.clientWidth, 400);
      var dpr = window.devicePixelRatio || 1;
      var cw = Math.round(W * dpr), ch = Math.round(height * dpr);
      if (canvas.width !== cw || canvas.height !== ch) {  // resizing reallocates the bitmap: only when the size changed
        canvas.width = cw; canvas.height = ch;
        canvas.style.width = W + "px"; canvas.style.height = height + "px";
      }
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.fillStyle = C.bg; ctx.fillRect(0, 0, W, height);
      ctx.textBaseline = "alphabetic";
      lanes.forEach(function (lane, i) {
        var stalled = lane.type === "ns" && NS[lane.n].verdict === "stalled";
        ctx.fillStyle = stalled ? C.stalled : i % 2 ? C.alt : C.bg;
        ctx.fillRect(0, lane.y, W, lane.h);
        ctx.fillStyle = C.line; ctx.fillRect(0, lane.y + lane.h - 1, W, 1);
      });
      var step = niceStep((W - GUT - PADR) / (view.v1 - view.v0));
      ctx.save(); ctx.beginPath(); ctx.rect(GUT, 0, W - GUT, height); ctx.clip();
      for (var g = Math.ceil((view.v0 - OFF) / step) * step; g + OFF <= view.v1; g += step) {  // g: on the shared axis
        var gx = Math.round(X(g + OFF)) + 0.5;
        ctx.fillStyle = C.grid; ctx.fillRect(gx, AXIS, 1, height - AXIS);
        ctx.fillStyle = C.line; ctx.fillRect(gx, AXIS - 6, 1, 6);
        var digits = step < 0.001 ? 4 : step < 0.01 ? 3 : step < 0.1 ? 2 : step < 1 ? 1 : 0;
        text((g < -step / 2 ? "−" : "+") + Math.abs(Math.abs(g) < step / 2 ? 0 : g).toFixed(digits) + " s", gx, AXIS - 9, null, C.muted, "11px system-ui, sans-serif", "center");
      }
      D.restarts.forEach(function (r) {
        var x1 = X(r.down), x2 = X(r.back != null ? r.back : END);
        ctx.fillStyle = C.down; ctx.fillRect(x1, AXIS, x2 - x1, height - AXIS);
        ctx.fillStyle = C.downEdge; ctx.fillRect(x1, AXIS, 1.5, height - AXIS);
        if (r.back != null) { ctx.fillStyle = C.back; ctx.fillRect(x2 - 1, AXIS, 2, height - AXIS); }
        ctx.fillStyle = C.downTop; ctx.fillRect(x1, AXIS - 4, Math.max(x2 - x1, 2), 4);
        var lbl = r.back != null ? "server down " + (r.back - r.down).toFixed(2) + " s" : "server down (not back)";
        var room = (r.back != null ? x2 : W - PADR) - Math.max(x1, GUT) - 8;
        if (room >= 60) text(lbl, Math.max(x1, GUT) + 4, 13, room, C.bad, "600 11px system-ui, sans-serif");
        if (r.back != null && x2 > GUT && x2 < W - 60) text("server back", x2 + 4, 13, 90, C.ok, "600 11px system-ui, sans-serif");
      });
      ctx.fillStyle = C.line; ctx.fillRect(GUT, AXIS - 1, W - GUT, 1);
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
          var kind = gen.k === "instance" ? "instance " : "session ";
          if (b - vis > 60) text(kind + gen.i + (gen.sid ? " · " + gen.sid.slice(0, 8) : "") + (gen.tools != null ? " · " + gen.tools + " tools" : ""), vis, lane.y + 16, b - vis - 4, col, "600 11px system-ui, sans-serif");
        });
        lane.rows.forEach(function (row) {
          var items = row.items, state = { px: -1, col: "" };
          for (var i = lowerBound(items, view.v0 - row.maxDur - 1e-9); i < items.length && items[i].t <= view.v1; i++) {
            if (items[i].end >= view.v0) drawItem(items[i], row.y + 3, state);
          }
        });
      });
      outline(selected, false);
      if (cursor && cursor !== selected) outline(cursor, true);
      ctx.restore();
      // gutter labels (drawn last, over the plot)
      ctx.fillStyle = C.gutter; ctx.fillRect(0, 0, GUT, height); ctx.fillStyle = C.line; ctx.fillRect(GUT - 1, 0, 1, height);
      text(ALIGN ? "time since the server went down" : "time since capture start", 10, AXIS - 9, GUT - 16, C.muted, "11px system-ui, sans-serif");
      lanes.forEach(function (lane) {
        if (lane.type === "tcp") { text("TCP, no request", 10, lane.y + 17, GUT - 20, C.muted, "600 12px system-ui, sans-serif"); return; }
        var ns = NS[lane.n];
        text(ns.name, 10, lane.y + 16, GUT - 20, C.fg, "600 13px system-ui, sans-serif");
        lane.rows.forEach(function (row) {
          if (row.first) text(row.kind === "post" ? "POST" : "GET (SSE)", GUT - 10, row.y + 12, GUT - 20, C.muted, "11px system-ui, sans-serif", "right");
        });
        var vc = ns.verdict === "stalled" ? C.bad : ns.verdict === "rebound" ? C.ok : C.muted;
        text(ns.verdict, 10, lane.y + 32, GUT - 70, vc, "600 11px system-ui, sans-serif");
      });
      placeOverlay();
      var range = $("range") || document.getElementById("range");  // one range for every timeline on the page: they share it
      if (range) range.textContent = fmt(view.v0) + " … " + fmt(view.v1) + " (" + dur(view.v0, view.v1) + " shown)";
    }

    // ---- overlay: lane focus targets, stall flags, sibling markers (DOM: crisp, focusable) ---------
    var overlay = $("tl-overlay"), laneEls = [], markers = [];
    var status = $("tl-status");
    NS.forEach(function (ns, n) {
      var lf = document.createElement("div");
      lf.className = "lane-focus"; lf.tabIndex = 0; lf.setAttribute("role", "group"); lf.setAttribute("data-ns", String(n));
      lf.setAttribute("aria-label", ns.name + " (" + ns.verdict + "): left and right arrows step through its exchanges, Enter opens one");
      lf.addEventListener("keydown", function (e) { laneKey(e, n); });
      lf.addEventListener("focus", function () {
        var mine = byNs[n] || [];
        status.textContent = ns.name + ": " + mine.length + " exchange(s)";
        if (cursor && cursor.ns === n) showCursor(false);
      });
      lf.addEventListener("blur", function () { tooltip(null); });
      overlay.appendChild(lf); laneEls[n] = lf;
      if (!ns.stall) return;
      var m = document.createElement("div");
      m.className = "stall-marker"; m.setAttribute("data-ns", String(n));
      var flag = document.createElement("button");
      flag.type = "button"; flag.className = "flag"; flag.textContent = "⚑ stall: " + (ns.sig || "stalled");
      flag.title = ns.stall.desc + (ns.expl ? "\n\n" + ns.expl : "");
      flag.addEventListener("click", function (e) { e.stopPropagation(); selectStall(n, false); });
      flag.addEventListener("pointerdown", function (e) { e.stopPropagation(); });
      m.appendChild(flag); overlay.appendChild(m); markers.push({ n: n, el: m, t: function () { return NS[n].stall.t; } });
    });
    var divMarker = document.createElement("div"), rebMarker = document.createElement("div");
    divMarker.className = "div-marker offscreen"; rebMarker.className = "reb-marker offscreen";
    divMarker.appendChild(document.createElement("span")).className = "flag";
    rebMarker.appendChild(document.createElement("span")).className = "flag";
    overlay.appendChild(divMarker); overlay.appendChild(rebMarker);

    function placeAt(el, t, top, h) {
      var x = t == null ? -1 : X(t), off = t == null || x < GUT || x > W - PADR + 1;
      el.classList.toggle("offscreen", off);
      if (off) return;
      el.style.left = (x - 1.5) + "px"; el.style.top = top + "px"; el.style.height = h + "px";
      el.classList.toggle("flip", x > W - PADR - 230);  // near the right edge the flag hangs to the left of its line
    }
    function placeOverlay() {
      NS.forEach(function (ns, n) {
        var lane = laneOf(n), el = laneEls[n];
        el.hidden = !lane;
        if (lane) { el.style.top = lane.y + "px"; el.style.height = (lane.h - 1) + "px"; }
      });
      markers.forEach(function (mk) {
        var lane = laneOf(mk.n);
        if (!lane) { mk.el.classList.add("offscreen"); return; }
        placeAt(mk.el, mk.t(), lane.y, lane.h - 1);
      });
      var a = sib && laneOf(sib.n), b = sib && laneOf(sib.m);
      if (a && b) {
        var dt = divergenceT(sib.n, sib.m), top = Math.min(a.y, b.y), bottom = Math.max(a.y + a.h, b.y + b.h);
        placeAt(divMarker, dt, top, bottom - top - 1);
        divMarker.firstChild.textContent = "diverged " + fmt(dt);
        placeAt(rebMarker, NS[sib.m].reb, b.y, b.h - 1);
        rebMarker.firstChild.textContent = NS[sib.m].name + " rebound " + fmt(NS[sib.m].reb);
      } else {
        divMarker.classList.add("offscreen"); rebMarker.classList.add("offscreen");
      }
    }

    // ---- hit testing ------------------------------------------------------------------------------
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

    // ---- details drawer -----------------------------------------------------------------------------
    function headersTable(idx) {
      var tb = el("table"), list = headers(idx);
      list.forEach(function (i) { var tr = el("tr"); tr.appendChild(el("td", null, HP[i][0])); tr.appendChild(el("td", null, HP[i][1])); tb.appendChild(tr); });
      if (!list.length) { var tr = el("tr"); tr.appendChild(el("td", "muted", "(none)")); tb.appendChild(tr); }
      return tb;
    }
    function conn(c) { var a = D.conns[c]; return a ? c + "  " + a[0] + " → " + a[1] : c; }
    function stallOfConn(c) { for (var n = 0; n < NS.length; n++) if (NS[n].stall && NS[n].stall.xid == null && NS[n].stall.c === c) return n; return -1; }
    function stallBox(sn) {
      var box = el("div", "stall-card");
      box.appendChild(el("p", null, "⚑ Stall point of " + NS[sn].name + ": " + (NS[sn].sig || "stalled")));
      if (NS[sn].stall.how) box.appendChild(el("p", "muted", "Tied to " + NS[sn].name + " by " + NS[sn].stall.how));
      if (NS[sn].expl) box.appendChild(el("p", "explanation", NS[sn].expl));
      if (NS[sn].advice) box.appendChild(el("p", "advice", "Fix: " + NS[sn].advice));
      return box;
    }
    function unselect() {  // the drawer closed, or shows another timeline's exchange now
      selected = null; selConn = null;
      draw(); renderRows(null); writeHash();
    }
    var TITLE = LABEL ? LABEL + " · " : "";
    function showExchange(it, tickIdx) {
      var x = it.x;
      var h = el("h3", null, TITLE + NS[x.n].name + ": " + it.label + " → ");
      h.appendChild(el("span", it.bad ? "status-bad" : "status-ok", (x.s != null ? String(x.s) : x.o === "refused" ? "refused" : "no response") + (x.err ? " " + x.err : "")));
      drawerHead(h);
      if (STALL_XID[x.i] != null) details.appendChild(stallBox(STALL_XID[x.i]));
      var gen = genOf(it);
      details.appendChild(dl([
        ["exchange", x.i + (x.f != null ? "  (frame #" + x.f + ")" : "")],
        ["request", fmt(x.t) + "   " + abs(x.t)], ["target", x.m + " " + x.u],
        ["response", x.r != null ? fmt(x.r) + "  after " + dur(x.t, x.r) : null],
        ["ended", x.e != null ? fmt(x.e) + "  " + (x.o || "") : x.o],
        ["connection", conn(x.c)], ["session", x.sid], ["new session", x.nsid],
        ["generation", x.g ? (gen && gen.k === "instance" ? "client instance " : "session ") + x.g + (gen && gen.sid ? " (" + gen.sid + ")" : "") : "before any known session"],
        ["protocol", x.pv], ["revision", NS[x.n].rev], ["Mcp-Method", x.mm], ["Mcp-Name", x.mn],
        ["JSON-RPC ids", x.ids ? x.ids.join(", ") : null], ["tools listed", x.tc], ["error", x.ed]
      ]));
      var cols = el("div", "cols"), q = el("div"), r = el("div");
      q.appendChild(el("h4", null, "Request headers")); q.appendChild(headersTable(x.qh));
      if (x.qb != null) { q.appendChild(el("h4", null, "Request body")); q.appendChild(el("pre", null, pretty(body(x.qb)))); }
      r.appendChild(el("h4", null, "Response headers")); r.appendChild(headersTable(x.rh));
      if (x.rb != null) { r.appendChild(el("h4", null, "Response body")); r.appendChild(el("pre", null, pretty(body(x.rb)))); }
      cols.appendChild(q); cols.appendChild(r); details.appendChild(cols);
      if (x.ev && x.ev.length) {
        details.appendChild(el("h4", null, "SSE events (" + x.ev.length + ")"));
        var tb = el("table", "sse"), hl = null;
        x.ev.forEach(function (ev, i) {
          var tr = el("tr");
          var meta = [fmt(ev[0]), ev[4] ? "event: " + ev[4] : "", ev[3] != null ? "id: " + ev[3] : "", ev[5] != null ? "retry: " + ev[5] : "", ev[1]].filter(Boolean).join("  ");
          tr.appendChild(el("td", null, meta));
          var data = body(ev[2]);
          var td = el("td"); td.appendChild(el("pre", null, data ? pretty(data) : "(empty data)")); tr.appendChild(td);
          if (i === tickIdx) { tr.className = "hl"; hl = tr; }
          tb.appendChild(tr);
        });
        details.appendChild(tb);
        if (hl) hl.scrollIntoView({ block: "nearest" });
      }
    }
    function showConn(u) {
      drawerHead(el("h3", null, TITLE + "TCP connection " + u.ev + " (no HTTP request)"));
      var sn = stallOfConn(u.c);
      if (sn >= 0) details.appendChild(stallBox(sn));
      details.appendChild(dl([["time", fmt(u.t) + "   " + abs(u.t)], ["connection", u.c], ["client", u.client], ["server", u.server], ["frame", u.f != null ? "#" + u.f : null]]));
    }
    // select: open the details of an exchange (or a bare TCP connection), outline it on the
    // timeline, mark its row in the table; opts.reveal pans the timeline to it.
    function select(h, opts) {
      if (!h) return;
      opts = opts || {};
      openDrawer(self);
      if (h.un) { selected = null; selConn = h.un; showConn(h.un); }
      else {
        selected = h.it; selConn = null; cursor = h.it; showExchange(h.it, h.tick);
        if (opts.reveal) reveal(h.it);
      }
      details.setAttribute("data-selected", h.un ? "conn:" + h.un.c : h.it.x.i);
      if (LABEL) details.setAttribute("data-panel", LABEL.toLowerCase()); else details.removeAttribute("data-panel");
      draw(); renderRows(selected); writeHash();
    }
    function stallWindow(t) {
      var r = D.restarts[0];
      var a = r && r.down < t ? Math.max(r.down - 2, t - 25) : t - 6;
      return [a, t + Math.max(6, (t - a) * 0.6)];
    }
    function selectStall(n, scroll) {
      var s = NS[n].stall, w = stallWindow(s.t);
      setView(w[0], w[1]);
      var it = s.xid != null ? BYID[s.xid] : null;
      if (it) select({ it: it, tick: -1 });
      else {
        var u = UN.filter(function (c) { return c.c === s.c; })[0];
        if (u) select({ un: u });
      }
      if (scroll) scrollToTimeline();
    }
    function scrollToTimeline() { var sect = document.getElementById("timeline"); if (sect) sect.scrollIntoView({ block: "start" }); }

    // ---- keyboard: lanes ----------------------------------------------------------------------------
    function showCursor(follow) {
      if (!cursor) return;
      reveal(cursor);
      draw();
      var x = cursor.x, lane = cursor.row, rect = tl.getBoundingClientRect();
      status.textContent = NS[x.n].name + ": " + cursor.label + " → " + statusText(cursor) + " at " + fmt(x.t);
      if (lane) tooltip({ it: cursor, tick: -1 }, Math.min(Math.max(X(cursor.t), GUT), W - PADR), lane.y + ROW - 4);
      if (follow && drawerOpen()) select({ it: cursor, tick: -1 });
      void rect;
    }
    function laneKey(e, n) {
      var mine = byNs[n] || [], k = e.key, i = cursor && cursor.ns === n ? mine.indexOf(cursor) : -1;
      if (k === "ArrowRight" || k === "ArrowLeft" || k === "Home" || k === "End") {
        if (!mine.length) { e.preventDefault(); e.stopPropagation(); return; }
        if (k === "Home") i = 0;
        else if (k === "End") i = mine.length - 1;
        else if (i < 0) { i = lowerBound(mine, view.v0); if (k === "ArrowLeft") i = Math.max(0, lowerBound(mine, view.v1) - 1); if (i >= mine.length) i = mine.length - 1; }
        else i = Math.max(0, Math.min(mine.length - 1, i + (k === "ArrowRight" ? 1 : -1)));
        cursor = mine[i]; showCursor(true);
      } else if (k === "Enter" || k === " ") {
        if (!cursor || cursor.ns !== n) { if (!mine.length) return; cursor = mine[Math.min(lowerBound(mine, view.v0), mine.length - 1)]; }
        select({ it: cursor, tick: -1 }, { reveal: true });
      } else return;
      e.preventDefault(); e.stopPropagation();
    }

    // ---- request table (virtualised) ------------------------------------------------------------------
    var RT_ROW = 24;
    var COLS = [
      { k: "t", label: "Time", cls: "num", get: function (it) { return it.t; }, show: function (it) { return (it.t < 0 ? "−" : "+") + Math.abs(it.t).toFixed(3); } },
      { k: "ns", label: "Namespace", get: function (it) { return NS[it.ns].name; } },
      { k: "sess", label: "Session / instance", cls: "mono", get: sessionLabel },
      { k: "m", label: "HTTP", get: function (it) { return it.x.m; } },
      { k: "rpc", label: "JSON-RPC / MCP", cls: "mono", get: rpcLabel },
      { k: "rev", label: "Revision", cls: "mono", get: function (it) { return it.x.pv || ""; }, show: function (it) { return it.x.pv || "–"; } },
      { k: "s", label: "Status", cls: "num st", get: function (it) { return it.x.s != null ? it.x.s : it.refused ? -1 : -2; }, show: statusText },
      { k: "d", label: "Duration", cls: "num", get: function (it) { var d = durationOf(it); return d == null ? Infinity : d; },
        show: function (it) { var d = durationOf(it); return d == null ? "open" : d < 1 ? (d * 1000).toFixed(1) + " ms" : d.toFixed(2) + " s"; } },
      { k: "o", label: "Outcome", get: outcomeText },
      { k: "f", label: "Frame", cls: "num", get: function (it) { return it.x.f != null ? it.x.f : -1; }, show: function (it) { return it.x.f != null ? "#" + it.x.f : "–"; } }
    ];
    var rt = VIEWER ? document.getElementById("rt") : null, rtHead = rt && document.getElementById("rt-head"), rtBody = rt && document.getElementById("rt-body");
    var rtSpacer = rt && document.getElementById("rt-spacer"), rtCount = rt && document.getElementById("rt-count"), rtRange = rt && document.getElementById("rt-range");
    var sortKey = "t", sortDir = 1, ROWS = [], tableCursor = -1, rowEls = [], tableTimer = 0;
    if (rt) COLS.forEach(function (col) {
      var cell = el("div", "c-" + col.k + (col.cls && col.cls.indexOf("num") >= 0 ? " num" : "")); cell.setAttribute("role", "columnheader"); cell.setAttribute("data-col", col.k);
      var b = el("button", null, col.label); b.type = "button"; b.title = "Sort by " + col.label.toLowerCase();
      b.addEventListener("click", function () {
        if (sortKey === col.k) sortDir = -sortDir; else { sortKey = col.k; sortDir = 1; }
        tableRefresh(true);
      });
      cell.appendChild(b); rtHead.appendChild(cell);
    });
    function sortedRows() {
      var rows = FILT;
      if (rtRange.checked) {
        var a = view.v0, b = view.v1, out = [];
        for (var i = 0; i < rows.length; i++) { var it = rows[i]; if (it.t > b) break; if (it.end >= a) out.push(it); }
        rows = out;
      } else rows = rows.slice();
      if (sortKey !== "t") {
        var col = COLS.filter(function (c) { return c.k === sortKey; })[0], keys = new Map();
        rows.forEach(function (it) { keys.set(it, col.get(it)); });
        rows.sort(function (p, q) {
          var a = keys.get(p), b = keys.get(q);
          if (a < b) return -sortDir; if (a > b) return sortDir;
          return p.idx - q.idx;
        });
      } else if (sortDir < 0) rows.reverse();
      return rows;
    }
    // now: recompute at once (a filter or sort changed); otherwise soon, once zooming settles.
    function tableRefresh(now, scrollTo) {
      if (!rt) return;  // a timeline without the request table (diff)
      if (!now) {
        if (scrollTo) renderRows(scrollTo);
        else if (rtRange.checked) { clearTimeout(tableTimer); tableTimer = setTimeout(function () { tableRefresh(true); }, 120); }
        return;
      }
      clearTimeout(tableTimer);
      var keep = tableCursor >= 0 && ROWS[tableCursor];
      ROWS = sortedRows();
      tableCursor = keep ? ROWS.indexOf(keep) : -1;
      rtSpacer.style.height = ROWS.length * RT_ROW + "px";
      rt.setAttribute("aria-rowcount", String(ROWS.length + 1));
      Array.prototype.forEach.call(rtHead.children, function (cell) {
        var k = cell.getAttribute("data-col");
        if (k === sortKey) cell.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending"); else cell.removeAttribute("aria-sort");
      });
      rtCount.textContent = ROWS.length.toLocaleString("en") + " request(s)" + (rtRange.checked ? " in " + fmt(Math.max(view.v0, 0)) + " … " + fmt(Math.min(view.v1, END)) : "");
      renderRows(scrollTo || (selected && ROWS.indexOf(selected) >= 0 ? selected : null));
    }
    function renderRows(scrollTo) {
      if (!rt) return;
      if (scrollTo) {
        var at = ROWS.indexOf(scrollTo);
        if (at < 0 && rtRange.checked) { tableRefresh(true, null); at = ROWS.indexOf(scrollTo); }
        if (at >= 0) {
          tableCursor = at;
          var top = at * RT_ROW, h = rtBody.clientHeight;
          if (top < rtBody.scrollTop || top + RT_ROW > rtBody.scrollTop + h) rtBody.scrollTop = Math.max(0, top - h / 2);
        }
      }
      var maxTop = Math.max(0, ROWS.length * RT_ROW - rtBody.clientHeight);
      if (rtBody.scrollTop > maxTop) rtBody.scrollTop = maxTop;  // the list got shorter: do not wait for the browser to clamp it
      var first = Math.max(0, Math.floor(Math.min(rtBody.scrollTop, maxTop) / RT_ROW) - 5), last = Math.min(ROWS.length, first + Math.ceil((rtBody.clientHeight || 290) / RT_ROW) + 10);
      rowEls.forEach(function (r) { r.remove(); });
      rowEls = [];
      if (!ROWS.length) {
        var empty = el("div", "rt-empty", EX.length ? "No request matches the filters" + (rtRange.checked ? " in the zoomed time range." : ".") : "No requests in this capture.");
        rtBody.appendChild(empty); rowEls.push(empty);
      }
      for (var i = first; i < last; i++) {
        var it = ROWS[i], row = el("div", "rt-row" + (i % 2 ? " odd" : "") + (it.bad ? " bad" : "") + (STALL_XID[it.x.i] != null ? " stalled-at" : "") + (i === tableCursor ? " cursor" : ""));
        row.setAttribute("role", "row"); row.setAttribute("aria-rowindex", String(i + 2)); row.setAttribute("data-xid", it.x.i);
        row.setAttribute("aria-selected", it === selected ? "true" : "false");
        row.style.top = i * RT_ROW + "px";
        COLS.forEach(function (col) {
          var v = col.show ? col.show(it) : col.get(it), cell = el("span", "c-" + col.k + (col.cls ? " " + col.cls : ""), v === "" || v == null ? "–" : v);
          cell.setAttribute("role", "gridcell");
          if (col.k === "s" && !it.bad && it.x.s != null) cell.className += " ok";
          row.appendChild(cell);
        });
        row.title = NS[it.ns].name + ": " + it.label + " → " + statusText(it) + (it.x.sid ? "\nsession " + it.x.sid : "");
        rowEls.push(row); rtBody.appendChild(row);
      }
      var sw = rtBody.offsetWidth - rtBody.clientWidth;
      rt.style.setProperty("--rt-scrollbar", sw + "px");
    }
    if (rt) {
    rtBody.addEventListener("scroll", function () { window.requestAnimationFrame(function () { renderRows(null); }); });
    rtBody.addEventListener("click", function (e) {
      var row = e.target.closest(".rt-row");
      if (!row) return;
      var it = BYID[row.getAttribute("data-xid")];
      if (it) { tableCursor = ROWS.indexOf(it); select({ it: it, tick: -1 }, { reveal: true }); }
    });
    rtBody.addEventListener("keydown", function (e) {
      var k = e.key, page = Math.max(1, Math.floor(rtBody.clientHeight / RT_ROW) - 1), i = tableCursor;
      if (!ROWS.length) return;
      if (k === "ArrowDown") i = i < 0 ? 0 : i + 1; else if (k === "ArrowUp") i = i < 0 ? 0 : i - 1;
      else if (k === "PageDown") i += page; else if (k === "PageUp") i -= page;
      else if (k === "Home") i = 0; else if (k === "End") i = ROWS.length - 1;
      else if (k === "Enter" || k === " ") { if (i < 0) i = 0; select({ it: ROWS[i], tick: -1 }, { reveal: true }); e.preventDefault(); return; }
      else return;
      e.preventDefault();
      tableCursor = Math.max(0, Math.min(ROWS.length - 1, i));
      var top = tableCursor * RT_ROW;
      if (top < rtBody.scrollTop) rtBody.scrollTop = top;
      else if (top + RT_ROW > rtBody.scrollTop + rtBody.clientHeight) rtBody.scrollTop = top + RT_ROW - rtBody.clientHeight;
      if (drawerOpen()) select({ it: ROWS[tableCursor], tick: -1 }, { reveal: true });
      else renderRows(null);
    });
    rtRange.addEventListener("change", function () { tableRefresh(true); });
    }

    // ---- sibling view -----------------------------------------------------------------------------------
    function siblingsOf(n) { return NS[n].div ? NS[n].div.sib : []; }
    function divergenceT(n, m) {
      var div = NS[n].div;
      if (div && div.t != null) return div.t;
      // No point from the analysis: the first request after the restart where their sequences differ.
      var r = D.restarts[0], from = r ? r.down : 0;
      var a = EX.filter(function (it) { return it.ns === n && it.t >= from; }), b = EX.filter(function (it) { return it.ns === m && it.t >= from; });
      for (var i = 0; i < Math.max(a.length, b.length); i++) {
        if (!a[i] || !b[i]) return (a[i] || b[i]).t;
        if (a[i].label !== b[i].label || a[i].x.s !== b[i].x.s) return Math.min(a[i].t, b[i].t);
      }
      return null;
    }
    var sibBar = VIEWER && document.getElementById("sibling-bar"), sibText = VIEWER && document.getElementById("sibling-text");
    function enterSibling(n, m, keepView) {
      sib = { n: n, m: m };
      sibBar.hidden = false;
      var div = NS[n].div;
      sibText.textContent = "Sibling view: " + NS[n].name + " (" + NS[n].verdict + ") beside " + NS[m].name + " (" + NS[m].verdict + ")" +
        (div && div.text ? ". " + div.text : "");
      refilter();
      if (!keepView) {
        var r = D.restarts[0], dt = divergenceT(n, m);
        var pts = [dt, NS[m].reb, NS[n].stall && NS[n].stall.t, r && r.down, r && r.back].filter(function (p) { return p != null; });
        if (pts.length) {
          var a = Math.min.apply(null, pts), b = Math.max.apply(null, pts), pad = Math.max(1, (b - a) * 0.12);
          setView(a - pad, b + pad);
        }
      }
      writeHash();
    }
    function leaveSibling() {
      if (!sib) return;
      sib = null; sibBar.hidden = true; refilter();
    }
    if (VIEWER) {
      document.getElementById("sibling-exit").addEventListener("click", leaveSibling);
      Array.prototype.forEach.call(document.querySelectorAll("button.compare"), function (b) {
        var n = Number(b.getAttribute("data-ns")), m = siblingsOf(n)[Number(b.getAttribute("data-sib"))];
        if (m == null) return;
        b.hidden = false;
        b.addEventListener("click", function () { enterSibling(n, m); scrollToTimeline(); });
      });
    }

    // ---- deep links: #x=<exchange>&t=<from>..<to> (also u=<connection>, cmp=<stalled>.<sibling>) -------------
    var hashTimer = 0, lastHash = null, ready = false;
    function currentHash() {
      var parts = [];
      if (selected) parts.push("x=" + encodeURIComponent(selected.x.i));
      else if (selConn) parts.push("u=" + encodeURIComponent(selConn.c));
      if (sib) parts.push("cmp=" + sib.n + "." + sib.m);
      parts.push("t=" + view.v0.toFixed(3) + ".." + view.v1.toFixed(3));
      return "#" + parts.join("&");
    }
    function writeHash() {
      if (!ready) return;
      clearTimeout(hashTimer);
      hashTimer = setTimeout(function () {
        var h = currentHash();
        if (h === location.hash) return;
        lastHash = h;
        try { history.replaceState(null, "", h); } catch (e) { /* some file:// setups refuse: the copy-link button still works */ }
      }, 150);
    }
    function parseHash(h) {
      var out = Object.create(null);
      (h || "").replace(/^#/, "").split("&").forEach(function (p) {
        var i = p.indexOf("=");
        if (i > 0) { try { out[p.slice(0, i)] = decodeURIComponent(p.slice(i + 1)); } catch (e) { /* malformed: ignored */ } }
      });
      return out;
    }
    function applyHash(h) {
      var q = parseHash(h), t = /^(-?[\d.]+)\.\.(-?[\d.]+)$/.exec(q.t || ""), applied = false;
      var nm = (q.cmp || "").split(".").map(Number);
      if (/^\d+\.\d+$/.test(q.cmp || "") && NS[nm[0]] && NS[nm[1]] && nm[0] !== nm[1]) { enterSibling(nm[0], nm[1], !!t); applied = true; }
      else if (sib) leaveSibling();
      if (t && +t[2] > +t[1]) { setView(+t[1], +t[2]); applied = true; }
      var it = q.x != null ? BYID[q.x] : null;
      if (it) {
        if (!passes(it)) { F.ns[it.ns] = true; syncNsBoxes(); refilter(); }
        select({ it: it, tick: -1 }, { reveal: !t }); applied = true;
      } else if (q.u != null) {
        var u = UN.filter(function (c) { return c.c === q.u; })[0];
        if (u) { select({ un: u }); applied = true; }
      }
      return applied;
    }
    if (VIEWER) {
    window.addEventListener("hashchange", function () {
      if (location.hash === lastHash) return;
      if (applyHash(location.hash)) scrollToTimeline();
    });
    var linkOut = document.getElementById("link-out"), linkText = document.getElementById("link-text"), linkStatus = document.getElementById("link-status");
    document.getElementById("copy-link").addEventListener("click", function () {
      var url = location.href.split("#")[0] + currentHash();
      linkOut.hidden = false; linkText.value = url;
      function fallback() {
        linkText.focus(); linkText.select();
        var ok = false;
        try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
        linkStatus.textContent = ok ? "Link copied:" : "Copy this link:";
      }
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(url).then(function () { linkStatus.textContent = "Link copied:"; }, fallback);
      } else fallback();
    });
    }

    // ---- controls (the report's filters) ------------------------------------------------------------
    var nsBoxes = [];
    function syncNsBoxes() { nsBoxes.forEach(function (cb, n) { cb.checked = F.ns[n]; }); }
    if (VIEWER) {
    var nsBox = document.getElementById("ns-filter");
    NS.forEach(function (ns, n) {
      var lab = el("label", ns.verdict === "stalled" ? "stalled" : null), cb = el("input");
      cb.type = "checkbox"; cb.checked = true; cb.setAttribute("data-ns", String(n));
      cb.addEventListener("change", function () { F.ns[n] = cb.checked; if (sib) leaveSibling(); else refilter(); });
      lab.appendChild(cb); lab.appendChild(document.createTextNode(ns.name)); lab.title = ns.name + ": " + ns.verdict;
      nsBox.appendChild(lab); nsBoxes.push(cb);
    });
    var counts = Object.create(null);
    EX.forEach(function (it) { it.methods.forEach(function (m) { counts[m] = (counts[m] || 0) + 1; }); });
    var sel = document.getElementById("method-filter");
    Object.keys(counts).sort().forEach(function (m) { var o = el("option", null, m + " (" + counts[m] + ")"); o.value = m; sel.appendChild(o); });
    sel.addEventListener("change", function () { F.method = sel.value; refilter(); });
    var statusSel = document.getElementById("status-filter"), errorsBox = document.getElementById("errors-only"), search = document.getElementById("search");
    statusSel.addEventListener("change", function () { F.status = statusSel.value; refilter(); });
    errorsBox.addEventListener("change", function () { F.errors = errorsBox.checked; refilter(); });
    var searchTimer = 0;
    search.addEventListener("input", function () {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(function () { F.text = search.value.trim().toLowerCase(); refilter(); }, 150);
    });
    search.addEventListener("keydown", function (e) { if (e.key === "Enter") { clearTimeout(searchTimer); F.text = search.value.trim().toLowerCase(); refilter(); } });
    Array.prototype.forEach.call(document.querySelectorAll("a.stall-link:not([data-panel])"), function (a) {
      a.addEventListener("click", function (e) {
        e.preventDefault();
        var h = a.getAttribute("href") || "";
        if (h.indexOf("#x=") === 0 || h.indexOf("#u=") === 0) {
          if (sib) leaveSibling();
          applyHash(h);
          scrollToTimeline();
        } else selectStall(Number(a.getAttribute("data-stall")), true);
      });
    });
    }

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
      if (e.target !== tl && (k === "ArrowLeft" || k === "ArrowRight")) return;
      if (k === "+" || k === "=") zoom(0.5); else if (k === "-") zoom(2); else if (k === "0") fit();
      else if (k === "ArrowLeft") setView(view.v0 - span * 0.1, view.v1 - span * 0.1);
      else if (k === "ArrowRight") setView(view.v0 + span * 0.1, view.v1 + span * 0.1);
      else return;
      e.preventDefault();
    });
    var tip = $("tooltip");
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
      tip.style.left = Math.max(0, Math.min(px + 14, W - 300)) + "px"; tip.style.top = (py + 16) + "px";
    }
    if (window.ResizeObserver) new ResizeObserver(function () { if (tl.clientWidth !== W) draw(); }).observe(tl);

    // A small handle for automated checks (tests, benchmark); it exposes nothing from the capture that the page does not show.
    self.api = {
      view: function () { return [view.v0, view.v1]; },
      setView: setView,
      point: function (xid, tick) {
        var it = BYID[xid], row = it && it.row, rect = canvas.getBoundingClientRect();
        if (!row) return null;
        var x = tick != null ? X(it.x.ev[tick][0]) : (Math.max(X(it.t), GUT) + Math.min(X(it.end), W - PADR)) / 2;
        return { x: rect.left + x, y: rect.top + row.y + 3 + BAR / 2 };
      },
      restartX: function () {  // where its first restart's band starts, in page coordinates (null: no restart)
        return D.restarts[0] ? canvas.getBoundingClientRect().left + X(D.restarts[0].down) : null;
      },
      state: function () {
        return { selected: selected ? selected.x.i : null, cursor: cursor ? cursor.x.i : null, rows: ROWS.length, shown: FILT.length,
                 sibling: sib ? [NS[sib.n].name, NS[sib.m].name] : null, divergence: sib ? divergenceT(sib.n, sib.m) : null, theme: theme,
                 offset: OFF, label: LABEL };
      }
    };
    self.off = OFF; self.end = END; self.viewer = VIEWER;
    var started = false;
    self.viewChanged = function () { if (started) { sync(); draw(); tableRefresh(false); writeHash(); } };
    self.unselect = unselect; self.draw = draw; self.restartSpan = restartSpan; self.selectStall = selectStall;
    self.start = function () {
      started = true;
      sync();
      refilter();
      if (VIEWER) {
        ready = true;
        if (location.hash.length > 1) applyHash(location.hash);
      }
    };
    return self;
  }

  // ---- the page: its timelines, and the controls they share -------------------------------------------
  Array.prototype.forEach.call(document.querySelectorAll(".tl[data-src]"), function (pane) { panels.push(Timeline(pane)); });
  var first = fitSpan();
  clock.v0 = first[0]; clock.v1 = first[1];
  function onClick(id, f) { var b = document.getElementById(id); if (b) b.addEventListener("click", f); }
  onClick("zoom-in", function () { clockZoom(0.5); });
  onClick("zoom-out", function () { clockZoom(2); });
  onClick("zoom-fit", clockFit);
  onClick("zoom-restart", clockRestart);
  Array.prototype.forEach.call(document.querySelectorAll("a.stall-link[data-panel]"), function (a) {  // diff: a stall point in the table -> its timeline
    a.addEventListener("click", function (e) {
      var p = panels[Number(a.getAttribute("data-panel"))], n = Number(a.getAttribute("data-stall"));
      e.preventDefault();
      if (p) p.selectStall(n, true);
    });
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && closeDrawer()) e.preventDefault();
  });
  var themeButton = document.getElementById("theme-toggle");
  function themeLabel() {
    themeButton.textContent = theme === "dark" ? "☀ Light theme" : "☾ Dark theme";
    themeButton.setAttribute("aria-pressed", theme === "dark" ? "true" : "false");
  }
  function setTheme(t, store) {
    theme = t; root.setAttribute("data-theme", t); themeLabel(); palette();
    panels.forEach(function (p) { p.draw(); });
    if (store) { try { window.localStorage.setItem(THEME_KEY, t); } catch (e) { /* private mode: not kept */ } }
  }
  if (themeButton) {
    themeButton.hidden = false; themeLabel();
    themeButton.addEventListener("click", function () { setTheme(theme === "dark" ? "light" : "dark", true); });
  }
  if (darkQuery && darkQuery.addEventListener) darkQuery.addEventListener("change", function (e) { if (!storedTheme() && themeButton) setTheme(e.matches ? "dark" : "light", false); });

  // The handle: the first timeline's (the report's only one), and every timeline with the shared axis (diff).
  var handle = panels.length ? panels[0].api : {};
  handle.panels = panels.map(function (p) { return p.api; });
  handle.aligned = function () { return [clock.v0, clock.v1]; };
  handle.setAligned = clockSet;
  window.mcpsniffReport = handle;
  // Short windows: fold the stall cards (their one-line summary stays) so the timeline is in sight.
  if (window.innerHeight < 900) Array.prototype.forEach.call(document.querySelectorAll("details.stall-card"), function (d) { d.open = false; });
  panels.forEach(function (p) { p.start(); });
  if (window.performance && performance.mark) performance.mark("mcpsniff-ready");
  root.setAttribute("data-ready", "1");
})();
