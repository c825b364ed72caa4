// Runs the platform's processes: one-shot steps (install, migrate, seed, build) and long-lived
// services, each in its own process group so a stop reaches npm, its shell and the node
// process under them alike. Services stop in the reverse of the order they started.
import { spawn } from 'node:child_process';
import { eachLine, fail, paint, say, writeLine } from './log.mjs';

const STOP_TIMEOUT_MS = 15_000;

export class Supervisor {
  /** @type {{ name: string, child: import('node:child_process').ChildProcess, stopSignal: NodeJS.Signals, done: Promise<number|null>, exited: boolean }[]} */
  services = [];
  /** @type {Set<import('node:child_process').ChildProcess>} */
  steps = new Set();
  stopping = false;

  #launch(name, cmd, args, { env, cwd, uid, gid, onLine }) {
    const child = spawn(cmd, args, {
      cwd,
      env,
      uid,
      gid,
      detached: true, // own process group: Ctrl-C reaches us alone, and we stop children in order
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const handle = (line) => {
      if (onLine) onLine(line);
      writeLine(name, line);
    };
    eachLine(child.stdout, handle);
    eachLine(child.stderr, handle);
    const done = new Promise((resolve) => {
      child.on('error', (err) => {
        writeLine(name, paint('red', `could not start ${cmd}: ${err.message}`));
        resolve(127);
      });
      child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
    return { child, done };
  }

  /** Runs a command to completion under a prefix; resolves with its exit code. */
  async run(name, cmd, args, opts = {}) {
    if (this.stopping) return 130;
    const { child, done } = this.#launch(name, cmd, args, opts);
    this.steps.add(child);
    const code = await done;
    this.steps.delete(child);
    return code;
  }

  /**
   * Starts a long-lived service. `onExit` hears about an exit the supervisor did not ask for.
   * @returns the service record (its `done` promise resolves with the exit code)
   */
  start(name, cmd, args, { stopSignal = 'SIGTERM', onExit, ...opts } = {}) {
    // A stop that arrived while we were still starting things wins: start nothing more.
    if (this.stopping) return { name, child: null, stopSignal, done: Promise.resolve(130), exited: true };
    const { child, done } = this.#launch(name, cmd, args, opts);
    const svc = { name, child, stopSignal, done, exited: false };
    this.services.push(svc);
    done.then((code) => {
      svc.exited = true;
      if (!this.stopping) {
        writeLine(name, paint('red', `exited unexpectedly (code ${code})`));
        onExit?.(code);
      }
    });
    return svc;
  }

  #signal(child, sig) {
    try {
      process.kill(-child.pid, sig);
    } catch {
      try {
        child.kill(sig);
      } catch {
        /* already gone */
      }
    }
  }

  /** Stops every step and service, newest first; waits for each before the next. */
  async stopAll() {
    if (this.stopping) return;
    this.stopping = true;
    for (const child of this.steps) this.#signal(child, 'SIGTERM');
    for (const svc of [...this.services].reverse()) {
      if (svc.exited) continue;
      say(`stopping ${svc.name}…`);
      this.#signal(svc.child, svc.stopSignal);
      const timer = new Promise((r) => setTimeout(() => r('timeout'), STOP_TIMEOUT_MS).unref());
      if ((await Promise.race([svc.done, timer])) === 'timeout') {
        fail(`${svc.name} did not stop within ${STOP_TIMEOUT_MS / 1000}s; killing it`);
        this.#signal(svc.child, 'SIGKILL');
        await svc.done;
      }
    }
  }

  /** Kills everything at once (a second Ctrl-C). */
  killAll() {
    for (const child of this.steps) this.#signal(child, 'SIGKILL');
    for (const svc of this.services) if (!svc.exited) this.#signal(svc.child, 'SIGKILL');
  }
}
