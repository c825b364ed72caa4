import { hostname } from 'node:os';

/**
 * The name a gateway process puts on its usage batches, which also names its spool file. It must
 * be unique among processes sharing a spool directory and stable across restarts of the same
 * slot, so a replacement replays its predecessor's spool. GATEWAY_INSTANCE_ID names the instance
 * (a pod, a container); with GATEWAY_WORKERS > 1 each cluster worker adds its slot index, or
 * every worker would claim the same spool file and all but one would crash-loop on its lock.
 */
export function usageSourceName(instanceId: string | null, workerIndex: number, clustered: boolean, host: string = hostname()): string {
  if (!instanceId) return `${host}-${workerIndex}`;
  return clustered ? `${instanceId}-${workerIndex}` : instanceId;
}
