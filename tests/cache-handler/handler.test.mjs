// Tests for the rendered cache handler (templates/cache-handler.cjs.j2) against a live Redis.
//
//   KNEXT_CACHE_HANDLER=$PWD/generated/next/cache-handler.cjs REDIS_URL=redis://127.0.0.1:6391/0 \
//     node --test tests/cache-handler/
// (`cargo build` renders generated/next/cache-handler.cjs; `knext cache-handler` prints the same.)
//
// The handler reads its configuration from process.env when it is constructed (the production
// path), so every case sets the variables it needs, constructs, and restores the environment
// (`makeHandler`). Each case uses its own REDIS_KEY_PREFIX. Redis contents are checked with a raw
// RESP client defined here, independent of the module under test. The auth cases start their own
// `redis-server --requirepass` on a free port; the TLS case needs `openssl` (skipped without it).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';

const HANDLER_PATH = process.env.KNEXT_CACHE_HANDLER;
const REDIS_URL = process.env.REDIS_URL;

test('KNEXT_CACHE_HANDLER and REDIS_URL are set', () => {
  assert.ok(HANDLER_PATH, 'KNEXT_CACHE_HANDLER must be the path of the rendered cache handler (generated/next/cache-handler.cjs, which cargo build renders)');
  assert.ok(REDIS_URL, 'REDIS_URL must point at a live, disposable Redis (e.g. redis://127.0.0.1:6391/0)');
});

if (HANDLER_PATH && REDIS_URL) defineTests();

// ---- raw RESP client for assertions -----------------------------------------------------------

function parse(buf, pos) {
  const eol = buf.indexOf('\r\n', pos);
  if (eol === -1) return null;
  const line = buf.toString('utf8', pos + 1, eol);
  const type = String.fromCharCode(buf[pos]);
  if (type === '+') return [line, eol + 2];
  if (type === '-') return [new Error(line), eol + 2];
  if (type === ':') return [Number(line), eol + 2];
  const n = Number(line);
  if (n < 0) return [null, eol + 2];
  if (type === '$') return buf.length < eol + 4 + n ? null : [buf.subarray(eol + 2, eol + 2 + n), eol + 4 + n];
  const items = [];
  let at = eol + 2;
  for (let i = 0; i < n; i++) {
    const r = parse(buf, at);
    if (!r) return null;
    items.push(r[0]);
    at = r[1];
  }
  return [items, at];
}

function connectRaw(url) {
  const u = new URL(url);
  const sock = net.connect({ host: u.hostname, port: Number(u.port) || 6379 });
  const waiting = [];
  let buf = Buffer.alloc(0);
  sock.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (let r; waiting.length && (r = parse(buf, 0)); ) {
      buf = buf.subarray(r[1]);
      waiting.shift()(r[0]);
    }
  });
  sock.on('error', (err) => waiting.splice(0).forEach((w) => w(err)));
  const call = (...args) => new Promise((resolve, reject) => {
    waiting.push((v) => (v instanceof Error ? reject(v) : resolve(v)));
    const parts = [Buffer.from(`*${args.length}\r\n`)];
    for (const a of args) {
      const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
      parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
    }
    sock.write(Buffer.concat(parts));
  });
  const ready = (async () => {
    if (u.password) await call('AUTH', decodeURIComponent(u.password));
    const db = u.pathname.slice(1);
    if (db) await call('SELECT', db);
  })();
  ready.catch(() => {}); // reported to whoever calls
  return { call: async (...args) => { await ready; return call(...args); }, close: () => sock.destroy() };
}

// ---- helpers ---------------------------------------------------------------------------------

