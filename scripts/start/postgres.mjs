// A private PostgreSQL under the data dir for `npm start` when DATABASE_URL is unset: the
// system's own binaries where present, else PGlite (PostgreSQL compiled to WASM) served over
// the wire protocol. Either way the apps get an ordinary postgresql:// URL.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, chmodSync, chownSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { say, shown, warn } from './log.mjs';
import { isPortFree, waitUntil } from './net.mjs';

const DATABASE = 'tollgate';

function onPath(bin) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && existsSync(path.join(dir, bin))) return path.join(dir, bin);
  }
  return null;
}

/** initdb and postgres from the PATH, else from the newest /usr/lib/postgresql/<major>/bin. */
export function findPostgresBinaries() {
  const initdb = onPath('initdb');
  const postgres = onPath('postgres');
  if (initdb && postgres) return { initdb, postgres };
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const majors = readdirSync(base)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const major of majors) {
    const bin = path.join(base, major, 'bin');
    if (existsSync(path.join(bin, 'initdb')) && existsSync(path.join(bin, 'postgres'))) {
      return { initdb: path.join(bin, 'initdb'), postgres: path.join(bin, 'postgres') };
    }
  }
  return null;
}

/** PostgreSQL refuses to run as root; as root we run it as the `postgres` (else `nobody`) user. */
function serverUser() {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  const passwd = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((l) => l.split(':'));
  const entry = passwd.find((f) => f[0] === 'postgres') ?? passwd.find((f) => f[0] === 'nobody');
  if (!entry) throw new Error('running as root, and there is no postgres or nobody user to run PostgreSQL as');
  return { name: entry[0], uid: Number(entry[2]), gid: Number(entry[3]) };
}

/** The first parent of `dir` that `user` cannot enter (search permission), or null. */
export function unreachableParent(dir, user) {
  for (let d = path.dirname(dir); ; d = path.dirname(d)) {
    if (existsSync(d)) {
      const st = statSync(d);
      const ok = st.uid === user.uid ? st.mode & 0o100 : st.gid === user.gid ? st.mode & 0o010 : st.mode & 0o001;
      if (!ok) return d;
    }
    if (d === path.dirname(d)) return null;
  }
}

/**
 * Where the cluster lives: `<dataDir>/postgres`, unless the server user cannot reach it (a
 * checkout under /root, or any 0700 directory, while we run as root). Then a directory of the
 * checkout's own under /var/tmp (kept across reboots, unlike /tmp), named by the data dir so
 * each checkout keeps its own cluster.
 */
export function clusterDir(dataDir, user) {
  const preferred = path.join(dataDir, 'postgres');
  if (!user) return { pgdata: preferred, moved: null };
  const blocked = unreachableParent(preferred, user);
  if (!blocked) return { pgdata: preferred, moved: null };
  const id = createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 12);
  const base = path.join(process.env.TOLLGATE_PG_FALLBACK_DIR || '/var/tmp', `tollgate-${id}`);
  mkdirSync(base, { recursive: true, mode: 0o755 });
  chmodSync(base, 0o755);
  return { pgdata: path.join(base, 'postgres'), moved: blocked };
}

function chownTree(p, uid, gid) {
  chownSync(p, uid, gid);
  if (statSync(p).isDirectory()) for (const e of readdirSync(p)) chownTree(path.join(p, e), uid, gid);
}

/** The pid in postmaster.pid when that process is alive (a server outliving a killed start). */
function runningPostmaster(pgdata) {
  const pidFile = path.join(pgdata, 'postmaster.pid');
  if (!existsSync(pidFile)) return null;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    process.kill(pid, 0);
    // A reused pid belongs to something else: only a postgres process counts.
    const cmdline = `/proc/${pid}/cmdline`;
    if (existsSync(cmdline) && !readFileSync(cmdline, 'utf8').includes('postgres')) return null;
    return pid;
  } catch (err) {
    // EPERM: alive but not ours to signal (another user's server); ESRCH: a stale file.
    return err.code === 'EPERM' ? pid : null;
  }
}

export function loadPg(root) {
  return createRequire(path.join(root, 'package.json'))('pg');
}

export async function canQuery(pg, url) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } finally {
    await client.end().catch(() => {});
  }
}

async function ensureDatabase(pg, adminUrl, name) {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (!rowCount) {
      await client.query(`create database "${name}"`);
      say(`created database ${name}`);
    }
  } finally {
    await client.end();
  }
}

/**
 * Starts PostgreSQL from the system binaries under `<dataDir>/postgres`; returns its URL.
 * @param {{ sup: import('./supervisor.mjs').Supervisor, root: string, dataDir: string, port: number, bins: {initdb: string, postgres: string}, onExit: () => void }} o
 */
