// A stand-in for `runner serve` for the browser check: serves what tests/browser/page_fixture
// wrote to DIR, with its Content-Security-Policy, and follows the running step `bake` as
// server-sent events, one line every 100 ms, resumable by Last-Event-ID (here a line count).
// Prints the port it listens on (127.0.0.1, chosen by the system) as its first line.
//
// Usage: node fake_server.js DIR
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');

const dir = process.argv[2];
const read = (name) => fs.readFileSync(path.join(dir, name));
const csp = read('csp.txt').toString();
const report = JSON.parse(read('build.json'));
const id = report.build.id;
const fragments = JSON.parse(read('log.json'));
const TOKEN = 'let-me-in';

function send(response, status, type, body, headers = {}) {
  response.writeHead(status, {'Content-Type': type, 'Cache-Control': 'no-store', ...headers});
  response.end(body);
}

function streamLog(request, response, step) {
  response.writeHead(200, {'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store'});
  const event = (index) => `id: ${index + 1}\n` +
      fragments[index].split('\n').map((line) => `data: ${line}\n`).join('') + '\n';
  let next = Number(request.headers['last-event-id'] || 0);
  if (step !== 'bake') {  // a finished step: all of it, then the end
    response.write(fragments.slice(0, 20).map((_, i) => event(i)).join(''));
    response.end('event: end\ndata: \n\n');
    return;
  }
  const timer = setInterval(() => {
    if (next >= fragments.length) next = 0;
    response.write(event(next++));
  }, 100);
  request.on('close', () => clearInterval(timer));
}

const server = http.createServer((request, response) => {
  const url = new URL(request.url, 'http://localhost');
  const page = (name) => send(response, 200, 'text/html; charset=utf-8', read(name),
                              {'Content-Security-Policy': csp});
  const base = `/builds/${encodeURIComponent(id)}`;
  const logs = url.pathname.match(/^\/builds\/[^/]+\/logs\/([^/]+?)\.log$/);
  const events = url.pathname.match(/^\/events\/[^/]+\/([^/]+)$/);
  if (url.pathname === '/') return page('builds.html');
  if (url.pathname === base) return page('build.html');
  if (url.pathname === '/builds.json') return send(response, 200, 'application/json', read('builds.json'));
  if (url.pathname === base + '.json') return send(response, 200, 'application/json', read('build.json'));
  if (url.pathname === '/static/app.js') return send(response, 200, 'text/javascript', read('app.js'));
  if (url.pathname === '/static/app.css') return send(response, 200, 'text/css', read('app.css'));
  if (events) return streamLog(request, response, decodeURIComponent(events[1]));
  if (logs) return send(response, 200, 'text/plain; charset=utf-8', 'plain text log\n');
  if (request.method === 'POST' && url.pathname === base + '/rerun') {
    if (request.headers.authorization !== 'Bearer ' + TOKEN) {
      return send(response, 401, 'text/plain', 'wrong token');
    }
    return send(response, 202, 'application/json', JSON.stringify({id: 'orders-hostile-159'}));
  }
  send(response, 404, 'text/plain', 'not found');
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
