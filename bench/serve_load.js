#!/usr/bin/env node
// The load side of bench/serve.sh: sends the requests, follows the live logs, and reports.
// Node's own modules only (http, net, crypto). Subcommands:
//
//   payload SRC OUT REPO_URL BEFORE AFTER   GitHub's example push, pointed at the bench's repo,
//                                          written compact (as GitHub sends it)
//   send-one URL BODY SECRET_ENV            one signed push delivery: prints "STATUS BODY"
//   follow --url U --clients N --ready F --phases F --report F
//                                          N server-sent-event clients reading U until SIGTERM;
//                                          F(ready) is written once each has a log line; on
//                                          SIGTERM the report (per load phase) goes to F(report)
//   load --label L --url U --count N (--rate R | --concurrency C) [--method POST --body F
//        --secret-env V] [--expect S] [--idle K] --phases F --out F
//                                          N requests, a new connection each: open loop at R per
//                                          second, or C senders as fast as they go; K idle
//                                          connections held open meanwhile
//   queue DIR                              the states of the server's queue entries
//   report --results DIR --follow F        the tables and ratios
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const net = require('net');
const path = require('path');
const { performance } = require('perf_hooks');

// Wall-clock milliseconds with sub-millisecond resolution: comparable across processes and
// with bash's $EPOCHREALTIME, which the build's step prints in each log line.
const nowMs = () => performance.timeOrigin + performance.now();

function args(argv) {
  const out = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith('--')) out[argv[i].slice(2)] = argv[++i];
    else out._.push(argv[i]);
  }
  return out;
}

// Nearest-rank percentile of an ascending array.
function pct(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function sign(body, secretEnv) {
  const secret = process.env[secretEnv];
  if (!secret) throw new Error(`${secretEnv} is not set`);
  return 'sha256=' + crypto.createHmac('sha256', secret).update(body).digest('hex');
}

function pushHeaders(body, signature) {
  return {
    'content-type': 'application/json',
    'content-length': body.length,
    'user-agent': 'GitHub-Hookshot/bench',
    'x-github-event': 'push',
    'x-github-delivery': crypto.randomUUID(),
    'x-hub-signature-256': signature,
    connection: 'close',
  };
}

// One request on a connection of its own. Resolves {status, body, ms} or {error, ms}.
function request(url, method, headers, body) {
  return new Promise((resolve) => {
    const start = process.hrtime.bigint();
    const ms = () => Number(process.hrtime.bigint() - start) / 1e6;
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname, method, headers, agent: false },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode, body: Buffer.concat(chunks), ms: ms() }));
        res.on('error', (e) => resolve({ error: e.code || e.message, ms: ms() }));
      });
    req.setTimeout(30000, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ error: e.code || e.message, ms: ms() }));
    req.end(body || undefined);
  });
}

function cmdPayload([src, out, repoUrl, before, after]) {
  const payload = JSON.parse(fs.readFileSync(src, 'utf8'));
  for (const sha of [before, after]) {
    if (!/^[0-9a-f]{40}$/.test(sha)) throw new Error(`not a commit: ${sha}`);
  }
  Object.assign(payload, { ref: 'refs/heads/main', before, after, created: false, deleted: false });
  Object.assign(payload.repository, {
    full_name: 'acme/orders', name: 'orders', clone_url: repoUrl, default_branch: 'main',
  });
  if (payload.head_commit) payload.head_commit.id = after;
  fs.writeFileSync(out, JSON.stringify(payload));
}

async function cmdSendOne([url, bodyFile, secretEnv]) {
  const body = fs.readFileSync(bodyFile);
  const r = await request(new URL(url), 'POST', pushHeaders(body, sign(body, secretEnv)), body);
  console.log(r.error ? `error ${r.error}` : `${r.status} ${r.body.toString()}`);
}

