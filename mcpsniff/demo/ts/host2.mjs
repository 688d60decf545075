#!/usr/bin/env node
// TypeScript SDK 2.x (`@modelcontextprotocol/client` 2.4) client host for the demo's 2026-07-28
// scenarios: one `Client` + `StreamableHTTPClientTransport` per namespace, all in ONE Node process
// (undici's keep-alive pool is shared across namespaces, like a real host). Installed and run like
// host.mjs (the 1.32 host) from the same package.json/package-lock.json (../tshost.py); Node 20+.
//
//   node host2.mjs --base http://127.0.0.1:PORT [--policy sprint=dies] [--default-policy rebuild] \
//                  [--mode auto|legacy|2026-07-28] [--ns tasks ...] [--log client.log] [--interval 0.7]
//
// Every client connects with `versionNegotiation: { mode }` (default 'auto': `server/discover`
// first, `initialize` fallback on a 2025-era server; the SDK's own default is 'legacy'). On a
// 2026-07-28 connection it opens `client.listen({ toolsListChanged: true })` (the SDK never
// re-listens by itself), then calls a tool every --interval s (`work` with progress every 4th
// call, else `ping`), each call with a 3 s timeout. Policies (what the HOST does on top):
//
//   rebuild    on a failed call or a lost listen stream: close the client, wait 1,2,4,8,16 s
//              (reset after a good call), connect a fresh Client+transport; after 5 failures: gave_up.
//   keep       never rebuild: keep calling on the same Client (a 2026 client has no session to
//              lose, so calls work again once the server is back); the listen stream is NOT re-opened.
//   relisten   like keep, but re-open the listen stream when it closes (1,2,4,8,16 s backoff).
//   dies       the first failure closes the client for good (no host reconnect).
//
// Log: JSON lines {"t", "ns", "event", "detail"}: start, connecting, connected, tools_listed,
// listen_open, listen_closed, call_ok, call_error, sdk_error, session_ended, reconnect_attempt,
// gave_up, summary (at SIGINT/SIGTERM).

import { existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

const PKG = '@modelcontextprotocol/client';

const NAMESPACES = ['tasks', 'dev-agents', 'sprint', 'ci-infra'];
const POLICIES = ['rebuild', 'keep', 'relisten', 'dies'];
const DELAYS = [1, 2, 4, 8, 16];
const CALL_TIMEOUT_MS = 3000;
const MODERN = new Set(['2026-07-28']);

/** The installed SDK's version (its package.json is not exported, so found next to its entry file). */
function sdkVersion() {
  let dir = dirname(createRequire(import.meta.url).resolve(PKG));
  for (let i = 0; i < 8; i++, dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8'));
      if (pkg.name === PKG) return pkg.version;
    }
  }
  return 'unknown';
}
const SDK_VERSION = sdkVersion();
const SDK = `ts-sdk-client ${SDK_VERSION}`;

function parseArgs(argv) {
  const a = { base: null, policy: [], defaultPolicy: 'rebuild', mode: 'auto', ns: [], log: null, interval: 0.7 };
  for (let i = 0; i < argv.length; i++) {
    const [k, inline] = argv[i].split(/=(.*)/s, 2);
    const v = () => (inline !== undefined ? inline : argv[++i]);
    if (k === '--base') a.base = v();
    else if (k === '--policy') a.policy.push(v());
    else if (k === '--default-policy') a.defaultPolicy = v();
    else if (k === '--mode') a.mode = v();
    else if (k === '--ns') a.ns.push(v());
    else if (k === '--log') a.log = v();
    else if (k === '--interval') a.interval = Number(v());
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!a.base) throw new Error('--base is required');
  return a;
}

