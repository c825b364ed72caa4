import { getRuntime } from '../../shared/runtime';
import { getMetrics } from '../../shared/metrics';
import { createV1Handlers } from './v1';

/** The process's admin-API handlers, on the shared runtime (route files re-export these). */
export const v1 = createV1Handlers(() => {
  const rt = getRuntime();
  return { ...rt, consoleUrl: rt.config.consoleUrl, metrics: getMetrics() };
});