// --- follow: the browsers watching the build's log ------------------------------------------
function cmdFollow(o) {
  const url = new URL(o.url);
  const count = Number(o.clients);
  const clients = [];
  let ready = false;
  for (let i = 0; i < count; i++) {
    const c = { times: [], lags: [], bytes: 0, events: 0, lines: 0, open: false, buf: '' };
    clients.push(c);
    const req = http.get(
      { host: url.hostname, port: url.port, path: url.pathname, agent: false,
        headers: { accept: 'text/event-stream' } },
      (res) => {
        c.open = res.statusCode === 200;
        c.status = res.statusCode;
        res.setEncoding('utf8');
        res.on('data', (text) => {
          const t = nowMs();
          c.bytes += Buffer.byteLength(text);
          c.buf += text;
          let end;
          while ((end = c.buf.indexOf('\n\n')) >= 0) {
            const event = c.buf.slice(0, end);
            c.buf = c.buf.slice(end + 2);
            c.events++;
            c.times.push(t);
            // Each log line reads "line N EPOCHREALTIME": its lag is now minus that.
            for (const m of event.matchAll(/line (\d+) (\d+(?:\.\d+)?)/g)) {
              c.lines++;
              c.lags.push([t, t - Number(m[2]) * 1000]);
            }
          }
          if (!ready && clients.every((x) => x.lines > 0)) {
            ready = true;
            fs.writeFileSync(o.ready, 'ready\n');
          }
        });
        res.on('close', () => { c.open = false; c.closedAt = nowMs(); });
      });
    req.on('error', (e) => { c.open = false; c.error = e.code || e.message; });
    c.req = req;
  }
  process.on('SIGTERM', () => {
    const end = nowMs();
    const phases = fs.existsSync(o.phases)
      ? fs.readFileSync(o.phases, 'utf8').trim().split('\n').filter(Boolean).map((l) => {
        const [label, start, stop] = l.split(' ');
        return { label, start: Number(start), end: Number(stop) };
      })
      : [];
    const report = {
      clients: count,
      open_at_end: clients.filter((c) => c.open).length,
      errors: clients.filter((c) => c.error || (c.status && c.status !== 200)).length,
      events: clients.reduce((s, c) => s + c.events, 0),
      lines: clients.reduce((s, c) => s + c.lines, 0),
      bytes: clients.reduce((s, c) => s + c.bytes, 0),
      phases: phases.map((p) => {
        let live = 0, minEvents = Infinity, maxGap = 0;
        const lags = [];
        for (const c of clients) {
          const times = c.times.filter((t) => t >= p.start && t <= p.end);
          if (times.length > 0) live++;
          minEvents = Math.min(minEvents, times.length);
          // The longest wait for an event in the phase, counting from its start and to its end.
          let last = p.start;
          for (const t of times) { maxGap = Math.max(maxGap, t - last); last = t; }
          maxGap = Math.max(maxGap, Math.min(p.end, c.closedAt || end) - last);
          for (const [t, lag] of c.lags) if (t >= p.start && t <= p.end) lags.push(lag);
        }
        lags.sort((a, b) => a - b);
        return { label: p.label, seconds: (p.end - p.start) / 1000, live, min_events: minEvents,
                 max_gap_ms: maxGap, lag_p50: pct(lags, 0.5), lag_p99: pct(lags, 0.99),
                 lag_max: lags[lags.length - 1] };
      }),
    };
    fs.writeFileSync(o.report, JSON.stringify(report));
    for (const c of clients) c.req.destroy();
    process.exit(0);
  });
}

// --- load: the deliveries (or the static server's GETs) --------------------------------------
// K connections opened and left idle, as browsers holding a connection open would.
function openIdle(url, count) {
  return Promise.all(Array.from({ length: count }, () => new Promise((resolve, reject) => {
    const s = net.connect(Number(url.port), url.hostname);
    s.idle = { open: false };
    s.on('connect', () => { s.idle.open = true; resolve(s); });
    s.on('close', () => { s.idle.open = false; });
    s.on('error', reject);
  })));
}