export async function startSystemPostgres({ sup, root, dataDir, port, bins, onExit }) {
  const user = serverUser();
  const { pgdata, moved } = clusterDir(dataDir, user);
  const ids = user ? { uid: user.uid, gid: user.gid } : {};
  const env = { ...process.env, LC_ALL: 'C', LANG: 'C' };
  if (moved) say(`PostgreSQL runs as ${user.name}, which cannot enter ${moved}: its cluster lives in ${pgdata} instead`);

  if (!existsSync(path.join(pgdata, 'PG_VERSION'))) {
    say(`creating a PostgreSQL cluster in ${shown(root, pgdata)}${user ? ` (owned by ${user.name})` : ''}`);
    rmSync(pgdata, { recursive: true, force: true });
    mkdirSync(pgdata, { recursive: true, mode: 0o700 });
    if (user) chownSync(pgdata, user.uid, user.gid);
    const code = await sup.run(
      'postgres',
      bins.initdb,
      ['-D', pgdata, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-instructions'],
      { env, cwd: path.dirname(pgdata), ...ids },
    );
    if (code !== 0) {
      rmSync(pgdata, { recursive: true, force: true }); // a half-made cluster would fail every later run
      throw new Error(`initdb failed (exit ${code})`);
    }
  } else {
    say(`reusing the PostgreSQL cluster in ${shown(root, pgdata)}`);
    if (user && statSync(pgdata).uid !== user.uid) chownTree(pgdata, user.uid, user.gid);
    chmodSync(pgdata, 0o700);
  }

  const leftover = runningPostmaster(pgdata);
  if (leftover) {
    throw new Error(
      `a PostgreSQL from an earlier run still uses ${shown(root, pgdata)} (pid ${leftover}); stop that \`npm start\`, or end the server with: kill -INT ${leftover}`,
    );
  }
  if (!(await isPortFree(port))) {
    throw new Error(
      `port ${port} is taken (is another \`npm start\` running?); set TOLLGATE_PG_PORT to another port or DATABASE_URL to a server`,
    );
  }
  const svc = sup.start(
    'postgres',
    bins.postgres,
    ['-D', pgdata, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200'],
    // SIGINT is PostgreSQL's "fast" shutdown: roll back open transactions, checkpoint, exit.
    { env, cwd: path.dirname(pgdata), stopSignal: 'SIGINT', onExit, ...ids },
  );
  const pg = loadPg(root);
  const adminUrl = `postgresql://postgres@127.0.0.1:${port}/postgres`;
  if (!(await waitUntil(() => canQuery(pg, adminUrl), { timeoutMs: 60_000, alive: () => !svc.exited }))) {
    throw new Error('PostgreSQL did not accept connections within 60s (see the [postgres] lines above)');
  }
  await ensureDatabase(pg, adminUrl, DATABASE);
  return `postgresql://postgres@127.0.0.1:${port}/${DATABASE}`;
}

/**
 * The fallback when no PostgreSQL binaries exist: PGlite behind @electric-sql/pglite-socket.
 * PGlite is one database in one process, so everything shares the `postgres` database.
 */
export async function startPglite({ sup, root, dataDir, port, onExit }) {
  // The package exports no package.json and no script path, so find its folder directly.
  const server = path.join(root, 'node_modules/@electric-sql/pglite-socket/dist/scripts/server.js');
  if (!existsSync(server)) {
    throw new Error(
      'no PostgreSQL binaries were found and @electric-sql/pglite-socket is not installed; install PostgreSQL or set DATABASE_URL',
    );
  }
  warn('no PostgreSQL binaries found (initdb/postgres): using embedded PGlite instead; fine for a demo, not for load');
  const dbDir = path.join(dataDir, 'pglite');
  mkdirSync(dbDir, { recursive: true });
  say(`${existsSync(path.join(dbDir, 'PG_VERSION')) ? 'reusing' : 'creating'} the PGlite database in ${shown(root, dbDir)}`);
  if (!(await isPortFree(port))) {
    throw new Error(
      `port ${port} is taken (is another \`npm start\` running?); set TOLLGATE_PG_PORT to another port or DATABASE_URL to a server`,
    );
  }
  const svc = sup.start(
    'postgres',
    process.execPath,
    [server, `--db=${dbDir}`, `--port=${port}`, '--host=127.0.0.1', '--max-connections=100'],
    {
      env: process.env,
      cwd: root,
      stopSignal: 'SIGINT',
      onExit,
    },
  );
  const pg = loadPg(root);
  const url = `postgresql://postgres:postgres@127.0.0.1:${port}/postgres`;
  if (!(await waitUntil(() => canQuery(pg, url), { timeoutMs: 120_000, alive: () => !svc.exited }))) {
    throw new Error('PGlite did not accept connections within 120s (see the [postgres] lines above)');
  }
  return url;
}
