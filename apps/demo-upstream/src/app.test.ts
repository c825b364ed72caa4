import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDemoUpstream } from './app';

const here = path.dirname(fileURLToPath(import.meta.url));
const server = createDemoUpstream({ maxDelayMs: 50, maxBytes: 1024, maxStreamLines: 5, maxBodyBytes: 1000 });
let base = '';

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

// Tests read arbitrary echo fields; a loose type keeps them readable.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = Record<string, any>;
const json = async (path: string, init?: RequestInit) => {
  const res = await fetch(base + path, init);
  return { status: res.status, body: (await res.json()) as Loose, headers: res.headers };
};

describe('demo upstream', () => {
  it('lists its endpoints at /', async () => {
    const { status, body } = await json('/');
    expect(status).toBe(200);
    expect(Object.keys(body.endpoints)).toContain('GET /get');
  });

  it('echoes query, headers and the X-Tollgate identity on /get', async () => {
    const { body } = await json('/get?a=1&a=2&b=x', { headers: { 'X-Tollgate-Consumer': 'con_1', 'X-Tollgate-Plan': 'free' } });
    expect(body.args).toEqual({ a: ['1', '2'], b: 'x' });
    expect(body.headers['x-tollgate-consumer']).toBe('con_1');
    expect(body.tollgate).toEqual({ consumer: 'con_1', plan: 'free' });
    expect((await json('/get', { method: 'POST' })).status).toBe(405);
  });

  it('echoes method, path, query and a JSON body on /anything/*', async () => {
    const { status, body } = await json('/anything/deep/path?q=1', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: '{"x":1}',
    });
    expect(status).toBe(200);
    expect(body).toMatchObject({ method: 'PUT', path: '/anything/deep/path', args: { q: '1' }, body: '{"x":1}', json: { x: 1 } });
    expect(
      (await json('/anything', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' })).body.json,
    ).toBeNull();
  });

  it('refuses a request body over the limit with 413, declared or streamed', async () => {
    expect((await json('/anything', { method: 'POST', body: 'x'.repeat(5000) })).status).toBe(413);
    const chunked = new ReadableStream({
      start(c) {
        for (let i = 0; i < 10; i++) c.enqueue(new TextEncoder().encode('y'.repeat(500)));
        c.close();
      },
    });
    const res = await fetch(`${base}/anything`, { method: 'POST', body: chunked, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
  });

  it('answers /headers and /json', async () => {
    expect((await json('/headers', { headers: { 'x-demo': 'yes' } })).body.headers['x-demo']).toBe('yes');
    expect((await json('/json')).body.slideshow.title).toBeTruthy();
  });

  it('responds with any status from 200 to 599 and rejects bad codes with 400', async () => {
    expect((await json('/status/418')).status).toBe(418);
    expect((await fetch(`${base}/status/204`)).status).toBe(204);
    for (const bad of ['/status/99', '/status/600', '/status/abc', '/status/-1', '/status/1e3', `/status/${'9'.repeat(400)}`, '/status/']) {
      const res = await fetch(base + bad);
      expect(res.status, bad).toBe(400);
    }
  });

  it('clamps /delay to the maximum and rejects malformed delays', async () => {
    const t0 = Date.now();
    const { body } = await json('/delay/99999999999');
    expect(body.delayMs).toBe(50);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
    expect((await json('/delay/NaN')).status).toBe(400);
  });

  it('clamps /bytes and /stream to their maximum and rejects malformed counts', async () => {
    const bytes = await fetch(`${base}/bytes/16`);
    expect((await bytes.arrayBuffer()).byteLength).toBe(16);
    const huge = await fetch(`${base}/bytes/999999999999999`);
    expect((await huge.arrayBuffer()).byteLength).toBe(1024);
    expect((await fetch(`${base}/bytes/-5`)).status).toBe(400);
    const lines = (await (await fetch(`${base}/stream/1000`)).text()).trim().split('\n');
    expect(lines).toHaveLength(5);
    expect(JSON.parse(lines[4]!).id).toBe(4);
    expect((await fetch(`${base}/stream/x`)).status).toBe(400);
  });

  it('answers unknown paths with a 404 JSON error and survives malformed requests', async () => {
    const { status, body } = await json('/nope/%zz');
    expect(status).toBe(404);
    expect(body.error.code).toBe('not_found');
    const raw = await new Promise<string>((resolve) => {
      const s = connect((server.address() as AddressInfo).port, '127.0.0.1', () => s.write('GARBAGE \x00\x01 HTTP/9\r\n\r\n'));
      let out = '';
      s.on('data', (d) => (out += d));
      s.on('close', () => resolve(out));
    });
    expect(raw).toContain('400');
    expect((await json('/')).status).toBe(200);
  });

  it('starts from main.ts on the configured port and stops cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'main.ts')], {
      env: { ...process.env, DEMO_UPSTREAM_PORT: '0', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const url = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no listen line: ${out}`)), 20_000);
      child.stdout!.on('data', () => {
        const m = /"url":"(http:[^"]+)"/.exec(out);
        if (m) {
          clearTimeout(t);
          resolve(m[1]!);
        }
      });
    });
    expect((await fetch(`${url}/get`)).status).toBe(200);
    const code = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    child.kill('SIGTERM');
    expect(await code).toBe(0);
  });
});