async function cmdLoad(o) {
  const url = new URL(o.url);
  const method = o.method || 'GET';
  const body = o.body ? fs.readFileSync(o.body) : null;
  const signature = o['secret-env'] ? sign(body, o['secret-env']) : null;
  const expect = Number(o.expect || 200);
  const expectBytes = o['expect-bytes'] ? Number(o['expect-bytes']) : null;
  const count = Number(o.count);
  const idle = await openIdle(url, Number(o.idle || 0));

  const latencies = [];
  const statuses = {};
  let errors = 0, lateMax = 0;
  const one = async () => {
    const headers = signature
      ? pushHeaders(body, signature)
      : { 'user-agent': 'bench', connection: 'close' };
    const r = await request(url, method, headers, body);
    const key = r.error || String(r.status);
    statuses[key] = (statuses[key] || 0) + 1;
    const ok = !r.error && r.status === expect &&
      (expectBytes === null || r.body.length === expectBytes);
    if (!ok) errors++;
    latencies.push(r.ms);
  };

  const start = nowMs();
  if (o.rate) {
    // Open loop: request i leaves at start + i/rate whatever the answers before it do.
    const interval = 1000 / Number(o.rate);
    const pending = [];
    for (let i = 0; i < count; i++) {
      const due = start + i * interval;
      const wait = due - nowMs();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      lateMax = Math.max(lateMax, nowMs() - due);
      pending.push(one());
    }
    await Promise.all(pending);
  } else {
    let next = 0;
    const sender = async () => { while (next++ < count) await one(); };
    await Promise.all(Array.from({ length: Number(o.concurrency) }, sender));
  }
  const end = nowMs();
  const idleOpen = idle.filter((s) => s.idle.open).length;
  for (const s of idle) s.destroy();

  fs.appendFileSync(o.phases, `${o.label} ${start} ${end}\n`);
  latencies.sort((a, b) => a - b);
  const seconds = (end - start) / 1000;
  const result = {
    label: o.label, count, errors, statuses, seconds, rate: count / seconds,
    p50: pct(latencies, 0.5), p99: pct(latencies, 0.99), max: latencies[latencies.length - 1],
    late_max_ms: lateMax, idle: idle.length, idle_open_at_end: idleOpen, latencies,
  };
  fs.writeFileSync(o.out, JSON.stringify(result));
}

function cmdQueue([dir]) {
  const states = {};
  for (const name of fs.readdirSync(path.join(dir, 'entries'))) {
    const entry = JSON.parse(fs.readFileSync(path.join(dir, 'entries', name), 'utf8'));
    const key = entry.state + (entry.result ? ` (${entry.result})` : '');
    states[key] = (states[key] || 0) + 1;
  }
  console.log(Object.entries(states).map(([k, v]) => `${v} ${k}`).join(', '));
}

