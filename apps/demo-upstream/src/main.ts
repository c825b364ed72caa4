import { createLogger, loadConfigOrExit } from '@tollgate/config';
import { createDemoUpstream } from './app';
import { loadDemoUpstreamConfig } from './env';

const config = loadConfigOrExit('demo-upstream', loadDemoUpstreamConfig, { exitCode: 2 });
const log = createLogger('demo-upstream', config.logLevel);
const { port, host } = config;
const server = createDemoUpstream({ maxDelayMs: config.maxDelayMs });

server.on('error', (err) => {
  log.fatal({ err: err.message, port, host }, 'demo upstream could not listen');
  process.exit(1);
});
server.listen(port, host, () => {
  const addr = server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  log.info({ url: `http://${host}:${bound}` }, 'demo upstream listening');
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
