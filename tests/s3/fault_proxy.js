// A fault-injecting HTTP proxy for the upload tests: forwards requests to --target unchanged
// (Host included, so SigV4 signatures stay valid) unless a rule fires for the request.
//
//   node fault_proxy.js --target 127.0.0.1:PORT [--log FILE] [--rules JSON]
//
// Prints "fault proxy listening on 127.0.0.1:PORT" once ready. --rules is a JSON array of
// {method, query, path, skip, times, action}: a request matches when its method equals `method`
// and its URL contains `query` and `path` (each optional); the first `skip` matches pass, the
// next `times` (default 1, -1 for always) get `action`:
//   drop           close the connection as soon as the request headers arrive
//   drop_mid_body  close it after half of the body arrived
//   stall          forward the request, never relay the answer (the connection stays open)
//   503 | 500 | 403 | 429   read the body, answer with that status and an S3 error document
// --log appends one JSON line per request: method, url, content_md5, content_crc32c,
// content_sha256, body_md5 and body_crc32c (base64 MD5 and CRC32C of the bytes received),
// size, signed (has Authorization), action.
// Header values other than these are never logged.
'use strict';
const http = require('http');
const crypto = require('crypto');
const fs = require('fs');

function arg(name, fallback) {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const [targetHost, targetPort] = arg('target').split(':');
const logFile = arg('log');
const rules = JSON.parse(arg('rules', '[]')).map((rule) => ({
  times: 1, skip: 0, ...rule, seen: 0, fired: 0,
}));
const errors = {
  503: ['SlowDown', 'Please reduce your request rate.'],
  500: ['InternalError', 'We encountered an internal error. Please try again.'],
  429: ['TooManyRequestsException', 'Too many requests.'],
  403: ['AccessDenied', 'Access Denied'],
};

function pick(req) {
  for (const rule of rules) {
    if (rule.method && rule.method !== req.method) continue;
    if (rule.query && !req.url.includes(rule.query)) continue;
    if (rule.path && !req.url.split('?')[0].includes(rule.path)) continue;
    rule.seen++;
    if (rule.seen <= rule.skip) continue;
    if (rule.times >= 0 && rule.fired >= rule.times) continue;
    rule.fired++;
    return rule.action;
  }
  return null;
}

function log(entry) {
  if (logFile) fs.appendFileSync(logFile, JSON.stringify(entry) + '\n');
}

// CRC32C (Castagnoli) as x-amz-checksum-crc32c carries it: base64 of the big-endian 4 bytes.
const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; ++i) {
    let c = i;
    for (let bit = 0; bit < 8; ++bit) c = (c & 1) ? (c >>> 1) ^ 0x82F63B78 : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
})();
class Crc32c {
  constructor() { this.crc = 0xFFFFFFFF; }
  update(chunk) {
    let c = this.crc;
    for (const byte of chunk) c = CRC32C_TABLE[(c ^ byte) & 0xFF] ^ (c >>> 8);
    this.crc = c;
  }
  base64() {
    const out = Buffer.alloc(4);
    out.writeUInt32BE((this.crc ^ 0xFFFFFFFF) >>> 0);
    return out.toString('base64');
  }
}

const sockets = new Set();
const server = http.createServer((req, res) => {
  const action = pick(req);
  const entry = {
    method: req.method,
    url: req.url,
    content_md5: req.headers['content-md5'] || null,
    content_crc32c: req.headers['x-amz-checksum-crc32c'] || null,
    content_sha256: req.headers['x-amz-content-sha256'] || null,
    signed: Boolean(req.headers.authorization),
    action,
  };
  const md5 = crypto.createHash('md5');
  const crc32c = new Crc32c();
  const digest = (chunk) => { md5.update(chunk); crc32c.update(chunk); };
  let size = 0;
  const finish = () => {
    entry.body_md5 = md5.digest('base64');
    entry.body_crc32c = crc32c.base64();
    entry.size = size;
    log(entry);
  };
  if (action === 'drop') {
    log(entry);
    req.socket.destroy();
    return;
  }
  if (action === 'drop_mid_body') {
    const length = Number(req.headers['content-length'] || 0);
    log(entry);
    if (length === 0) return req.socket.destroy();
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size >= length / 2) req.socket.destroy();
    });
    return;
  }
  if (errors[action]) {
    req.on('data', (chunk) => { digest(chunk); size += chunk.length; });
    req.on('end', () => {
      finish();
      const [code, message] = errors[action];
      res.writeHead(Number(action), { 'content-type': 'application/xml' });
      res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
              `<Message>${message}</Message><RequestId>proxy</RequestId></Error>`);
    });
    return;
  }
  const upstream = http.request({
    host: targetHost, port: Number(targetPort), method: req.method, path: req.url,
    headers: req.headers,
  }, (answer) => {
    if (action === 'stall') {
      answer.resume();  // the server finished; the client never hears of it
      return;
    }
    res.writeHead(answer.statusCode, answer.headers);
    answer.pipe(res);
  });
  upstream.on('error', () => req.socket.destroy());
  req.on('data', (chunk) => { digest(chunk); size += chunk.length; upstream.write(chunk); });
  req.on('end', () => { finish(); upstream.end(); });
});
server.keepAliveTimeout = 30000;
server.on('connection', (socket) => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
});
server.listen(0, '127.0.0.1', () => {
  console.log(`fault proxy listening on 127.0.0.1:${server.address().port}`);
});
const stop = () => {
  for (const socket of sockets) socket.destroy();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 500).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
