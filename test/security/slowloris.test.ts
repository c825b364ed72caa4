import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAttackBed, type AttackBed } from './fixtures';

// Slowloris: headers trickled a byte at a time must be cut when the headers timeout says, not
// at Node's next 30 s connection sweep.

const HEADERS_TIMEOUT_MS = 2000;
let bed: AttackBed;

beforeAll(async () => {
  bed = await startAttackBed({ GATEWAY_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS) });
});

afterAll(async () => {
  await bed?.close();
});

describe('slowloris', () => {
  it('closes a connection trickling header bytes within ~1 s of the headers timeout', async () => {
    const start = performance.now();
    const sock = connect(bed.port, '127.0.0.1');
    const head = `GET /open/get HTTP/1.1\r\nHost: ${bed.host}\r\nX-Slow: `;
    let i = 0;
    sock.write(head);
    // The attack itself: one more byte every 250 ms, never finishing the headers.
    const drip = setInterval(() => {
      if (!sock.destroyed) sock.write('a'.repeat(1 + (i++ % 2)));
    }, 250);
    let response = '';
    sock.on('data', (c: Buffer) => (response += c.toString('latin1')));
    const closedAt = await new Promise<number>((resolve) => {
      sock.on('close', () => resolve(performance.now()));
      sock.on('error', () => undefined);
    });
    clearInterval(drip);
    const elapsed = closedAt - start;
    expect(elapsed).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
    expect(elapsed).toBeLessThan(HEADERS_TIMEOUT_MS + 1000);
    expect(response).toMatch(/^HTTP\/1\.1 408 /);
    expect(bed.open.requests.length).toBe(0);
  }, 20_000);
});
