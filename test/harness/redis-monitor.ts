import net from 'node:net';

/** One command Redis executed, as MONITOR reports it. */
export type MonitoredCommand = { time: string; source: string; args: string[] };

export type RedisMonitor = {
  on(listener: (cmd: MonitoredCommand) => void): void;
  close(): void;
};

/**
 * Watches every command a Redis server executes (MONITOR) over a raw socket.
 *
 * ioredis' own monitor mode switches its reply handling only after the `+OK` has been handled,
 * so a busy host that delivers `+OK` and the first monitored command in one chunk makes it throw
 * "Command queue state error". Here the stream is parsed line by line: nothing is lost or misread.
 * Resolves once MONITOR is active, so every command sent after it is seen.
 */
export function startRedisMonitor(url: string): Promise<RedisMonitor> {
  const u = new URL(url);
  const listeners: Array<(cmd: MonitoredCommand) => void> = [];
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 6379) });
    let buf = '';
    let active = false;
    const monitor: RedisMonitor = {
      on: (l) => void listeners.push(l),
      close: () => socket.destroy(),
    };
    socket.setEncoding('utf8');
    socket.once('error', reject);
    socket.on('connect', () => {
      const auth = u.password ? [u.username || 'default', decodeURIComponent(u.password)] : null;
      if (auth) socket.write(encodeCommand(['AUTH', ...auth]));
      const db = u.pathname.replace('/', '');
      if (db) socket.write(encodeCommand(['SELECT', db]));
      socket.write(encodeCommand(['MONITOR']));
    });
    let okToSkip = (u.password ? 1 : 0) + (u.pathname.replace('/', '') ? 1 : 0);
    socket.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\r\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (line.startsWith('-')) {
          socket.destroy();
          reject(new Error(`Redis refused MONITOR: ${line.slice(1)}`));
          return;
        }
        if (!active) {
          if (okToSkip > 0) okToSkip--;
          else if (line === '+OK') {
            active = true;
            resolve(monitor);
          }
          continue;
        }
        const cmd = parseMonitorLine(line);
        if (cmd) for (const l of listeners) l(cmd);
      }
    });
  });
}

function encodeCommand(args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b', '"': '"', '\\': '\\' };

/** `+1796663454.932905 [0 127.0.0.1:38466] "del" "key"` → time, source, args (Redis' sdscatrepr quoting). */
export function parseMonitorLine(line: string): MonitoredCommand | null {
  const m = /^\+(\d+\.\d+) \[\d+ ([^\]]+)\] (.*)$/.exec(line);
  if (!m) return null;
  const args: string[] = [];
  const rest = m[3]!;
  let i = 0;
  while (i < rest.length) {
    if (rest[i] !== '"') {
      i++;
      continue;
    }
    let s = '';
    i++;
    while (i < rest.length && rest[i] !== '"') {
      if (rest[i] === '\\') {
        const next = rest[i + 1]!;
        if (next === 'x') {
          s += String.fromCharCode(parseInt(rest.slice(i + 2, i + 4), 16));
          i += 4;
        } else {
          s += ESCAPES[next] ?? next;
          i += 2;
        }
      } else s += rest[i++];
    }
    args.push(s);
    i++;
  }
  return { time: m[1]!, source: m[2]!, args };
}
