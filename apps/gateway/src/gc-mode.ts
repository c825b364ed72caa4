/**
 * How V8 collects garbage in a gateway process (docs/adr/0014). With `--single-threaded-gc` all
 * of it runs on the JavaScript thread, in small incremental steps, and V8 starts no background
 * GC threads. A gateway runs one process per core, so those threads could only run on a core
 * another process (or this one's own JavaScript thread) needs: there they took turns with the
 * event loop and held requests for a scheduler slice at a time.
 */
export const SINGLE_THREADED_GC_FLAG = '--single-threaded-gc';
const NO_SINGLE_THREADED_GC_FLAG = '--no-single-threaded-gc';

export type GcMode = 'single-threaded' | 'v8-default';

/** The mode this process runs in; a V8 flag is fixed at start, so only the command line tells. */
export function gcMode(execArgv: readonly string[] = process.execArgv): GcMode {
  let on = false;
  for (const arg of execArgv) {
    if (arg === SINGLE_THREADED_GC_FLAG) on = true;
    else if (arg === NO_SINGLE_THREADED_GC_FLAG) on = false;
  }
  return on ? 'single-threaded' : 'v8-default';
}

/** node:cluster workers' flags: the primary's own, with the GC mode the configuration asks for. */
export function workerExecArgv(execArgv: readonly string[], singleThreadedGc: boolean): string[] {
  const rest = execArgv.filter((a) => a !== SINGLE_THREADED_GC_FLAG && a !== NO_SINGLE_THREADED_GC_FLAG);
  return singleThreadedGc ? [...rest, SINGLE_THREADED_GC_FLAG] : rest;
}