const args = parseArgs(process.argv.slice(2));
const fd = args.log ? openSync(args.log, 'a') : 1;
function log(ns, event, detail = {}) {
  writeSync(fd, JSON.stringify({ t: Date.now() / 1000, ns, event, detail }) + '\n');
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const describe = (e) => {
  if (!e) return String(e);
  const cause = e.cause ? ` (cause: ${e.cause.code ?? e.cause.message ?? e.cause})` : '';
  return `${e.name ?? 'Error'}${e.code !== undefined ? ` ${e.code}` : ''}: ${e.message}${cause}`.slice(0, 240);
};

const policies = Object.fromEntries(NAMESPACES.map((ns) => [ns, args.defaultPolicy]));
for (const spec of args.policy) {
  const [ns, p] = spec.split('=');
  if (!(ns in policies) || !POLICIES.includes(p)) throw new Error(`bad --policy ${spec}: policies ${POLICIES.join(', ')}`);
  policies[ns] = p;
}
const active = args.ns.length ? NAMESPACES.filter((ns) => args.ns.includes(ns)) : NAMESPACES;
let stopping = false;

class Host {
  constructor(ns, policy) {
    this.ns = ns;
    this.policy = policy;
    this.url = `${args.base}/${ns}/mcp`;
    this.gen = 0;
    this.failures = 0;
    this.attempts = 0;
    this.client = null;
    this.transport = null;
    this.sub = null;
    this.protocolVersion = null;
    this.era = null;
    this.sessionId = null;
    this.tools = 0;
    this.lastOk = null;
    this.lastOkGen = 0;
    this.lastOkBoot = null;
    this.firstBoot = null;
    this.callsOk = 0;
    this.callErrors = 0;
    this.listens = 0;
    this.listenOpen = false;
    this.gaveUp = false;
    this.dead = false;
    this.lastError = null;
  }

  async connect() {
    this.gen += 1;
    const gen = this.gen;
    log(this.ns, 'connecting', { gen, mode: args.mode });
    const mode = args.mode === 'auto' || args.mode === 'legacy' ? args.mode : { pin: args.mode };
    const client = new Client({ name: 'mcpsniff-lab-ts', version: SDK_VERSION }, { versionNegotiation: { mode } });
    const transport = new StreamableHTTPClientTransport(new URL(this.url));
    client.onerror = (e) => log(this.ns, 'sdk_error', { gen, error: describe(e) });
    this.client = client;
    this.transport = transport;
    await client.connect(transport, { timeout: CALL_TIMEOUT_MS });
    this.protocolVersion = transport.protocolVersion ?? null;
    this.sessionId = transport.sessionId ?? null;
    this.era = MODERN.has(this.protocolVersion) ? '2026-07-28 sessionless' : args.mode === 'auto' ? 'negotiated fallback' : '2025-era sessions';
    log(this.ns, 'connected', { gen, protocol_version: this.protocolVersion, era: this.era, session_id: this.sessionId, server: client.getServerVersion()?.name ?? null });
    const listed = await client.listTools(undefined, { timeout: CALL_TIMEOUT_MS });
    this.tools = listed.tools.length;
    log(this.ns, 'tools_listed', { gen, count: this.tools });
    if (MODERN.has(this.protocolVersion)) await this.listen(gen);
  }

  async listen(gen) {
    const sub = await this.client.listen({ toolsListChanged: true }, { timeout: CALL_TIMEOUT_MS });
    this.sub = sub;
    this.listens += 1;
    this.listenOpen = true;
    log(this.ns, 'listen_open', { gen, honored: sub.honoredFilter });
    sub.closed.then((cause) => {
      this.listenOpen = false;
      if (stopping) return;
      log(this.ns, 'listen_closed', { gen, cause });
      if (cause !== 'local') this.onListenLost(gen);
    });
  }

  onListenLost(gen) {
    if (gen !== this.gen || this.dead || this.gaveUp) return;
    if (this.policy === 'rebuild' || this.policy === 'dies') this.fail(gen, 'listen stream lost');
    else if (this.policy === 'relisten') this.relisten(gen);
  }

  async relisten(gen) {
    for (let i = 0; i < DELAYS.length && !stopping && gen === this.gen; i++) {
      log(this.ns, 'reconnect_attempt', { what: 'listen', attempt: i + 1, delay_s: DELAYS[i] });
      await sleep(DELAYS[i] * 1000);
      try {
        await this.listen(gen);
        return;
      } catch (e) {
        log(this.ns, 'listen_failed', { gen, error: describe(e) });
      }
    }
    if (!stopping) log(this.ns, 'gave_up', { what: 'listen', attempts: DELAYS.length, policy: this.policy });
  }

  // a failure in generation `gen`; the first one wins (the call loop and the listen watcher both report)
  fail(gen, error) {
    if (gen !== this.gen || this.failing === gen) return;
    this.failing = gen;
    this.lastError = { t: Date.now() / 1000, message: error };
    log(this.ns, 'session_ended', { gen, error });
    const client = this.client;
    this.client = null;
    client?.close().catch(() => {});
    this.wake?.();
  }

  async run() {
    while (!stopping) {
      const gen = this.gen + 1;
      try {
        await this.connect();
      } catch (e) {
        this.fail(this.gen, describe(e));
      }
      if (this.client && this.failing !== this.gen) await this.callLoop(this.gen);
      if (stopping) return;
      if (this.policy === 'dies') {
        this.dead = true;
        log(this.ns, 'gave_up', { attempts: 0, policy: this.policy, reason: 'no host reconnect' });
        return;
      }
      if (this.failures >= DELAYS.length) {
        this.gaveUp = true;
        log(this.ns, 'gave_up', { attempts: this.failures, policy: this.policy });
        return;
      }
      const delay = DELAYS[this.failures];
      this.failures += 1;
      this.attempts += 1;
      log(this.ns, 'reconnect_attempt', { attempt: this.failures, delay_s: delay });
      await sleep(delay * 1000);
      void gen;
    }
  }

  async callLoop(gen) {
    let n = 0;
    while (!stopping && gen === this.gen && this.failing !== gen) {
      n += 1;
      const [tool, toolArgs] = n % 4 === 0 ? ['work', { steps: 2 }] : ['ping', {}];
      const started = performance.now();
      try {
        const opts = { timeout: CALL_TIMEOUT_MS };
        if (tool === 'work') opts.onprogress = () => {};
        const result = await this.client.callTool({ name: tool, arguments: toolArgs }, opts);
        if (result.isError) throw new Error(`tool error: ${JSON.stringify(result.content)}`);
        const text = result.content?.[0]?.text ?? '';
        const boot = text.includes('boot=') ? text.split('boot=').pop() : null;
        this.firstBoot ??= boot;
        this.lastOk = Date.now() / 1000;
        this.lastOkGen = gen;
        this.lastOkBoot = boot;
        this.failures = 0;
        this.callsOk += 1;
        log(this.ns, 'call_ok', { tool, gen, boot, session_id: this.transport?.sessionId ?? null, ms: Math.round(performance.now() - started) });
      } catch (e) {
        if (stopping || this.failing === gen) return;
        this.callErrors += 1;
        log(this.ns, 'call_error', { tool, gen, error: describe(e), ms: Math.round(performance.now() - started) });
        if (this.policy === 'rebuild' || this.policy === 'dies') {
          this.fail(gen, describe(e));
          return;
        }
      }
      await new Promise((r) => {
        this.wake = r;
        setTimeout(r, args.interval * 1000);
      });
    }
  }

  summary() {
    const bound = this.gen > 0 && this.lastOkGen === this.gen && !this.dead && !this.gaveUp && this.failing !== this.gen;
    return {
      state: this.dead ? 'dead' : this.gaveUp ? 'gave-up' : bound ? 'bound' : 'failing',
      policy: this.policy,
      gen: this.gen,
      protocol_version: this.protocolVersion,
      era: this.era,
      session_id: this.sessionId,
      tools_known: this.tools,
      listen_open: this.listenOpen,
      listens_opened: this.listens,
      last_ok_call_time: this.lastOk,
      last_ok_gen: this.lastOkGen,
      first_boot: this.firstBoot,
      last_ok_boot: this.lastOkBoot,
      calls_ok: this.callsOk,
      call_errors: this.callErrors,
      reconnect_attempts: this.attempts,
      gave_up: this.gaveUp,
      dead: this.dead,
      last_error: this.lastError,
    };
  }
}

const hosts = active.map((ns) => new Host(ns, policies[ns]));
log('*', 'start', { base: args.base, client: SDK, mode: args.mode, policies: Object.fromEntries(hosts.map((h) => [h.ns, h.policy])) });
function shutdown(sig) {
  if (stopping) return;
  stopping = true;
  log('*', 'summary', { reason: sig, client: SDK, namespaces: Object.fromEntries(hosts.map((h) => [h.ns, h.summary()])) });
  for (const h of hosts) h.client?.close().catch(() => {});
  setTimeout(() => process.exit(0), 300);
}
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
hosts.forEach((h, i) => setTimeout(() => h.run(), i * 50));
