import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange, LIMIT_KEYLESS, LIMIT_ROUTE_X, rawGet, startAttackBed, type AttackBed } from './fixtures';

// Path confusion: the gateway decides (API, route, limit) on one reading of the path and the
// upstream acts on another. Every request here goes over a raw socket, byte for byte as written,
// and the assertions are about what reached the recording upstreams.

let bed: AttackBed;

beforeAll(async () => {
  bed = await startAttackBed();
});

afterAll(async () => {
  await bed?.close();
});

const withKey = () => ({ authorization: `Bearer ${bed.key.key}` });

/** Sends one GET and returns the response with whatever reached each upstream because of it. */
async function probe(target: string, headers: Record<string, string> = {}) {
  const before = { open: bed.open.requests.length, keyed: bed.keyed.requests.length };
  const res = await exchange(bed.port, rawGet(target, bed.host, headers));
  return {
    res,
    open: bed.open.requests.slice(before.open).map((r) => r.url),
    keyed: bed.keyed.requests.slice(before.keyed).map((r) => r.url),
  };
}

// ---------------------------------------------------------------------------------------------
// The most lenient reading any upstream makes of a path: decodes percent-escapes again and again
// (double-decoding proxies and frameworks), reads overlong UTF-8 (old IIS), folds compatibility
// characters (NFKC: fullwidth dots), treats `\` as `/` (Windows), drops `;` path parameters
// (Tomcat, Jetty, Spring), skips empty segments (`//`) and resolves dot segments.
// ---------------------------------------------------------------------------------------------

function percentBytes(s: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '%' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      out.push(...Buffer.from(s[i]!, 'utf8'));
    }
  }
  return out;
}

/** UTF-8 that also accepts overlong forms, as lenient decoders did. */
function lenientUtf8(bytes: number[]): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    const cont = (k: number) => bytes[i + k] !== undefined && (bytes[i + k]! & 0xc0) === 0x80;
    if (b < 0x80) out += String.fromCharCode(b);
    else if ((b & 0xe0) === 0xc0 && cont(1)) {
      out += String.fromCodePoint(((b & 0x1f) << 6) | (bytes[i + 1]! & 0x3f));
      i += 1;
    } else if ((b & 0xf0) === 0xe0 && cont(1) && cont(2)) {
      const cp = ((b & 0x0f) << 12) | ((bytes[i + 1]! & 0x3f) << 6) | (bytes[i + 2]! & 0x3f);
      out += cp >= 0xd800 && cp <= 0xdfff ? '\ufffd' : String.fromCodePoint(cp);
      i += 2;
    } else if ((b & 0xf8) === 0xf0 && cont(1) && cont(2) && cont(3)) {
      const cp = ((b & 0x07) << 18) | ((bytes[i + 1]! & 0x3f) << 12) | ((bytes[i + 2]! & 0x3f) << 6) | (bytes[i + 3]! & 0x3f);
      out += cp > 0x10ffff ? '\ufffd' : String.fromCodePoint(cp);
      i += 3;
    } else out += '\ufffd';
  }
  return out;
}