// --- report -----------------------------------------------------------------------------------
function cmdReport(o) {
  const runs = fs.readdirSync(o.results).filter((f) => f.endsWith('.json')).map((f) => {
    const r = JSON.parse(fs.readFileSync(path.join(o.results, f), 'utf8'));
    const [tool, mode, round] = r.label.split('-');
    const number = (ext) => {
      const file = path.join(o.results, r.label + ext);
      return fs.existsSync(file) ? Number(fs.readFileSync(file, 'utf8')) : NaN;
    };
    return { ...r, tool, mode, round: Number(round), cpu: number('.cpu'), fsync: number('.fsync'),
             slow: r.latencies.filter((ms) => ms >= 1000).length };
  });
  const tools = ['runner', 'python', 'nginx'].filter((t) => runs.some((r) => r.tool === t));
  const modes = ['rate', 'burst'];
  const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  const row = (cells, widths) => cells.map((c, i) => String(c).padStart(widths[i])).join(' ');
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
  const pooled = {};

  const w = [5, 6, 5, 6, 5, 7, 7, 8, 7, 10, 5, 8];
  for (const mode of modes) {
    const mine = runs.filter((r) => r.mode === mode);
    if (mine.length === 0) continue;
    console.log();
    console.log(mode === 'rate' ? o['rate-title'] : o['burst-title']);
    console.log(row(['round', 'tool', 'sent', 'errors', 'idle', 'p50_ms', 'p99_ms', 'max_ms', 'req/s',
                     'cpu_us/req', 'slow', 'fsync_ms'], w));
    for (const round of [...new Set(mine.map((r) => r.round))].sort((a, b) => a - b)) {
      for (const tool of tools) {
        const r = mine.find((x) => x.round === round && x.tool === tool);
        if (!r) continue;
        console.log(row([round, tool, r.count, r.errors,
                         tool === 'runner' ? 'sse' : `${r.idle_open_at_end}/${r.idle}`,
                         f(r.p50), f(r.p99), f(r.max), f(r.rate, 1), f(r.cpu / r.count, 0), r.slow, f(r.fsync)], w));
      }
    }
    console.log(`  all rounds (p50/p99/max of every request, req/s the median run):`);
    for (const tool of tools) {
      const rs = mine.filter((r) => r.tool === tool);
      const all = rs.flatMap((r) => r.latencies).sort((a, b) => a - b);
      const p = {
        count: all.length, errors: rs.reduce((s, r) => s + r.errors, 0), p50: pct(all, 0.5),
        p99: pct(all, 0.99), max: all[all.length - 1], rate: median(rs.map((r) => r.rate)),
        cpu: rs.reduce((s, r) => s + r.cpu, 0) / all.length,
        slow: rs.reduce((s, r) => s + r.slow, 0),
        statuses: rs.reduce((s, r) => { for (const [k, v] of Object.entries(r.statuses)) s[k] = (s[k] || 0) + v; return s; }, {}),
      };
      pooled[`${mode}/${tool}`] = p;
      console.log(row(['all', tool, p.count, p.errors, '', f(p.p50), f(p.p99), f(p.max),
                       f(p.rate, 1), f(p.cpu, 0), p.slow], w) +
                  `   answers: ${Object.entries(p.statuses).map(([k, v]) => `${v}x${k}`).join(' ')}`);
    }
  }

  console.log();
  console.log('ratios, runner / static server (latency above 1: runner slower; rate below 1: runner fewer per second):');
  for (const mode of modes) {
    const r = pooled[`${mode}/runner`];
    if (!r) continue;
    for (const tool of tools.filter((t) => t !== 'runner')) {
      const s = pooled[`${mode}/${tool}`];
      console.log(`  ${mode.padEnd(5)} runner/${tool.padEnd(6)}  p50 ${f(r.p50 / s.p50).padStart(6)}` +
                  `  p99 ${f(r.p99 / s.p99).padStart(6)}  max ${f(r.max / s.max).padStart(6)}` +
                  `  deliveries/s vs requests/s ${f(r.rate / s.rate).padStart(5)}` +
                  `  cpu per request ${f(r.cpu / s.cpu).padStart(5)}`);
    }
  }

  if (o.follow && fs.existsSync(o.follow)) {
    const sse = JSON.parse(fs.readFileSync(o.follow, 'utf8'));
    console.log();
    console.log(`live logs: ${sse.clients} clients on /events/ID/build, ${sse.open_at_end} still open at the end, ` +
                `${sse.errors} failed; ${sse.events} events, ${sse.lines} log lines, ` +
                `${(sse.bytes / 1e6).toFixed(1)} MB received in all`);
    console.log('  per load run: clients that got events / min events per client / longest wait for an event / line lag (step printed it -> client read it)');
    const w2 = [16, 7, 6, 11, 11, 11, 11, 11];
    console.log(row(['run', 'seconds', 'live', 'min_events', 'max_gap_ms', 'lag_p50_ms', 'lag_p99_ms', 'lag_max_ms'], w2));
    for (const p of sse.phases) {
      console.log(row([p.label, f(p.seconds, 1), `${p.live}/${sse.clients}`, p.min_events, f(p.max_gap_ms, 0),
                       f(p.lag_p50, 1), f(p.lag_p99, 1), f(p.lag_max, 1)], w2));
    }
  }
}

const [command, ...rest] = process.argv.slice(2);
const commands = {
  payload: () => cmdPayload(rest),
  'send-one': () => cmdSendOne(rest),
  follow: () => cmdFollow(args(rest)),
  load: () => cmdLoad(args(rest)),
  queue: () => cmdQueue(rest),
  report: () => cmdReport(args(rest)),
};
if (!commands[command]) {
  console.error(`serve_load.js: unknown command '${command}'`);
  process.exit(2);
}
Promise.resolve(commands[command]()).catch((e) => {
  console.error(`serve_load.js ${command}: ${e.stack || e}`);
  process.exit(1);
});
