// The console's process: Next.js behind a small HTTP server of our own, because `next start`
// doesn't tell route handlers or server actions the socket's address. Per request it resolves
// the client address (the socket peer; behind TRUST_PROXY the right-most X-Forwarded-For entry
// that isn't one of our proxies) and hands it to the app in CLIENT_IP_HEADER after deleting any
// client-sent copy, and it lets the app answer a refused login with 429 (ADR 0023).
//   node dist/main.js          production (after `npm run build`)
//   node --import tsx src/main.ts --dev
import { createServer, type ServerResponse } from 'node:http';
import next from 'next';
import { createLogger } from '@tollgate/config';
import { loadConsoleConfig } from './env';
import { resolveClientIp } from './client-ip';
import { CLIENT_IP_HEADER, markOwnServer, requestScopes, type RequestScope } from './server/shared/request-scope';

/** Makes the response carry scope.status instead of a 200 once the app has asked for one. */
function applyScopeStatus(res: ServerResponse, scope: RequestScope): void {
  const writeHead = res.writeHead;
  res.writeHead = function (this: ServerResponse, statusCode: number, ...rest: unknown[]) {
    if (scope.status && statusCode === 200) {
      statusCode = scope.status;
      if (typeof rest[0] === 'string') rest.shift(); // the reason phrase of the 200
      for (const [k, v] of Object.entries(scope.headers)) this.setHeader(k, v);
    }
    return (writeHead as (...a: unknown[]) => ServerResponse).call(this, statusCode, ...rest);
  } as typeof res.writeHead;
}

async function main() {
  const dev = process.argv.includes('--dev');
  const config = loadConsoleConfig();
  const log = createLogger('console', config.logLevel);
  const app = next({ dev, dir: process.cwd(), hostname: config.consoleHost, port: config.consolePort });
  const handle = app.getRequestHandler();
  await app.prepare();
  markOwnServer();
  const clientIp = resolveClientIp(config);
  const scopes = requestScopes();

  const server = createServer((req, res) => {
    // Ours alone: a client's copy (any spelling Node folds to this name) is dropped first.
    delete req.headers[CLIENT_IP_HEADER];
    req.headers[CLIENT_IP_HEADER] = clientIp(req);
    const scope: RequestScope = { headers: {} };
    applyScopeStatus(res, scope);
    scopes.run(scope, () => {
      handle(req, res).catch((err: unknown) => {
        log.error({ err }, 'request failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('internal error');
      });
    });
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.consolePort, config.consoleHost, resolve);
  });
  log.info({ port: config.consolePort, host: config.consoleHost, dev, trustProxy: config.trustProxy }, 'console listening');

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'console stopping');
    server.close(() => {
      void app.close().finally(() => process.exit(0));
    });
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 10_000).unref();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`console failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
