// Port and readiness probes for the start script (node built-ins only: it runs before npm ci).
import net from 'node:net';
import http from 'node:http';

/** True when nothing listens on host:port (we can bind it ourselves). */
export function isPortFree(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/** Resolves true once `probe` does, false when `timeoutMs` passes or `alive()` turns false. */
export async function waitUntil(probe, { timeoutMs = 60_000, intervalMs = 200, alive = () => true } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive()) return false;
    try {
      if (await probe()) return true;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return false;
}

/** The HTTP status `url` answers with, or 0 when nothing answers. */
export function httpStatus(url, timeoutMs = 2000) {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

/** Sends Redis's inline PING and expects +PONG. */
export function redisPongs(port, host = '127.0.0.1', timeoutMs = 1000) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    let buf = '';
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
    sock.on('error', () => done(false));
  });
}

/**
 * A free port on 127.0.0.1 for a private server, below the kernel's ephemeral range (32768 and
 * up on Linux), where an outgoing connection could take it between the pick and the bind.
 */
export async function freeLocalPort() {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (await isPortFree(port)) return port;
  }
}
