import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fastUlid, isRequestId } from '@tollgate/policy';
import { exchange, rawGet, startAttackBed, type AttackBed, type RawResponse } from './fixtures';

// One request-id scheme (docs/architecture.md, "Request ids"): X-Request-Id, a ULID, made by the
// gateway unless a trusted proxy sent one in that form. Whatever else a client sends in that
// header (overlong, control characters, CR/LF, another format) is replaced, never echoed.

let open: AttackBed; // no trusted proxies (the default)
let behindProxy: AttackBed; // the test client's 127.0.0.1 is a trusted proxy

beforeAll(async () => {
  open = await startAttackBed();
  behindProxy = await startAttackBed({ GATEWAY_TRUSTED_PROXIES: '127.0.0.1' });
});

afterAll(async () => {
  await open?.close();
  await behindProxy?.close();
});

async function call(bed: AttackBed, headers: Record<string, string>, key = bed.key.key) {
  const n = bed.keyed.requests.length;
  const res = await exchange(bed.port, rawGet('/p/get', bed.host, { authorization: `Bearer ${key}`, ...headers }));
  return { res, seen: bed.keyed.requests.length > n ? bed.keyed.requests[n]! : null };
}

/** The id the gateway gave the request: a ULID, the same in the header and in an error body. */
function idOf(res: RawResponse): string {
  const id = res.headers['x-request-id']!;
  expect(isRequestId(id), res.raw.slice(0, 300)).toBe(true);
  if (res.status >= 400) expect((JSON.parse(res.body) as { error: { requestId: string } }).error.requestId).toBe(id);
  return id;
}

describe('request ids (raw sockets, recording upstream)', () => {
  it('makes its own id for a client that is not a trusted proxy, even a well-formed one, and sends the same id upstream', async () => {
    const theirs = fastUlid();
    const { res, seen } = await call(open, { 'X-Request-Id': theirs });
    expect(res.status).toBe(200);
    const id = idOf(res);
    expect(id).not.toBe(theirs);
    expect(seen!.headers['x-request-id']).toBe(id);
    expect(seen!.headers['x-tollgate-request-id']).toBe(id);
    // The client's own id reaches the upstream only under a name of its own.
    expect(seen!.headers['x-client-request-id']).toBe(theirs);
  });

  it("keeps a trusted proxy's ULID end to end: response, upstream and error body", async () => {
    const theirs = fastUlid();
    const { res, seen } = await call(behindProxy, { 'X-Request-Id': theirs });
    expect(res.status).toBe(200);
    expect(idOf(res)).toBe(theirs);
    expect(seen!.headers['x-request-id']).toBe(theirs);
    expect(seen!.headers['x-tollgate-request-id']).toBe(theirs);
    expect(seen!.headers['x-client-request-id']).toBeUndefined();

    const refused = fastUlid();
    const bad = await call(behindProxy, { 'X-Request-Id': refused }, 'tg_live_notarealkeyatall');
    expect(bad.res.status).toBe(401);
    expect(idOf(bad.res)).toBe(refused);
    expect(bad.seen).toBeNull();
  });

  it('replaces hostile ids even from a trusted proxy: overlong, control characters, CR/LF, other formats', async () => {
    const good = fastUlid();
    const hostile: Record<string, string> = {
      overlong: good + 'A'.repeat(4000),
      'one character too long': `${good}0`,
      'control character': `${good.slice(0, 25)}\u0001`,
      'DEL character': `${good.slice(0, 25)}\u007f`,
      'NUL character': `${good.slice(0, 13)}\u0000${good.slice(14)}`,
      'CR/LF header injection': `${good.slice(0, 13)}\r\nX-Injected: 1`,
      'bare LF': `${good.slice(0, 13)}\n${good.slice(14)}`,
      'lower case': good.toLowerCase(),
      UUID: '550e8400-e29b-41d4-a716-446655440000',
      'console style': `req_${'0f'.repeat(10)}`,
      'quotes and spaces': `"${good.slice(0, 20)}" x`,
      'non-ASCII': `${good.slice(0, 24)}é`,
    };
    for (const [what, value] of Object.entries(hostile)) {
      for (const bed of [behindProxy, open]) {
        const { res, seen } = await call(bed, { 'X-Request-Id': value });
        // Node refuses some of these before the gateway sees them (400); either way, a fresh id.
        expect([200, 400], what).toContain(res.status);
        const id = idOf(res);
        expect(id, what).not.toBe(value);
        // Not echoed by the gateway (a 200's body is the upstream's echo of what it was sent).
        expect(res.raw.slice(0, res.raw.indexOf('\r\n\r\n')), what).not.toContain(value);
        if (res.status >= 400) expect(res.body, what).not.toContain(value);
        if (seen) {
          expect(seen.headers['x-request-id'], what).toBe(id);
          expect(seen.headers['x-tollgate-request-id'], what).toBe(id);
        }
      }
    }
  });
});
