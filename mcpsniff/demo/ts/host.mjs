#!/usr/bin/env node
// The demo's TypeScript-SDK client host: one official-SDK MCP client per namespace, in ONE
// Node process (so undici's keep-alive pool is shared across namespaces, like a real host).
//
//   node host.mjs --base http://127.0.0.1:PORT --policy sprint=idle --policy tasks=cc \
//                 --log clients.jsonl [--interval 0.7] [--hang-after-rebind NS]
//
// Every namespace gets an SDK `Client` + `StreamableHTTPClientTransport` with the SDK's DEFAULT
// reconnection options (its own GET-stream retries: min(1000*1.5^n, 30000) ms, 2 retries). The
// policy says how the HOST reacts on top of that (the SDK does what it does underneath):
//
//   cc           a tool call every --interval s; on a failed call or a transport error: close the
//                transport, wait 1,2,4,8,16 s (attempt n waits delays[n-1]), each attempt a fresh
//                transport + client.connect() (initialize, notifications/initialized, the SDK's GET
//                stream) + tools/list; after the 5th failed attempt: gave_up, no more traffic.
//   idle         connect, tools/list once, then no tool calls at all; the host never reacts to
//                transport.onerror (only the SDK's own GET retries run).
//   stale        on failure resume the old session id without initialize (a transport built with
//                `sessionId`), forever, 1 s apart.
//   reinit-once  on failure re-initialize once after 1 s; if that attempt fails, give up for good.
//   hang         like cc, but once it has rebound (a successful call in a re-initialized session) it
//                calls the server's `hang` tool, waits without timeout and sends nothing else.
//   no-relist    like cc, but never tools/list again in a new session.
//
// Log: JSON lines {"t": epoch s (Date.now()/1000), "ns", "event", "detail"}, written synchronously
// one line at a time. Events: start, connecting, connected, tools_listed, call_ok, call_error (a
// tool call's promise rejected or returned isError), call_started (only for a call the host awaits
// without timeout: the hang call), sdk_error (EVERY transport.onerror / client.onerror message, as
// the SDK reported it), transport_error (an sdk_error the host reacts to by closing the transport),
// transport_closed, reconnect_attempt, reconnect_failed, reconnected, gave_up, and a final summary
// at SIGTERM/SIGINT.

import { existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const NAMESPACES = ['tasks', 'dev-agents', 'sprint', 'ci-infra'];
const POLICIES = ['cc', 'idle', 'stale', 'reinit-once', 'hang', 'no-relist'];
const CC_DELAYS = [1, 2, 4, 8, 16];
const CLIENT_INFO = { name: 'lab-ts-client', version: '0.1.0' };
const NO_TIMEOUT_MS = 0x7fffffff; // the largest setTimeout delay (24.8 days): "no timeout"
const HUNG_AFTER_S = 5; // a call still pending this long at the summary makes the state "hung"

const SDK_VERSION = sdkVersion();
const CLIENT_NAME = `ts-sdk ${SDK_VERSION}`;

/** The installed SDK's version (its package.json is not exported, so found next to its entry file). */
function sdkVersion() {
  let dir = dirname(createRequire(import.meta.url).resolve('@modelcontextprotocol/sdk/client/index.js'));
  for (let i = 0; i < 8; i++, dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8'));
      if (pkg.name === '@modelcontextprotocol/sdk') return pkg.version;
    }
  }
  return 'unknown';
}

