// The child `knext serve` starts in tests/serve.rs: a small Node.js HTTP server standing in for the
// Next.js standalone server. It listens on $HOSTNAME:$PORT, as Next.js does.
//
// Routes:
//   GET  /api/health            200 {"status":"ok"}
//   ANY  /headers               200 JSON {method, url, headers} of what arrived
//   GET  /status/N              answers status N
//   GET  /slow?ms=N             answers 200 "slow done" after N ms
//   GET  /work?us=N             burns N us of CPU, then answers 200 (the benchmark's page)
//   GET  /orphan                leaves an orphaned `sleep 0.2` behind (reaped by knext serve)
//   POST /upload                streams the body in, answers {"bytes": n}
//   GET  /stream                writes "first\n", then "second\n" only after GET /release
//   GET  /release               releases /stream
//   GET  /trailers              chunked body with trailer x-checksum: abc123
//   GET  /cache/set?key&tag     the rendered cache handler's set() (KNEXT_CACHE_HANDLER)
//   GET  /cache/get?key         its get(): 200 with the stored value, or 404
//   GET  /env                   200 JSON {PORT, HOSTNAME, CACHE_INVALIDATE_TOKEN}
//   GET  /exit/N                exits with code N
//   GET  /drop                  closes the connection without answering
// Env: START_DELAY_MS (listen later), IGNORE_SIGTERM=1 (stay up on SIGTERM), else SIGTERM closes the
// server, waits for in-flight requests and exits SIGTERM_EXIT_CODE (default 0; Next.js exits 143).
import { spawn } from 'node:child_process';
import http from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const handler = process.env.KNEXT_CACHE_HANDLER
  ? new (require(process.env.KNEXT_CACHE_HANDLER))({})
  : null;

let release = null;
const released = new Promise((resolve) => { release = resolve; });

const json = (res, status, value) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
};

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const path = url.pathname;
  if (path === '/api/health') return json(res, 200, { status: 'ok' });
  if (path === '/headers') return json(res, 200, { method: req.method, url: req.url, headers: req.headers });
  if (path.startsWith('/status/')) return json(res, Number(path.slice(8)), { status: Number(path.slice(8)) });
  if (path === '/work') {
    // Burns the given microseconds of CPU, as rendering a page does.
    const until = process.hrtime.bigint() + BigInt(Number(url.searchParams.get('us') ?? 1000)) * 1000n;
    while (process.hrtime.bigint() < until);
    return json(res, 200, { worked: true });
  }
  if (path === '/orphan') {
    // A shell that leaves a short-lived grandchild behind: an orphan for knext serve to reap.
    spawn('sh', ['-c', 'sleep 0.2 & exit 0'], { stdio: 'ignore' });
    return json(res, 200, { orphaned: true });
  }
  if (path === '/slow') {
    setTimeout(() => { res.writeHead(200); res.end('slow done'); }, Number(url.searchParams.get('ms') ?? 1000));
    return;
  }
  if (path === '/upload') {
    let bytes = 0;
    req.on('data', (c) => { bytes += c.length; });
    req.on('end', () => json(res, 200, { bytes }));
    return;
  }
  if (path === '/stream') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first\n');
    await released;
    res.end('second\n');
    return;
  }
  if (path === '/release') { release(); return json(res, 200, { released: true }); }
  if (path === '/trailers') {
    res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
    res.write('body with trailers\n');
    res.addTrailers({ 'x-checksum': 'abc123' });
    res.end();
    return;
  }
  if (path === '/cache/set') {
    const key = url.searchParams.get('key');
    await handler.set(key, { kind: 'PAGE', html: `<p>${key}</p>` }, { tags: [url.searchParams.get('tag')] });
    return json(res, 200, { set: key });
  }
  if (path === '/cache/get') {
    const entry = await handler.get(url.searchParams.get('key'), {});
    return entry ? json(res, 200, entry.value) : json(res, 404, { miss: true });
  }
  if (path === '/env') {
    const { PORT, HOSTNAME, CACHE_INVALIDATE_TOKEN } = process.env;
    return json(res, 200, { PORT, HOSTNAME, CACHE_INVALIDATE_TOKEN: CACHE_INVALIDATE_TOKEN ?? null });
  }
  if (path === '/drop') { req.socket.destroy(); return; }
  if (path.startsWith('/exit/')) {
    res.end();
    setTimeout(() => process.exit(Number(path.slice(6))), 10);
    return;
  }
  json(res, 404, { path });
});

process.on('SIGTERM', () => {
  if (process.env.IGNORE_SIGTERM === '1') return;
  server.close(() => process.exit(Number(process.env.SIGTERM_EXIT_CODE ?? 0)));
  server.closeIdleConnections();
});

setTimeout(
  () => server.listen(Number(process.env.PORT), process.env.HOSTNAME),
  Number(process.env.START_DELAY_MS ?? 0),
);
