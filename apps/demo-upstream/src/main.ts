import { z } from 'zod';
import { createLogger, EnvError, parseEnv } from '@tollgate/config';
import { createDemoUpstream } from './app';

const Port = z.coerce.number().int().min(0).max(65535);

let env;
try {
  env = parseEnv({
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    DEMO_UPSTREAM_PORT: Port.optional(),
    // `npm start`'s supervisor hands every app its port as PORT.
    PORT: Port.optional(),
    DEMO_UPSTREAM_HOST: z.string().min(1).default('127.0.0.1'),
    DEMO_UPSTREAM_MAX_DELAY_MS: z.coerce.number().int().min(0).max(600_000).default(10_000),
  });
} catch (err) {
  if (!(err instanceof EnvError)) throw err;
  process.stderr.write(`demo-upstream: ${err.message}\n`);
  process.exit(2);
}

const log = createLogger('demo-upstream', env.LOG_LEVEL);
const port = env.DEMO_UPSTREAM_PORT ?? env.PORT ?? 4000;
const server = createDemoUpstream({ maxDelayMs: env.DEMO_UPSTREAM_MAX_DELAY_MS });

server.on('error', (err) => {
  log.fatal({ err: err.message, port, host: env.DEMO_UPSTREAM_HOST }, 'demo upstream could not listen');
  process.exit(1);
});
server.listen(port, env.DEMO_UPSTREAM_HOST, () => {
  const addr = server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  log.info({ url: `http://${env.DEMO_UPSTREAM_HOST}:${bound}` }, 'demo upstream listening');
});

function shutdown(signal: string) {
  log.info({ signal }, 'demo upstream stopping');
  // In-flight requests finish; idle keep-alive sockets close now; a stuck one can't hold us forever.
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => {
    server.closeAllConnections();
    process.exit(0);
  }, 5000).unref();
}
process.once('SIGTERM', () => shutdown('SIGTERM'));
process.once('SIGINT', () => shutdown('SIGINT'));
