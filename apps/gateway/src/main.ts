import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import { createLogger, loadConfigOrExit } from '@tollgate/config';
import { createAdminServer } from './admin/admin-server';
import { loadGatewayConfig } from './env';
import { gcMode, SINGLE_THREADED_GC_FLAG, workerExecArgv } from './gc-mode';
import { createGateway, startAdminServer } from './server';

/**
 * One process per core (node:cluster), sharing nothing but Redis. The primary only supervises:
 * it restarts crashed workers, serves the admin port with metrics aggregated over workers, and
 * on SIGTERM lets every worker drain and flush its usage buffer before exiting.
 * With GATEWAY_WORKERS=1 the gateway runs in this process, no cluster.
 */
const config = loadConfigOrExit('tollgate gateway', loadGatewayConfig);
const logger = createLogger('gateway', config.logLevel);

type WorkerMessage = { type: 'tg:ready'; ready: boolean } | { type: 'tg:listening'; port: number; tlsPort: number | null };

async function runGateway(workerIndex: number): Promise<void> {
  const gc = gcMode();
  if (config.singleThreadedGc && gc !== 'single-threaded' && !cluster.isWorker) {
    // A V8 flag can't be turned on once the process runs; only the command line can.
    logger.warn(
      `GATEWAY_SINGLE_THREADED_GC is on but node was started without ${SINGLE_THREADED_GC_FLAG}: start the gateway as \`node ${SINGLE_THREADED_GC_FLAG} dist/main.js\` (npm start and the container image do)`,
    );
  }
  const gw = await createGateway(config, { workerIndex, clustered: cluster.isWorker, logger });
  const admin = cluster.isWorker ? null : startAdminServer(gw);
  const { port, tlsPort } = await gw.listen();
  let adminPort: number | null = null;
  if (admin) {
    await new Promise<void>((resolve) => admin.listen(config.adminPort, config.adminHost, resolve));
    adminPort = (admin.address() as { port: number }).port;
  }
  logger.info({ port, tlsPort, adminPort, workerIndex, pid: process.pid, gc }, 'gateway listening');
  if (cluster.isWorker) {
    // The constructor installs the worker's IPC listener that answers the primary's scrapes.
    new AggregatorRegistry();
    AggregatorRegistry.setRegistries([gw.metrics.registry]);
    const report = () => process.send?.({ type: 'tg:ready', ready: gw.isReady() } satisfies WorkerMessage);
    report();
    setInterval(report, 1000).unref();
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining');
    try {
      await gw.shutdown();
      admin?.close();
      logger.info('drained; exiting');
      process.exit(0);
    } catch (err) {
      logger.error({ err }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // In a worker the primary's disconnect means it is going away: drain too.
  if (cluster.isWorker) process.on('disconnect', () => void stop('disconnect'));
}

function runPrimary(): void {
  const readiness = new Map<number, boolean>();
  const slots = new Map<number, number>(); // worker id → slot index
  let stopping = false;
  // Workers are new processes, so the primary can give them the GC mode the configuration asks
  // for whatever its own command line said (docs/adr/0014).
  cluster.setupPrimary({ execArgv: workerExecArgv(process.execArgv, config.singleThreadedGc) });
  const fork = (slot: number) => {
    const w = cluster.fork({ TG_WORKER_INDEX: String(slot) });
    slots.set(w.id, slot);
    w.on('message', (m: WorkerMessage) => {
      if (m?.type === 'tg:ready') readiness.set(w.id, m.ready);
    });
  };
  for (let i = 0; i < config.workers; i++) fork(i);
  cluster.on('exit', (w: Worker, code, signal) => {
    readiness.delete(w.id);
    const slot = slots.get(w.id) ?? 0;
    slots.delete(w.id);
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    logger.error({ pid: w.process.pid, code, signal }, 'worker died; restarting');
    setTimeout(() => fork(slot), 250);
  });
  const aggregator = new AggregatorRegistry();
  const admin = createAdminServer({
    healthy: () => true,
    ready: () => !stopping && readiness.size === config.workers && [...readiness.values()].every(Boolean),
    metrics: async () => ({ contentType: aggregator.contentType, body: await await aggregator.clusterMetrics() }),
    details: () => ({ workers: config.workers, readyWorkers: [...readiness.values()].filter(Boolean).length }),
  });
  admin.listen(config.adminPort, config.adminHost, () => {
    logger.info({ adminPort: (admin.address() as { port: number }).port, workers: config.workers }, 'gateway primary started');
  });
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping workers');
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    setTimeout(() => process.exit(1), config.shutdownGraceMs + 10_000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (cluster.isPrimary && config.workers > 1) {
  runPrimary();
} else {
  const index = Number(process.env.TG_WORKER_INDEX ?? 0);
  runGateway(index).catch((err) => {
    logger.fatal({ err }, 'gateway failed to start');
    process.exit(1);
  });
}