function resolveSegments(s: string): string {
  const out: string[] = [];
  for (const seg of s.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  // A trailing slash is part of the resource's name ("the collection"), not an empty segment.
  return '/' + out.join('/') + (out.length && s.endsWith('/') ? '/' : '');
}

function lenientRead(path: string): string {
  let s = path;
  for (let k = 0; k < 4; k++) {
    const d = lenientUtf8(percentBytes(s));
    if (d === s) break;
    s = d;
  }
  s = s.normalize('NFKC').replace(/\\/g, '/');
  return resolveSegments(
    s
      .split('/')
      .map((seg) => seg.split(';')[0]!)
      .join('/'),
  );
}

/** The strict reading: percent-decoded once, nothing else. */
function strictRead(path: string): string {
  return new TextDecoder().decode(Uint8Array.from(percentBytes(path)));
}

// ---------------------------------------------------------------------------------------------
// Generated spellings: a fixed table (the probe's own cases) plus seeded combinations of the
// tricky atoms, deterministic from run to run.
// ---------------------------------------------------------------------------------------------

const FIXED = [
  '/p;x/get',
  '/p/v1/x;x',
  '/p/v1;x/x',
  '/p/..;/open/get',
  '/p/a/%252e%252e/get',
  '/p/a/%252e%252e/%252e%252e/get',
  '/open/..;/p/get',
  '/open/%2e%2e/p/get',
  '/open/%252e%252e/p/get',
  '/open/%c0%ae%c0%ae/p/get',
  '/open/%ef%bc%8e%ef%bc%8e/p/get',
  '/open/\u2024\u2024/p/get',
  '/open/..%2fp/get',
  '/open/..%5cp/get',
  '/open/..\\p/get',
  '/open//../p/get',
  '/%70/get',
  '/%2570/get',
  '/%ef%bd%90/get',
  '/p/v1/%78',
  '/p/v1/x',
  '/p/v1/x/',
  '/p/get',
  '/open/get',
];

const SEPARATORS = ['/', '/', '/', '//', '%2f', '%2F', '%5c', '\\', '%252f', '/./', '/%2e/'];
const ATOMS = [
  'p',
  'v1',
  'x',
  'get',
  'open',
  'a',
  '.',
  '..',
  '...',
  '%2e',
  '%2E',
  '%2e%2e',
  '.%2e',
  '%2e.',
  '%252e',
  '%252e%252e',
  '%25252e',
  '..;',
  ';x',
  'v1;x',
  'x;y=1',
  ';',
  '%3b',
  '%3B',
  '..%3b',
  '%c0%ae',
  '%c0%ae%c0%ae',
  '%e0%80%ae',
  '%c0%af',
  '%ef%bc%8e',
  '%ef%bc%8e%ef%bc%8e',
  '%e2%80%a4',
  '\u2024',
  '\uff0e\uff0e',
  '%70',
  '%76%31',
  '%ef%bd%90',
  '%25%32%65',
  '%25',
  '100%25',
  '%41',
  '%zz',
  '%',
];
const PLAIN = ['p', 'v1', 'x', 'get', 'open', 'a', '...', '%70', '%76%31', '%41', '100%25', 'a.b', '~u'];
const PREFIXES = ['', '/p', '/p/v1', '/open', '/P'];

function seeded(seed: number): () => number {
  // mulberry32
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function generateSpellings(count: number): string[] {
  const rnd = seeded(18);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const out = new Set(FIXED);
  while (out.size < count) {
    let p = pick(PREFIXES);
    const n = 1 + Math.floor(rnd() * 4);
    // Half plain, so that forwarded paths are exercised as much as refused ones.
    for (let i = 0; i < n; i++) p += (rnd() < 0.6 ? '/' : pick(SEPARATORS)) + (rnd() < 0.5 ? pick(PLAIN) : pick(ATOMS));
    if (rnd() < 0.2) p += '/get';
    if (!p.startsWith('/')) p = '/' + p;
    out.add(p);
  }
  return [...out];
}

const SPELLINGS = generateSpellings(260);

/** What the probe's layout does with a path, read the lenient way: which API, and which route limits it. */
function expectedDecision(path: string): { api: 'open' | 'keyed'; rest: string; routeX: boolean } {
  const p = lenientRead(path);
  if (p === '/p' || p.startsWith('/p/')) {
    const rest = p.slice(2) || '/';
    return { api: 'keyed', rest, routeX: rest === '/v1/x' || rest === '/v1/x/' };
  }
  return { api: 'open', rest: p, routeX: false };
}

describe('path confusion (raw sockets, recording upstreams)', () => {
  it('refuses `;` path parameters that moved a keyed path onto the keyless API (`/p;x/get`)', async () => {
    const r = await probe('/p;x/get');
    expect(r.res.status).toBe(400);
    expect(r.open).toEqual([]);
    expect(r.keyed).toEqual([]);
  });

  it('refuses path parameters that escaped the limit of route /v1/x (`/p/v1/x;x`, `/p/v1;x/x`)', async () => {
    for (const target of ['/p/v1/x;x', '/p/v1;x/x', '/p/v1/x%3bx']) {
      const r = await probe(target, withKey());
      expect(r.res.status, target).toBe(400);
      expect(r.keyed, target).toEqual([]);
    }
  });

  it('refuses `..;` traversal (`/p/..;/open/get` was forwarded as `/..;/open/get`)', async () => {
    const r = await probe('/p/..;/open/get', withKey());
    expect(r.res.status).toBe(400);
    expect(r.keyed).toEqual([]);
    expect(r.open).toEqual([]);
  });

  it('refuses double-encoded dot segments (`/p/a/%252e%252e/get`) and their assembled forms', async () => {
    for (const target of ['/p/a/%252e%252e/get', '/p/a/%25%32%65%25%32%65/get', '/p/a%252fget', '/open/%252e%252e/p/get']) {
      const r = await probe(target, withKey());
      expect(r.res.status, target).toBe(400);
      expect([...r.keyed, ...r.open], target).toEqual([]);
    }
  });

  it('refuses overlong UTF-8 and Unicode dots (`%c0%ae`, `%ef%bc%8e`, raw U+2024)', async () => {
    for (const target of ['/open/%c0%ae%c0%ae/p/get', '/open/%ef%bc%8e%ef%bc%8e/p/get', '/open/\u2024\u2024/p/get', '/%ef%bd%90/get']) {
      const r = await probe(target);
      expect(r.res.status, target).toBeGreaterThanOrEqual(400);
      expect(r.res.status, target).toBeLessThan(500);
      expect(r.open, target).toEqual([]);
    }
  });

  it('forwards a plain path exactly as routed', async () => {
    const r = await probe('/p/v1/x?q=1', withKey());
    expect(r.res.status).toBe(200);
    expect(r.keyed).toEqual(['/v1/x?q=1']);
    expect(r.res.headers['ratelimit-policy']).toContain(`q=${LIMIT_ROUTE_X}`);
  });

  it(`differential: ${SPELLINGS.length} generated spellings are each refused or forwarded as exactly the path routed and limited`, async () => {
    expect(SPELLINGS.length).toBeGreaterThanOrEqual(200);
    const problems: string[] = [];
    let refused = 0;
    let forwarded = 0;
    for (const spelling of SPELLINGS) {
      for (const auth of [withKey(), {}]) {
        const { res, open, keyed } = await probe(spelling, auth);
        const label = `${JSON.stringify(spelling)}${'authorization' in auth ? '' : ' (no key)'} → ${res.status}`;
        if (res.status >= 400 && res.status < 500) {
          refused++;
          if (open.length || keyed.length) problems.push(`${label}: refused but reached an upstream (${[...open, ...keyed].join(', ')})`);
          continue;
        }
        if (res.status !== 200) {
          problems.push(`${label}: neither refused nor forwarded`);
          continue;
        }
        forwarded++;
        const got = open.length ? { api: 'open' as const, url: open } : { api: 'keyed' as const, url: keyed };
        if (open.length + keyed.length !== 1) {
          problems.push(`${label}: reached ${open.length + keyed.length} upstream requests`);
          continue;
        }
        const upstreamPath = got.url[0]!.split('?')[0]!;
        const want = expectedDecision(spelling);
        if (got.api !== want.api)
          problems.push(`${label}: routed to ${got.api}, but upstreams read it as ${lenientRead(spelling)} (${want.api})`);
        if (lenientRead(upstreamPath) !== strictRead(upstreamPath))
          problems.push(`${label}: forwarded ${upstreamPath}, which an upstream can read as ${lenientRead(upstreamPath)}`);
        if (lenientRead(upstreamPath) !== want.rest) problems.push(`${label}: forwarded ${upstreamPath}, not the routed path ${want.rest}`);
        const policy = res.headers['ratelimit-policy'] ?? '';
        const limitedByX = policy.includes(`q=${LIMIT_ROUTE_X}`);
        if (got.api === 'keyed' && limitedByX !== want.routeX)
          problems.push(`${label}: limited ${limitedByX ? 'by' : 'without'} route /v1/x, path reads as ${want.rest}`);
        if (got.api === 'open' && !policy.includes(`q=${LIMIT_KEYLESS}`)) problems.push(`${label}: keyless route limit missing`);
      }
    }
    expect(problems).toEqual([]);
    // Both outcomes occur: the table is not all refusals, nor all plain paths.
    expect(refused).toBeGreaterThan(100);
    expect(forwarded).toBeGreaterThan(60);
  }, 120_000);
});
