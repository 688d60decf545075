// Load for benchmarks/watch_load.py: a light MCP streamable-HTTP server and a paced load client.
// Plain Node (no modules).
//
//   node watch_load.mjs server PORT NS[,NS...]
//       stateful MCP server: /<ns>/mcp; initialize mints an Mcp-Session-Id, notifications/initialized
//       -> 202, tools/list and tools/call (echo) answered on an SSE stream (chunked, like the SDKs'
//       servers), an unknown session id -> 404 "Session not found". Prints "ready" when listening.
//   node watch_load.mjs client PORT RATE SECONDS NS=POLICY,... [CONNECTIONS_PER_NS]
//       one MCP session per namespace, CONNECTIONS_PER_NS keep-alive connections each, tools/call
//       paced so that all together send RATE requests/s for SECONDS. Policies after a failure
//       (refused, 404): "healthy" re-initializes after 1, 2, 4, 8 s; "stale" keeps its session id
//       (404 loop). Prints one JSON line of counts at the end.
import http from "node:http";
import net from "node:net";
import { randomUUID } from "node:crypto";

const [mode, portArg, ...rest] = process.argv.slice(2);
const port = Number(portArg);

if (mode === "server") {
  const namespaces = new Set(rest[0].split(","));
  const sessions = new Set();
  const tools = { tools: [{ name: "echo", description: "Echo the text back", inputSchema: { type: "object", properties: { text: { type: "string" } }, required: ["text"] } }] };
  const server = http.createServer({ noDelay: true, keepAliveTimeout: 60000 }, (req, res) => {
    const ns = req.url.split("/")[1];
    if (!namespaces.has(ns) || !req.url.startsWith(`/${ns}/mcp`)) { res.writeHead(404).end('{"detail":"Not Found"}'); return; }
    if (req.method !== "POST") { res.writeHead(405, { allow: "POST" }).end(); return; }
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      let msg;
      try { msg = JSON.parse(Buffer.concat(chunks).toString()); } catch { res.writeHead(400).end(); return; }
      const sid = req.headers["mcp-session-id"];
      const headers = { "content-type": "text/event-stream", "cache-control": "no-cache" };
      let result;
      if (msg.method === "initialize") {
        const id = randomUUID().replaceAll("-", "");
        sessions.add(id);
        headers["mcp-session-id"] = id;
        result = { protocolVersion: "2025-06-18", capabilities: { tools: { listChanged: false } }, serverInfo: { name: `load-${ns}`, version: "1.0.0" } };
      } else if (!sid || !sessions.has(sid)) {
        res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", id: "server-error", error: { code: -32600, message: "Session not found" } }));
        return;
      } else if (msg.method === "notifications/initialized") {
        res.writeHead(202).end();
        return;
      } else if (msg.method === "tools/list") {
        result = tools;
      } else if (msg.method === "tools/call") {
        result = { content: [{ type: "text", text: `${ns}:${msg.params?.arguments?.text ?? ""}` }], isError: false };
      } else {
        res.writeHead(200, headers);
        res.end(`event: message\ndata: ${JSON.stringify({ jsonrpc: "2.0", id: msg.id, error: { code: -32601, message: "Method not found" } })}\n\n`);
        return;
      }
      headers["mcp-session-id"] = headers["mcp-session-id"] || sid;
      res.writeHead(200, headers);
      res.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: "2.0", id: msg.id, result })}\n\n`);
      res.end();
    });
  });
  server.keepAliveTimeout = 60000;
  server.listen(port, "127.0.0.1", () => console.log("ready"));
  const stop = () => { server.close(); server.closeAllConnections(); process.exit(0); };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
} else if (mode === "client") {
  const [rateArg, secondsArg, policiesArg, perNsArg] = rest;
  const rate = Number(rateArg), seconds = Number(secondsArg), perNs = Number(perNsArg || 4);
  const policies = Object.fromEntries(policiesArg.split(",").map((p) => p.split("=")));
  const names = Object.keys(policies);
  const workers = names.length * perNs;
  const period = (1000 * workers) / rate; // ms between two calls of one worker
  const counts = { sent: 0, ok: 0, failed: 0, refused: 0, notFound: 0, reinitialized: 0, perSecond: [] };
  const t0 = performance.now();
  const end = t0 + seconds * 1000;

  // A minimal HTTP/1.1 client on raw keep-alive sockets (node's http client costs ~0.5 ms of CPU
  // per request here: it, not the server, would be the limit): one request at a time per socket.
  class Conn {
    constructor() { this.sock = null; this.buf = ""; this.waiting = null; }
    open() {
      return new Promise((resolve) => {
        const sock = net.connect({ host: "127.0.0.1", port, noDelay: true });
        sock.setEncoding("latin1");
        sock.once("connect", () => { this.sock = sock; resolve(true); });
        sock.on("data", (d) => { this.buf += d; this.check(); });
        const fail = (e) => { if (this.sock === sock) this.sock = null; const w = this.waiting; this.waiting = null; this.buf = ""; if (w) w({ status: 0, error: e?.code || "closed" }); resolve(false); };
        sock.once("error", fail);
        sock.once("close", () => fail({ code: "closed" }));
      });
    }
    check() {
      const w = this.waiting;
      if (!w) return;
      const head = this.buf.indexOf("\r\n\r\n");
      if (head < 0) return;
      const lines = this.buf.slice(0, head).split("\r\n");
      const status = Number(lines[0].split(" ")[1]);
      const headers = {};
      for (const line of lines.slice(1)) { const i = line.indexOf(":"); headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim(); }
      let bodyEnd;
      if (headers["content-length"] !== undefined) {
        bodyEnd = head + 4 + Number(headers["content-length"]);
        if (this.buf.length < bodyEnd) return;
      } else if (headers["transfer-encoding"] === "chunked") {
        const term = this.buf.indexOf("\r\n0\r\n\r\n", head);
        if (term < 0) return;
        bodyEnd = term + 7;
      } else bodyEnd = head + 4;
      const body = this.buf.slice(head + 4, bodyEnd);
      this.buf = this.buf.slice(bodyEnd);
      this.waiting = null;
      w({ status, sid: headers["mcp-session-id"], body });
    }
    async send(ns, body, sid) {
      if (!this.sock && !(await this.open())) return { status: 0, error: "ECONNREFUSED" };
      const data = Buffer.from(JSON.stringify(body));
      const head = `POST /${ns}/mcp HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-protocol-version: 2025-06-18\r\n${sid ? `mcp-session-id: ${sid}\r\n` : ""}content-length: ${data.length}\r\n\r\n`;
      return new Promise((resolve) => { this.waiting = resolve; this.sock.write(Buffer.concat([Buffer.from(head), data])); });
    }
  }
  const post = (conn, ns, body, sid) => conn.send(ns, body, sid);

  class Namespace {
    constructor(ns, policy) { this.ns = ns; this.policy = policy; this.conn = new Conn(); this.sid = null; this.next = 0; this.backoff = 0; this.connecting = null; }
    async connect() {
      const init = await post(this.conn, this.ns, { jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "watch-load", version: "1.0.0" } } });
      if (init.status !== 200 || !init.sid) return false;
      this.sid = init.sid;
      await post(this.conn, this.ns, { jsonrpc: "2.0", method: "notifications/initialized" }, this.sid);
      await post(this.conn, this.ns, { jsonrpc: "2.0", id: 1, method: "tools/list" }, this.sid);
      return true;
    }
    async recover() { // healthy: re-initialize after 1, 2, 4, 8 s (one recovery at a time per namespace)
      if (this.connecting) return this.connecting;
      this.connecting = (async () => {
        for (const delay of [1000, 2000, 4000, 8000]) {
          await new Promise((r) => setTimeout(r, delay));
          if (await this.connect()) { counts.reinitialized++; return; }
        }
      })().finally(() => { this.connecting = null; });
      return this.connecting;
    }
  }
  const spaces = names.map((ns) => new Namespace(ns, policies[ns]));

  async function worker(space, index) {
    let n = 0, id = 1000 * (index + 1);
    const conn = new Conn();
    let due = t0 + (period * index) / workers;
    while (true) {
      const now = performance.now();
      if (now >= end) return;
      if (due > now) await new Promise((r) => setTimeout(r, due - now));
      due = Math.max(due + period, performance.now() - 50); // late: catch up at most 50 ms of calls
      const second = Math.floor((performance.now() - t0) / 1000);
      if (space.connecting) { await space.connecting; continue; }
      counts.sent++;
      counts.perSecond[second] = (counts.perSecond[second] || 0) + 1;
      const got = await post(conn, space.ns, { jsonrpc: "2.0", id: id++, method: "tools/call", params: { name: "echo", arguments: { text: `n${n++}` } } }, space.sid);
      if (got.status === 200 && got.body.includes('"result"')) { counts.ok++; continue; }
      counts.failed++;
      if (got.error === "ECONNREFUSED") counts.refused++;
      if (got.status === 404) counts.notFound++;
      if (space.policy === "healthy") await space.recover();
      else if (got.status === 0) await new Promise((r) => setTimeout(r, 1000)); // stale: retries its old session id
    }
  }

  (async () => {
    for (const space of spaces) if (!(await space.connect())) { console.error(`cannot initialize ${space.ns}`); process.exit(2); }
    console.error("connected");
    const runs = [];
    spaces.forEach((space, s) => { for (let i = 0; i < perNs; i++) runs.push(worker(space, s * perNs + i)); });
    await Promise.all(runs);
    counts.seconds = (performance.now() - t0) / 1000;
    counts.rate = counts.sent / counts.seconds;
    console.log(JSON.stringify(counts));
    process.exit(0);
  })();
} else {
  console.error("usage: watch_load.mjs server PORT NS,... | client PORT RATE SECONDS NS=POLICY,... [PER_NS]");
  process.exit(2);
}
