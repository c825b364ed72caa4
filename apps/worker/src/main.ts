import { createLogger, loadConfigOrExit } from '@tollgate/config';
import { loadWorkerConfig } from './env';
import { startWorkerApp } from './app';

const config = loadConfigOrExit('tollgate worker', loadWorkerConfig);
const logger = createLogger('worker', config.logLevel);
const app = await startWorkerApp(config, logger);
logger.info({ port: app.port }, 'worker started');

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down: finishing active jobs');
  // A second signal or a hung close still ends the process; unfinished batches are redelivered.
  const force = setTimeout(() => process.exit(1), 25_000);
  force.unref();
  try {
    await app.stop();
    process.exit(0);
  } catch (err) {
    logger.error({ err }, 'shutdown failed');
    process.exit(1);
  }
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