const ENV_KEYS = ['REDIS_URL', 'REDIS_USERNAME', 'REDIS_PASSWORD', 'REDIS_KEY_PREFIX', 'KNEXT_CACHE_TIMEOUT_MS'];
const newPrefix = () => `t-${crypto.randomBytes(6).toString('hex')}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function eventually(check, what, timeoutMs = 3000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await check();
    if (result) return result;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function freePort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

async function elapsedMs(promise) {
  const t0 = Date.now();
  const value = await promise;
  return [value, Date.now() - t0];
}

function defineTests() {
  const CacheHandler = createRequire(import.meta.url)(path.resolve(HANDLER_PATH));
  const redis = connectRaw(REDIS_URL);
  const prefixes = [];
  const cleanups = [];
  const warnings = [];
  const unhandled = [];
  process.on('unhandledRejection', (err) => unhandled.push(err));
  const originalWarn = console.warn;
  console.warn = (...args) => { warnings.push(args.join(' ')); originalWarn(...args); };

  // Sets the env the handler reads (unset = delete), constructs it, restores the env.
  function makeHandler(env = {}) {
    const prefix = env.REDIS_KEY_PREFIX ?? newPrefix();
    prefixes.push(prefix);
    const vars = { REDIS_URL, ...env, REDIS_KEY_PREFIX: prefix };
    const saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
    try {
      for (const k of ENV_KEYS) {
        if (vars[k] === undefined) delete process.env[k];
        else process.env[k] = String(vars[k]);
      }
      return { handler: new CacheHandler({}), prefix };
    } finally {
      for (const k of ENV_KEYS) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  }

  const str = (v) => (v === null ? null : v.toString());
  const events = async (prefix) => (await redis.call('LRANGE', `${prefix}:cache-events`, 0, -1)).map((e) => JSON.parse(e.toString()));
  const eventCount = (prefix) => redis.call('LLEN', `${prefix}:cache-events`);
  const members = async (key) => (await redis.call('SMEMBERS', key)).map(String).sort();

  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
    for (const prefix of prefixes) {
      const keys = await redis.call('KEYS', `${prefix}:*`);
      if (keys.length) await redis.call('DEL', ...keys);
    }
    redis.close();
    console.warn = originalWarn;
  });

  test('round trip of a page-like value with Buffers and a Map', async () => {
    const { handler, prefix } = makeHandler();
    const value = {
      kind: 'APP_PAGE',
      html: '<!DOCTYPE html><html><body>hi ✓</body></html>',
      rscData: Buffer.from([0, 1, 2, 13, 10, 200, 255]),
      segmentData: new Map([['/_index', Buffer.from('seg-index')], ['/blog/[slug]', Buffer.from([0xff, 0])]]),
      headers: { 'x-next-cache-tags': '_N_T_/layout,_N_T_/page' },
      status: 200,
      nested: { list: [1, 'two', null, { route: { kind: 'APP_ROUTE', body: Buffer.from('{"ok":true}') } }] },
    };
    const before = Date.now();
    await handler.set('/blog/hello', value, { tags: ['posts'], revalidate: 60 });
    const entry = await handler.get('/blog/hello', { kind: 'APP_PAGE' });
    assert.deepStrictEqual(entry.value, value);
    assert.ok(Buffer.isBuffer(entry.value.rscData));
    assert.ok(entry.value.segmentData instanceof Map);
    assert.ok(entry.lastModified >= before && entry.lastModified <= Date.now());
    assert.deepStrictEqual(entry.tags, ['posts', '_N_T_/layout', '_N_T_/page']);

    const stored = JSON.parse(str(await redis.call('GET', `${prefix}:cache:/blog/hello`)));
    assert.deepStrictEqual(Object.keys(stored).sort(), ['lastModified', 'tags', 'value']);
    assert.equal(stored.lastModified, entry.lastModified);
    assert.deepStrictEqual(stored.tags, entry.tags);
    assert.deepStrictEqual(stored.value.rscData, { $knext: 'buffer', base64: value.rscData.toString('base64') });
    assert.equal(stored.value.segmentData.$knext, 'map');
    assert.deepStrictEqual(stored.value.segmentData.entries[0], ['/_index', { $knext: 'buffer', base64: Buffer.from('seg-index').toString('base64') }]);
    assert.equal(stored.value.html, value.html);
  });

  test('a miss returns null', async () => {
    const { handler, prefix } = makeHandler();
    assert.equal(await handler.get('/nothing-here'), null);
    const [event] = await eventually(async () => (await events(prefix)).length === 1 && events(prefix), 'MISS event');
    assert.equal(event.type, 'MISS');
    assert.equal(event.key, '/nothing-here');
  });

  test('set indexes the raw key under every tag (ctx.tags, data.tags, x-next-cache-tags)', async () => {
    const { handler, prefix } = makeHandler();
    await handler.set('k1', { kind: 'FETCH', data: { body: 'x' }, tags: ['from-data'] }, { tags: ['a', 'b'] });
    await handler.set('k2', { kind: 'APP_PAGE', html: '', headers: { 'x-next-cache-tags': 'a,_N_T_/x' } }, {});
    await handler.set('k3', { kind: 'PAGES', html: '' });
    assert.deepStrictEqual(await members(`${prefix}:tag:a`), ['k1', 'k2']);
    assert.deepStrictEqual(await members(`${prefix}:tag:b`), ['k1']);
    assert.deepStrictEqual(await members(`${prefix}:tag:from-data`), ['k1']);
    assert.deepStrictEqual(await members(`${prefix}:tag:_N_T_/x`), ['k2']);
    assert.deepStrictEqual(JSON.parse(str(await redis.call('GET', `${prefix}:cache:k3`))).tags, []);
    const keys = (await redis.call('KEYS', `${prefix}:tag:*`)).map(String).sort();
    assert.equal(keys.length, 4);
  });

  test('set(key, null) deletes the entry', async () => {
    const { handler, prefix } = makeHandler();
    await handler.set('gone', { kind: 'PAGES', html: 'x' }, { tags: [] });
    assert.equal(await redis.call('EXISTS', `${prefix}:cache:gone`), 1);
    await handler.set('gone', null);
    assert.equal(await redis.call('EXISTS', `${prefix}:cache:gone`), 0);
    assert.equal(await handler.get('gone'), null);
    await eventually(async () => (await events(prefix)).some((e) => e.type === 'DELETE' && e.key === 'gone'), 'DELETE event');
  });

  test("revalidateTag('a') deletes exactly the entries tagged a and the tag set", async () => {
    const { handler, prefix } = makeHandler();
    await handler.set('k1', { v: 1 }, { tags: ['a'] });
    await handler.set('k2', { v: 2 }, { tags: ['a', 'b'] });
    await handler.set('k3', { v: 3 }, { tags: ['b'] });
    await handler.set('k4', { v: 4 }, {});
    await handler.revalidateTag('a');
    for (const [k, exists] of [['k1', 0], ['k2', 0], ['k3', 1], ['k4', 1]]) {
      assert.equal(await redis.call('EXISTS', `${prefix}:cache:${k}`), exists, k);
    }
    assert.equal(await redis.call('EXISTS', `${prefix}:tag:a`), 0);
    assert.equal(await redis.call('EXISTS', `${prefix}:tag:b`), 1);
    assert.equal(await handler.get('k1'), null);
    assert.deepStrictEqual((await handler.get('k3')).value, { v: 3 });
    const revalidate = await eventually(async () => (await events(prefix)).find((e) => e.type === 'REVALIDATE'), 'REVALIDATE event');
    assert.equal(revalidate.key, 'a');
    assert.equal(revalidate.tag, 'a');
    assert.deepStrictEqual(revalidate.details, { deleted: 2 });
  });

  test('revalidateTag accepts an array of tags', async () => {
    const { handler, prefix } = makeHandler();
    await handler.set('k1', { v: 1 }, { tags: ['a'] });
    await handler.set('k2', { v: 2 }, { tags: ['b'] });
    await handler.set('k3', { v: 3 }, { tags: ['c'] });
    await handler.revalidateTag(['a', 'b', 'never-used']);
    assert.equal(await redis.call('EXISTS', `${prefix}:cache:k1`, `${prefix}:cache:k2`, `${prefix}:tag:a`, `${prefix}:tag:b`), 0);
    assert.equal(await redis.call('EXISTS', `${prefix}:cache:k3`, `${prefix}:tag:c`), 2);
    const revalidations = await eventually(async () => {
      const list = (await events(prefix)).filter((e) => e.type === 'REVALIDATE');
      return list.length === 3 && list;
    }, 'three REVALIDATE events');
    assert.deepStrictEqual(revalidations.map((e) => [e.tag, e.details.deleted]), [['never-used', 0], ['b', 1], ['a', 1]]);
  });

  test('events are newest first, typed, well-formed and without null fields', async () => {
    const { handler, prefix } = makeHandler();
    await handler.set('k', { v: 1 }, { tags: ['t'] });
    await handler.get('k');
    await handler.get('missing');
    await handler.set('k', null);
    await handler.revalidateTag('t');
    await eventually(async () => (await eventCount(prefix)) === 5, 'five events');
    const list = await events(prefix);
    assert.deepStrictEqual(list.map((e) => e.type), ['REVALIDATE', 'DELETE', 'MISS', 'HIT', 'SET']);
    assert.deepStrictEqual(list.map((e) => e.key), ['t', 'k', 'missing', 'k', 'k']);
    const allowed = ['id', 'timestamp', 'type', 'source', 'key', 'tag', 'durationMs', 'details'];
    for (const e of list) {
      assert.match(e.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(new Date(e.timestamp).toISOString(), e.timestamp);
      assert.equal(e.source, 'cache-handler');
      assert.equal(typeof e.key, 'string');
      for (const [k, v] of Object.entries(e)) {
        assert.ok(allowed.includes(k), `unexpected field ${k}`);
        assert.notEqual(v, null, `${k} is null`);
      }
      assert.equal(typeof e.durationMs, 'number');
      assert.ok(e.durationMs >= 0);
      if (e.type === 'REVALIDATE') assert.equal(e.tag, 't');
      else assert.equal('tag' in e, false);
      if ('details' in e) assert.equal(typeof e.details, 'object');
    }
    assert.deepStrictEqual(list[4].details.tags, ['t']);
    assert.equal(typeof list[4].details.bytes, 'number');
    assert.deepStrictEqual(list[1].details, { deleted: 1 });
    assert.deepStrictEqual(list[0].details, { deleted: 0 }); // the entry was already deleted
  });

  test('the event list is trimmed to 200', async () => {
    const { handler, prefix } = makeHandler();
    for (let i = 0; i < 230; i++) await handler.get(`miss-${i}`);
    await eventually(async () => str(await redis.call('LINDEX', `${prefix}:cache-events`, 0))?.includes('"miss-229"'), 'the newest event');
    assert.equal(await eventCount(prefix), 200);
    const list = await events(prefix);
    assert.equal(list[0].key, 'miss-229');
    assert.equal(list[199].key, 'miss-30');
  });

  test('keys, tags and values are binary-safe (spaces, CRLF, unicode, 1 MiB)', async () => {
    const { handler, prefix } = makeHandler();
    const key = 'key with spaces\r\n$5\r\n*2\r\n ünïcødé ✓ 🚀 \u0000 end';
    const tag = 'tag with space\r\nand ✓';
    const big = crypto.randomBytes(1024 * 1024);
    const value = {
      text: 'line1\r\nline2\n-ERR not an error\r\n+OK\r\n:1\r\n ✓ 🚀'.repeat(1000),
      bigText: 'é'.repeat(512 * 1024), // 1 MiB of UTF-8
      big,
    };
    await handler.set(key, value, { tags: [tag] });
    const entry = await handler.get(key);
    assert.ok(entry, 'entry found');
    assert.deepStrictEqual(entry.value, value);
    const keyBytes = Buffer.from(`${prefix}:cache:${key}`);
    assert.equal(await redis.call('EXISTS', keyBytes), 1);
    assert.ok((await redis.call('STRLEN', keyBytes)) > 2 * 1024 * 1024);
    assert.deepStrictEqual(await members(Buffer.from(`${prefix}:tag:${tag}`)), [key]);
    await handler.revalidateTag(tag);
    assert.equal(await redis.call('EXISTS', keyBytes), 0);
    assert.equal(await handler.get(key), null);
  });

  test('concurrent commands are matched to their own replies', async () => {
    const { handler } = makeHandler();
    await Promise.all(Array.from({ length: 100 }, (_, i) => handler.set(`c${i}`, { i, pad: 'x'.repeat(i * 50) }, { tags: [`t${i % 3}`] })));
    const got = await Promise.all(Array.from({ length: 150 }, (_, i) => handler.get(`c${i}`)));
    got.forEach((entry, i) => {
      if (i < 100) assert.equal(entry.value.i, i);
      else assert.equal(entry, null);
    });
  });

  test('two handler instances share one connection', async () => {
    const prefix = newPrefix();
    const { handler: a } = makeHandler({ REDIS_KEY_PREFIX: prefix });
    const { handler: b } = makeHandler({ REDIS_KEY_PREFIX: prefix });
    await a.set('shared', { from: 'a' }, { tags: ['s'] });
    assert.deepStrictEqual((await b.get('shared')).value, { from: 'a' });
    await b.revalidateTag('s');
    assert.equal(await a.get('shared'), null);
    const db = new URL(REDIS_URL).pathname.slice(1) || '0';
    const clients = str(await redis.call('CLIENT', 'LIST')).split('\n')
      .filter((line) => line.includes(' name=knext-cache-handler ') && line.includes(` db=${db} `));
    assert.equal(clients.length, 1, clients.join('\n'));
  });

  test('the database number in REDIS_URL is selected', async () => {
    const url = new URL(REDIS_URL);
    url.pathname = '/3';
    const { handler, prefix } = makeHandler({ REDIS_URL: url.href });
    await handler.set('in-db-3', { v: 3 }, {});
    const db3 = connectRaw(url.href);
    try {
      assert.equal(await db3.call('EXISTS', `${prefix}:cache:in-db-3`), 1);
      assert.equal(await redis.call('EXISTS', `${prefix}:cache:in-db-3`), url.pathname === new URL(REDIS_URL).pathname ? 1 : 0);
      await db3.call('DEL', `${prefix}:cache:in-db-3`, `${prefix}:cache-events`);
    } finally {
      db3.close();
    }
  });

  test('replies split into tiny TCP chunks are parsed', async () => {
    // A proxy that forwards Redis' replies 1-3 bytes at a time (requests pass through untouched).
    const upstream = new URL(REDIS_URL);
    const sockets = new Set();
    const proxy = net.createServer((client) => {
      const server = net.connect({ host: upstream.hostname, port: Number(upstream.port) || 6379 });
      sockets.add(client).add(server);
      client.setNoDelay(true);
      let queue = Buffer.alloc(0);
      let draining = false;
      const drain = () => {
        if (!queue.length || client.destroyed) { draining = false; return; }
        const n = 1 + Math.floor(Math.random() * 3);
        client.write(queue.subarray(0, n));
        queue = queue.subarray(n);
        setImmediate(drain);
      };
      server.on('data', (chunk) => {
        queue = Buffer.concat([queue, chunk]);
        if (!draining) { draining = true; setImmediate(drain); }
      });
      client.pipe(server);
      for (const s of [client, server]) {
        s.on('error', () => {});
        s.on('close', () => { client.destroy(); server.destroy(); });
      }
    });
    await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
    cleanups.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => proxy.close(r));
    });
    const url = new URL(REDIS_URL);
    url.host = `127.0.0.1:${proxy.address().port}`;
    const { handler, prefix } = makeHandler({ REDIS_URL: url.href });
    const value = { kind: 'APP_ROUTE', body: Buffer.from('hello\r\n$3\r\nworld ✓'), status: 200, headers: {} };
    await Promise.all([handler.set('x1', value, { tags: ['p'] }), handler.set('x2', { v: 2 }, { tags: ['p'] })]);
    const [x1, x2, none] = await Promise.all([handler.get('x1'), handler.get('x2'), handler.get('x3')]);
    assert.deepStrictEqual(x1.value, value);
    assert.deepStrictEqual(x2.value, { v: 2 });
    assert.equal(none, null);
    await handler.revalidateTag('p'); // SMEMBERS array + nested EXEC array
    assert.equal(await redis.call('EXISTS', `${prefix}:cache:x1`, `${prefix}:cache:x2`, `${prefix}:tag:p`), 0);
  });

  test('Redis unreachable: get is null, set and revalidateTag resolve', async () => {
    const port = await freePort();
    const { handler } = makeHandler({ REDIS_URL: `redis://127.0.0.1:${port}/0`, KNEXT_CACHE_TIMEOUT_MS: 300 });
    const [value, getMs] = await elapsedMs(handler.get('k'));
    assert.equal(value, null);
    assert.ok(getMs < 300 + 700, `get took ${getMs} ms`);
    const [, setMs] = await elapsedMs(handler.set('k', { v: 1 }, { tags: ['a'] }));
    assert.ok(setMs < 300 + 700, `set took ${setMs} ms`);
    const [, revalidateMs] = await elapsedMs(handler.revalidateTag(['a', 'b']));
    assert.ok(revalidateMs < 2 * 300 + 700, `revalidateTag took ${revalidateMs} ms`);
    assert.ok(warnings.some((w) => w.startsWith('[knext cache] revalidateTag("a") failed')), 'revalidateTag failure is logged');
  });

  test('a silent server times out; the next call reconnects', async () => {
    const connections = [];
    const blackHole = net.createServer((s) => { connections.push(s); s.on('error', () => {}); });
    await new Promise((r) => blackHole.listen(0, '127.0.0.1', r));
    cleanups.push(async () => {
      connections.forEach((s) => s.destroy());
      await new Promise((r) => blackHole.close(r));
    });
    const { handler } = makeHandler({ REDIS_URL: `redis://127.0.0.1:${blackHole.address().port}`, KNEXT_CACHE_TIMEOUT_MS: 200 });
    const [value, ms] = await elapsedMs(handler.get('k'));
    assert.equal(value, null);
    assert.ok(ms >= 150 && ms < 200 + 700, `get took ${ms} ms`);
    const [, setMs] = await elapsedMs(handler.set('k', { v: 1 }, { tags: ['a'] }));
    assert.ok(setMs >= 150 && setMs < 200 + 700, `set took ${setMs} ms`);
    assert.equal(connections.length, 2, 'a new connection after the timeout');
  });

  test('auth: REDIS_USERNAME/REDIS_PASSWORD are used and override the URL; a wrong password is a miss', async () => {
    const port = await freePort();
    const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', 's3cret'], { stdio: 'ignore' });
    const exited = new Promise((r) => server.once('exit', r));
    server.once('error', (err) => assert.fail(`cannot start redis-server: ${err.message}`));
    cleanups.push(async () => { server.kill('SIGTERM'); await exited; });
    const base = `redis://127.0.0.1:${port}`;
    await eventually(async () => {
      const probe = connectRaw(`redis://:s3cret@127.0.0.1:${port}/0`);
      try { return (await probe.call('PING')) === 'PONG'; } catch { return false; } finally { probe.close(); }
    }, 'the password-protected redis-server', 5000);
    const admin = connectRaw(`redis://:s3cret@127.0.0.1:${port}/0`);
    cleanups.push(() => admin.close());

    const cases = [
      ['env password', { REDIS_URL: `${base}/0`, REDIS_PASSWORD: 's3cret' }],
      ['env overrides URL password', { REDIS_URL: `redis://:wrong-in-url@127.0.0.1:${port}/0`, REDIS_PASSWORD: 's3cret' }],
      ['env username + password', { REDIS_URL: `redis://nobody@127.0.0.1:${port}`, REDIS_USERNAME: 'default', REDIS_PASSWORD: 's3cret' }],
      ['URL password', { REDIS_URL: `redis://:s3cret@127.0.0.1:${port}/0` }],
    ];
    for (const [name, env] of cases) {
      const { handler, prefix } = makeHandler(env);
      await handler.set('k', { name }, { tags: ['a'] });
      assert.deepStrictEqual((await handler.get('k'))?.value, { name }, name);
      assert.equal(await admin.call('EXISTS', `${prefix}:cache:k`), 1, name);
    }

    const { handler, prefix } = makeHandler({ REDIS_URL: `${base}/0`, REDIS_PASSWORD: 'wrong-pass', KNEXT_CACHE_TIMEOUT_MS: 500 });
    await handler.set('k', { v: 1 }, {});
    assert.equal(await handler.get('k'), null);
    await handler.revalidateTag('a');
    assert.equal(await admin.call('EXISTS', `${prefix}:cache:k`), 0);

    const { handler: noPassword } = makeHandler({ REDIS_URL: `${base}/0`, KNEXT_CACHE_TIMEOUT_MS: 500 });
    assert.equal(await noPassword.get('k'), null);
  });

  test('rediss:// goes through TLS (verified against the server certificate)', async (t) => {
    // A TLS terminator in front of the test Redis, with a throwaway self-signed certificate that a
    // child process trusts through NODE_EXTRA_CA_CERTS (read only at startup, hence the child).
    const dir = mkdtempSync(path.join(tmpdir(), 'knext-tls-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const [keyFile, certFile] = [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')];
    const openssl = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', keyFile, '-out', certFile], { encoding: 'utf8' });
    if (openssl.error || openssl.status !== 0) {
      t.skip(`openssl is needed for this test: ${openssl.error?.message ?? openssl.stderr}`);
      return;
    }
    const upstream = new URL(REDIS_URL);
    let tlsConnections = 0;
    const sockets = new Set();
    const terminator = tls.createServer({ key: readFileSync(keyFile), cert: readFileSync(certFile) }, (client) => {
      tlsConnections++;
      const server = net.connect({ host: upstream.hostname, port: Number(upstream.port) || 6379 });
      sockets.add(client).add(server);
      client.pipe(server).pipe(client);
      for (const s of [client, server]) {
        s.on('error', () => {});
        s.on('close', () => { client.destroy(); server.destroy(); });
      }
    });
    await new Promise((r) => terminator.listen(0, '127.0.0.1', r));
    cleanups.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => terminator.close(r));
    });
    const prefix = newPrefix();
    prefixes.push(prefix);
    const url = new URL(REDIS_URL);
    url.protocol = 'rediss:';
    url.host = `127.0.0.1:${terminator.address().port}`;
    const script = `
      const CacheHandler = require(${JSON.stringify(path.resolve(HANDLER_PATH))});
      (async () => {
        const h = new CacheHandler({});
        await h.set('tls-key', { v: Buffer.from('over tls') }, { tags: ['x'] });
        const got = await h.get('tls-key');
        process.stdout.write(JSON.stringify(got && got.value.v.toString()));
      })();`;
    const child = spawn(process.execPath, ['-e', script], {
      env: { ...process.env, REDIS_URL: url.href, REDIS_KEY_PREFIX: prefix, NODE_EXTRA_CA_CERTS: certFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const code = await new Promise((r) => child.on('exit', r));
    assert.equal(code, 0, err);
    assert.equal(out, '"over tls"', err);
    assert.equal(tlsConnections, 1);
    assert.equal(await redis.call('EXISTS', `${prefix}:cache:tls-key`, `${prefix}:tag:x`), 2);
  });

  test('without REDIS_URL an in-process Map is used, with tags', async () => {
    const { handler, prefix } = makeHandler({ REDIS_URL: undefined });
    const { handler: other } = makeHandler({ REDIS_URL: undefined, REDIS_KEY_PREFIX: prefix });
    assert.ok(warnings.some((w) => w.startsWith('[knext cache] REDIS_URL is not set')));
    const value = { kind: 'APP_PAGE', rscData: Buffer.from([1, 2, 3]), segmentData: new Map([['/', Buffer.from('s')]]) };
    await handler.set('k1', value, { tags: ['a'] });
    await handler.set('k2', { v: 2 }, { tags: ['b'] });
    assert.deepStrictEqual((await other.get('k1')).value, value, 'instances share the in-process store');
    assert.equal(await handler.get('nope'), null);
    await handler.revalidateTag(['a']);
    assert.equal(await handler.get('k1'), null);
    assert.deepStrictEqual((await handler.get('k2')).value, { v: 2 });
    await handler.set('k2', null);
    assert.equal(await handler.get('k2'), null);
    assert.deepStrictEqual(await redis.call('KEYS', `${prefix}:*`), [], 'nothing reached Redis');
  });

  test('no unhandled rejections, no credentials in warnings', async () => {
    await sleep(50);
    assert.deepStrictEqual(unhandled, []);
    assert.ok(warnings.length > 0);
    for (const w of warnings) {
      assert.ok(w.startsWith('[knext cache] '), w);
      for (const secret of ['s3cret', 'wrong-pass', 'wrong-in-url']) assert.ok(!w.includes(secret), `credential in warning: ${w}`);
    }
  });
}
