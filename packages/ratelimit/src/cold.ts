import type { Redis } from 'ioredis';
import type { RedisBreaker } from './breaker';
import { COLD_DECIDE_LUA } from './lua';
import { QUOTA_EXPIRY_GRACE_MS } from './redis-limiter';
import type { Unavailable } from './types';

const COMMAND = 'tollgateColdDecideV1';

/** What the cold-key script found (see COLD_DECIDE_LUA). */
export type ColdReply =
  | { kind: 'missing' }
  /** The record as stored (JSON text), not decided: the caller checks it and decides itself. */
  | { kind: 'record'; raw: string }
  /** The record and its decision: `keys` the script charged, `reply` in DECIDE_LUA's layout (reply[0] = Redis ms). */
  | { kind: 'decided'; raw: string; keys: string[]; reply: number[] };

export type ColdDeciderOptions = {
  /** A single Redis (not a Cluster: the script builds its keys from the record). */
  redis: Redis;
  breaker?: RedisBreaker | null;
  /** Upper bound on the wait; past it the answer is `unavailable` and the breaker counts a failure. Default 1000 ms. */
  timeoutMs?: number;
};

export type ColdDecider = {
  /**
   * One round trip: the record at `recordKey` and, when it passes, its decision. `context` is the
   * route's encoded context (see COLD_DECIDE_LUA), `now` the gateway's clock, `month` the calendar
   * month around it (the period of keys published without one).
   */
  run(recordKey: string, context: string, now: number, month: { start: number; end: number }): Promise<ColdReply | Unavailable>;
  readonly stats: { calls: number; decided: number };
};

type ColdCommand = (numKeys: number, ...args: string[]) => Promise<string>;

export function createColdDecider({ redis, breaker = null, timeoutMs = 1000 }: ColdDeciderOptions): ColdDecider {
  const client = redis as Redis & Record<string, ColdCommand | undefined>;
  if (typeof client[COMMAND] !== 'function') client.defineCommand(COMMAND, { lua: COLD_DECIDE_LUA });
  const run = client[COMMAND]!.bind(client);
  const stats = { calls: 0, decided: 0 };
  const grace = String(QUOTA_EXPIRY_GRACE_MS);

  function parse(text: string): ColdReply | null {
    if (text === 'M') return { kind: 'missing' };
    if (text.startsWith('N|')) return { kind: 'record', raw: text.slice(2) };
    if (!text.startsWith('D|')) return null;
    const a = text.indexOf('|', 2);
    const b = a < 0 ? -1 : text.indexOf('|', a + 1);
    if (b < 0) return null;
    const reply = JSON.parse(`[${text.slice(a + 1, b)}]`) as number[];
    stats.decided++;
    return { kind: 'decided', keys: text.slice(2, a).split(' '), reply, raw: text.slice(b + 1) };
  }

  return {
    stats,
    run(recordKey, context, now, month) {
      if (client.status !== 'ready')
        return Promise.resolve({ kind: 'unavailable', reason: 'not_connected', message: `redis is ${client.status}` });
      if (breaker !== null && !breaker.allow())
        return Promise.resolve({ kind: 'unavailable', reason: 'breaker_open', message: 'redis is unavailable (breaker open)' });
      stats.calls++;
      return new Promise((resolve) => {
        let done = false;
        // Expired from the check phase, after the I/O of the turn (see the limiter's expireAfterIo).
        const timer = setTimeout(
          () =>
            setImmediate(() => {
              if (done) return;
              done = true;
              breaker?.failure();
              resolve({ kind: 'unavailable', reason: 'timeout', message: `redis did not answer within ${timeoutMs} ms` });
            }),
          timeoutMs,
        );
        run(1, recordKey, context, String(now), String(month.start), String(month.end), grace).then(
          (text) => {
            breaker?.success();
            if (done) return;
            done = true;
            clearTimeout(timer);
            let parsed: ColdReply | null = null;
            try {
              parsed = parse(text);
            } catch {
              parsed = null;
            }
            resolve(parsed ?? { kind: 'unavailable', reason: 'error', message: 'malformed reply from the cold-key script' });
          },
          (err: Error) => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            // A script error is an answer: Redis is there (the caller decides the ordinary way).
            if (err.name === 'ReplyError') breaker?.success();
            else breaker?.failure();
            resolve({ kind: 'unavailable', reason: 'error', message: err.message });
          },
        );
      });
    },
  };
}