function usage(message) {
  process.stderr.write(`host.mjs: ${message}\n` +
    'usage: node host.mjs --base URL [--policy NS=POLICY]... [--ns NS]... [--log FILE] [--interval S] [--hang-after-rebind NS]\n' +
    `  namespaces: ${NAMESPACES.join(', ')}; policies: ${POLICIES.join(', ')} (default cc)\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { base: null, policies: Object.fromEntries(NAMESPACES.map(ns => [ns, 'cc'])), log: null, interval: 0.7, hang: new Set(), only: [] };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    if (arg.startsWith('--') && arg.includes('=')) {
      [arg, value] = [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)];
    }
    const next = () => {
      if (value !== undefined) return value;
      if (i + 1 >= argv.length) usage(`${arg} needs a value`);
      return argv[++i];
    };
    switch (arg) {
      case '--base': opts.base = next().replace(/\/+$/, ''); break;
      case '--log': opts.log = next(); break;
      case '--interval': {
        opts.interval = Number(next());
        if (!(opts.interval > 0)) usage('--interval must be a positive number of seconds');
        break;
      }
      case '--policy': {
        const spec = next();
        const [ns, name] = [spec.slice(0, spec.indexOf('=')), spec.slice(spec.indexOf('=') + 1)];
        if (!NAMESPACES.includes(ns) || !POLICIES.includes(name)) usage(`bad --policy ${JSON.stringify(spec)}`);
        opts.policies[ns] = name;
        break;
      }
      case '--ns': {  // only these namespaces (repeatable; default all four)
        const ns = next();
        if (!NAMESPACES.includes(ns)) usage(`bad --ns ${JSON.stringify(ns)}`);
        opts.only.push(ns);
        break;
      }
      case '--hang-after-rebind': {
        const ns = next();
        if (!NAMESPACES.includes(ns)) usage(`bad --hang-after-rebind ${JSON.stringify(ns)}`);
        opts.hang.add(ns);
        break;
      }
      case '-h': case '--help': usage('help');
      // falls through (usage exits)
      default: usage(`unknown argument ${JSON.stringify(arg)}`);
    }
  }
  if (!opts.base) usage('--base is required');
  for (const [ns, p] of Object.entries(opts.policies)) if (p === 'hang') opts.hang.add(ns);
  return opts;
}

const now = () => Date.now() / 1000;
const T0 = performance.now();
/** ms until the host's next call tick: every namespace calls on one shared clock (t0 + k*interval). */
function untilNextTick(intervalS) {
  const step = intervalS * 1000;
  const elapsed = performance.now() - T0;
  return Math.ceil((elapsed + 1) / step) * step - elapsed;
}

class EventLog {
  constructor(path) {
    this.fd = path ? openSync(path, 'a') : 1;
  }
  write(ns, event, detail = {}) {
    // one write per line: a killed host leaves a readable log
    writeSync(this.fd, JSON.stringify({ t: now(), ns, event, detail }) + '\n');
  }
}

/** One line for an error, with the cause fetch hides ("fetch failed [cause: ECONNREFUSED ...]"). */
function describe(error) {
  if (!(error instanceof Error)) return { message: String(error), code: null };
  let message = error.message;
  let code = error.code ?? null;
  const cause = error.cause;
  if (cause) {
    const causeCode = cause.code ?? (Array.isArray(cause.errors) ? cause.errors[0]?.code : undefined);
    message += ` [cause: ${causeCode ? `${causeCode} ` : ''}${cause.message ?? String(cause)}]`;
    code = code ?? causeCode ?? null;
  }
  if (error.name === 'AbortError' && !message.includes('AbortError')) message = `AbortError: ${message}`;
  return { message, code };
}

/** Cancellable sleep: resolves after `ms` or as soon as `wake()` is called. */
class Waker {
  constructor() { this._wake = null; }
  sleep(ms) {
    return new Promise(resolve => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() { clearTimeout(timer); if (self._wake === done) self._wake = null; resolve(); }
      this._wake = done;
    });
  }
  wake() { this._wake?.(); }
}

class NamespaceHost {
  constructor(ns, url, policy, hangAfterRebind, log, interval, stopping) {
    Object.assign(this, { ns, url, policy, hangAfterRebind, log, interval, stopping });
    this.delays = policy === 'stale' || policy === 'reinit-once' ? [1] : CC_DELAYS;
    this.forever = policy === 'stale';
    this.reinitialize = policy !== 'stale';
    this.relist = policy !== 'no-relist';
    this.reacts = policy !== 'idle';
    this.gen = 0;
    this.client = null;
    this.transport = null;
    this.sessionId = null;
    this.protocolVersion = null;
    this.tools = [];
    this.failures = 0; // consecutive failed attempts (reset by a successful call)
    this.reconnectAttempts = 0;
    this.gaveUp = false;
    this.failure = null; // why the main loop must recover
    this.recovering = false;
    this.lastOkCallTime = null;
    this.firstBoot = null;
    this.lastOkBoot = null;
    this.lastRequest = null;
    this.lastFinished = null; // the last request that got an answer or an error
    this.lastError = null;
    this.stalledAt = null;
    this.current = null; // current session's counters
    this.pending = new Map();
    this.sdkErrors = 0;
    this.getGaveUp = false; // the SDK said "Maximum reconnection attempts" for the current session
    this.hangSent = false;
    this.connectError = null;
    this.callSeq = 0;
    this.waker = new Waker();
  }

  // --- transports ---------------------------------------------------------------------------

  /** A fresh Client + transport (resuming `resumeId` without initialize if given); true when usable. */
  async connect(resumeId) {
    this.gen += 1;
    const gen = this.gen;
    this.log.write(this.ns, 'connecting', { gen, resume_session_id: resumeId ?? null });
    const transport = new StreamableHTTPClientTransport(new URL(this.url), resumeId ? { sessionId: resumeId } : undefined);
    if (resumeId && this.protocolVersion) transport.setProtocolVersion(this.protocolVersion);
    const client = new Client(CLIENT_INFO, { capabilities: {} });
    const seen = new WeakSet();
    const state = { gen, closed: false };
    transport.onerror = error => { if (error instanceof Error) seen.add(error); this.onSdkError(state, transport, error); };
    transport.onclose = () => { state.closed = true; this.log.write(this.ns, 'transport_closed', { gen }); };
    client.onerror = error => { if (!(error instanceof Error && seen.has(error))) this.onSdkError(state, transport, error); };
    this.client = client;
    this.transport = transport;
    this.transportState = state;
    this.getGaveUp = false;
    try {
      await client.connect(transport);
    } catch (error) {
      this.connectError = this.connectError ?? describe(error);
      await this.closeTransport();
      return false;
    }
    if (state.closed) { this.connectError = this.connectError ?? { message: 'transport closed during connect', code: null }; return false; }
    this.sessionId = transport.sessionId ?? null;
    this.protocolVersion = transport.protocolVersion ?? this.protocolVersion;
    const server = client.getServerVersion();
    this.current = { gen, session_id: this.sessionId, connected_at: now(), listed: false, ok_calls: 0, errors: 0, last_boot: null, resumed: Boolean(resumeId) };
    this.log.write(this.ns, 'connected', {
      gen, session_id: this.sessionId, resumed: Boolean(resumeId),
      server: server ? { name: server.name, version: server.version } : null,
      protocol_version: this.protocolVersion ?? null,
    });
    if (!resumeId && (this.relist || this.tools.length === 0)) {
      this.lastRequest = { method: 'tools/list', tool: null, t: now(), outcome: 'pending' };
      try {
        const listed = await client.listTools();
        this.tools = listed.tools.map(t => t.name);
        this.current.listed = true;
        this.lastRequest.outcome = 'ok';
        this.lastFinished = this.lastRequest;
        this.log.write(this.ns, 'tools_listed', { gen, count: this.tools.length });
      } catch (error) {
        const d = describe(error);
        this.lastRequest.outcome = d.message;
        this.lastFinished = this.lastRequest;
        this.connectError = this.connectError ?? d;
        this.noteError(d, 'tools/list');
        await this.closeTransport();
        return false;
      }
    }
    return !state.closed;
  }

  async closeTransport() {
    const transport = this.transport;
    if (transport && !this.transportState.closed) {
      this.transportState.closed = true; // errors of an aborted stream are the host's own doing
      try { await transport.close(); } catch { /* already gone */ }
    }
  }

  onSdkError(state, transport, error) {
    const d = describe(error);
    this.sdkErrors += 1;
    this.lastError = { t: now(), message: d.message };
    if (this.current && state.gen === this.current.gen) this.current.errors += 1;
    const current = transport === this.transport;
    if (current && d.message.startsWith('Maximum reconnection attempts')) this.getGaveUp = true;
    this.log.write(this.ns, 'sdk_error', { gen: state.gen, message: d.message, code: d.code, current_transport: current && !state.closed });
    if (!this.reacts || !current || state.closed || this.stopping.value) return;
    this.log.write(this.ns, 'transport_error', { gen: state.gen, message: d.message, code: d.code, recovering: this.recovering });
    if (this.recovering && !this.connectError) this.connectError = d; // the cause of a failed reconnect attempt
    this.closeTransport(); // fails the pending requests with "Connection closed"
    if (!this.recovering && !this.failure) {
      this.failure = 'transport_error';
      this.waker.wake();
    }
  }

  noteError(d, what) {
    this.lastError = { t: now(), message: d.message };
    this.stalledAt = `${what} -> ${d.message}`;
  }

  // --- calls ----------------------------------------------------------------------------------

  async call(tool, { noTimeout = false } = {}) {
    const id = ++this.callSeq;
    const gen = this.gen;
    const sent = now();
    const entry = { call: id, method: 'tools/call', tool, gen, session_id: this.sessionId, sent_at: sent };
    this.pending.set(id, entry);
    this.lastRequest = { method: 'tools/call', tool, t: sent, outcome: 'pending' };
    const request = this.lastRequest;
    if (noTimeout) this.log.write(this.ns, 'call_started', { tool, gen, session_id: this.sessionId, timeout: null });
    const started = performance.now();
    try {
      const result = await this.client.callTool({ name: tool, arguments: {} }, undefined, noTimeout ? { timeout: NO_TIMEOUT_MS } : undefined);
      const ms = Math.round(performance.now() - started);
      if (result.isError) throw Object.assign(new Error(`tool error: ${JSON.stringify(result.content).slice(0, 200)}`), { code: 'isError' });
      const text = (result.content ?? []).map(c => c.text ?? '').join(' ');
      const boot = /boot=(\w+)/.exec(text)?.[1] ?? null;
      this.firstBoot = this.firstBoot ?? boot;
      this.lastOkBoot = boot;
      this.lastOkCallTime = now();
      this.failures = 0;
      this.stalledAt = null;
      if (this.current) { this.current.ok_calls += 1; this.current.last_boot = boot; }
      request.outcome = 'ok';
      this.lastFinished = request;
      this.log.write(this.ns, 'call_ok', { tool, gen, session_id: this.sessionId, boot, ms });
      return true;
    } catch (error) {
      const d = describe(error);
      request.outcome = d.message;
      this.lastFinished = request;
      this.noteError(d, `tools/call ${tool}`);
      if (this.current) this.current.errors += 1;
      this.log.write(this.ns, 'call_error', { tool, gen, session_id: this.sessionId, message: d.message, code: d.code, ms: Math.round(performance.now() - started) });
      return false;
    } finally {
      this.pending.delete(id);
    }
  }

  // --- the host's loop ------------------------------------------------------------------------

  async run() {
    if (!(await this.connect(null)) && !(await this.recover('initial_connect_failed'))) return;
    while (!this.stopping.value) {
      if (this.policy === 'idle') {
        await this.waker.sleep(NO_TIMEOUT_MS); // woken only by the stop
        continue;
      }
      if (this.failure) {
        const why = this.failure;
        this.failure = null;
        if (!(await this.recover(why))) return;
        continue;
      }
      await this.waker.sleep(untilNextTick(this.interval));
      if (this.failure || this.stopping.value) continue;
      if (this.hangAfterRebind && !this.hangSent && this.gen > 1 && this.current?.listed && this.current.ok_calls > 0) {
        this.hangSent = true;
        const answered = await this.call('hang', { noTimeout: true }); // never answers: the host just waits
        if (!answered && !this.failure && !this.stopping.value) { this.failure = 'call_error'; await this.closeTransport(); }
        continue;
      }
      const ok = await this.call('ping');
      if (!ok && !this.failure) { this.failure = 'call_error'; await this.closeTransport(); }
    }
  }

  /** Reconnect per policy; false when the host gave up (or is stopping). */
  async recover(why) {
    this.recovering = true;
    this.failure = null;
    try {
      await this.closeTransport();
      for (;;) {
        const n = this.failures + 1;
        if (!this.forever && n > this.delays.length) {
          this.gaveUp = true;
          this.log.write(this.ns, 'gave_up', { attempts: this.failures, policy: this.policy, last_error: this.lastError?.message ?? null });
          return false;
        }
        const delay = this.delays[Math.min(n - 1, this.delays.length - 1)];
        this.failures = n;
        this.reconnectAttempts += 1;
        this.log.write(this.ns, 'reconnect_attempt', { attempt: n, delay_s: delay, why, ...(this.reinitialize ? {} : { resume_session_id: this.sessionId }) });
        await this.waker.sleep(delay * 1000);
        if (this.stopping.value) return false;
        this.connectError = null;
        const resume = this.reinitialize ? null : this.sessionId;
        if (await this.connect(resume)) {
          if (!resume) this.log.write(this.ns, 'reconnected', { attempt: n, gen: this.gen, session_id: this.sessionId, listed: Boolean(this.current?.listed) });
          return true;
        }
        const d = this.connectError ?? { message: 'unknown', code: null };
        this.noteError(d, 'reconnect');
        this.log.write(this.ns, 'reconnect_failed', { attempt: n, gen: this.gen, message: d.message, code: d.code });
        why = 'reconnect_failed';
      }
    } finally {
      this.recovering = false;
    }
  }

  summary() {
    const t = now();
    const pending = [...this.pending.values()].map(p => ({ ...p, waiting_s: Math.round((t - p.sent_at) * 1000) / 1000 }));
    const hung = pending.some(p => p.waiting_s >= HUNG_AFTER_S);
    let state;
    if (this.gaveUp) state = 'gave-up';
    else if (hung) state = 'hung';
    else if (this.policy === 'idle') state = this.current?.listed && this.current.errors === 0 ? 'bound' : 'stalled';
    else state = this.current?.listed && this.current.ok_calls > 0 && this.lastFinished?.outcome === 'ok' ? 'bound' : 'stalled'; // a call in flight at the stop does not count
    let stalledAt = state === 'bound' ? null : this.stalledAt;
    if (state === 'hung') stalledAt = `tools/call ${pending[0].tool} -> pending for ${pending[0].waiting_s} s`;
    else if (state === 'stalled' && this.policy === 'idle') stalledAt = this.getGaveUp ? 'GET stream -> Maximum reconnection attempts exceeded (SDK)' : (this.lastError ? `GET stream -> ${this.lastError.message}` : null);
    return {
      state,
      policy: this.policy,
      hang_after_rebind: this.hangAfterRebind,
      last_ok_call_time: this.lastOkCallTime,
      tools_known: this.tools.length,
      session_id: this.sessionId,
      gen: this.gen,
      gave_up: this.gaveUp,
      reconnect_attempts: this.reconnectAttempts,
      first_boot: this.firstBoot,
      last_ok_boot: this.lastOkBoot,
      current_session: this.current,
      pending,
      last_request: this.lastRequest,
      last_finished_request: this.lastFinished,
      last_error: this.lastError,
      sdk_errors: this.sdkErrors,
      sdk_get_gave_up: this.getGaveUp,
      stalled_at: stalledAt,
    };
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const log = new EventLog(opts.log);
  const active = opts.only.length ? NAMESPACES.filter(ns => opts.only.includes(ns)) : NAMESPACES;
  const stopping = { value: false };
  log.write('*', 'start', {
    client: CLIENT_NAME, node: process.version, base: opts.base, policies: Object.fromEntries(active.map(ns => [ns, opts.policies[ns]])),
    hang_call: opts.hang.size ? [...opts.hang].join(',') : null, interval_s: opts.interval, pid: process.pid,
  });
  const hosts = active.map(ns => new NamespaceHost(ns, `${opts.base}/${ns}/mcp`, opts.policies[ns], opts.hang.has(ns), log, opts.interval, stopping));
  const finish = reason => {
    if (stopping.value) return;
    stopping.value = true;
    log.write('*', 'summary', { reason, client: CLIENT_NAME, namespaces: Object.fromEntries(hosts.map(h => [h.ns, h.summary()])) });
    process.exit(0);
  };
  process.on('SIGTERM', () => finish('SIGTERM'));
  process.on('SIGINT', () => finish('SIGINT'));
  process.on('unhandledRejection', error => log.write('*', 'sdk_error', { gen: null, ...describe(error), unhandled: true }));
  await Promise.all(hosts.map(h => h.run().catch(error => log.write(h.ns, 'host_crashed', describe(error)))));
  // every namespace gave up: stay alive (no traffic) until the signal, like a host that marked them failed
  setInterval(() => {}, 1 << 30);
}

main();
