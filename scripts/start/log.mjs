// Prefixed, coloured log lines for the processes `npm start` supervises. Children log pino
// JSON; a person at a terminal wants "12:01:02 INFO listening port=8080", so JSON lines are
// condensed here, and anything else passes through unchanged.

import path from 'node:path';

const useColour = (() => {
  if (process.env.NO_COLOR) return false;
  if (process.env.FORCE_COLOR && process.env.FORCE_COLOR !== '0') return true;
  return Boolean(process.stdout.isTTY);
})();

const CODES = { red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36, grey: 90, bold: 1 };
export const paint = (colour, text) => (useColour ? `\x1b[${CODES[colour]}m${text}\x1b[0m` : text);

const COLOURS = {
  postgres: 'blue',
  redis: 'red',
  migrate: 'grey',
  seed: 'grey',
  build: 'grey',
  upstream: 'green',
  worker: 'yellow',
  gateway: 'cyan',
  console: 'magenta',
  start: 'bold',
};
const WIDTH = 10;

const LEVELS = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const LEVEL_COLOURS = { WARN: 'yellow', ERROR: 'red', FATAL: 'red' };
// Fields every pino line carries that add nothing at a glance.
const NOISE = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'service', 'name', 'v']);

function condense(line) {
  if (!line.startsWith('{')) return line;
  let rec;
  try {
    rec = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof rec !== 'object' || rec === null || !('msg' in rec || 'level' in rec)) return line;
  const level = LEVELS[rec.level] ?? String(rec.level ?? '').toUpperCase();
  const time = typeof rec.time === 'number' ? new Date(rec.time).toISOString().slice(11, 19) : '';
  const extras = Object.entries(rec)
    .filter(([k]) => !NOISE.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const levelText = LEVEL_COLOURS[level] ? paint(LEVEL_COLOURS[level], level) : level;
  return [time && paint('grey', time), levelText, rec.msg ?? '', extras && paint('grey', extras)].filter(Boolean).join(' ');
}

/** Writes one line under a process's prefix, e.g. "[gateway]  12:01:02 INFO listening". */
export function writeLine(name, line, stream = process.stdout) {
  const tag = `[${name}]`.padEnd(WIDTH + 2);
  stream.write(`${paint(COLOURS[name] ?? 'grey', tag)} ${condense(line)}\n`);
}

/** A path as a person wants to read it: relative inside the repository, absolute outside. */
export function shown(root, p) {
  const rel = path.relative(root, p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
}

/** The start script's own voice. */
export const say = (line) => writeLine('start', line);
export const warn = (line) => writeLine('start', paint('yellow', line));
export const fail = (line) => writeLine('start', paint('red', line), process.stderr);

/** Splits a stream into lines and hands each to `onLine` (a partial last line is flushed at end). */
export function eachLine(stream, onLine) {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i).replace(/\r$/, ''));
      buf = buf.slice(i + 1);
    }
  });
  stream.on('end', () => {
    if (buf) onLine(buf);
    buf = '';
  });
}
