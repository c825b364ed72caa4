import { readFile, writeFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createAdminClient, type AdminClient } from './admin-client';
import { applyChanges } from './apply';
import { parseConfig, renderConfig } from './config-file';
import { buildJsonSchema } from './config-schema';
import { loadCliConfig, type CliConfig } from './env';
import { CliError, EXIT, type ExitCode } from './errors';
import { planChanges } from './plan';
import { renderPlan } from './render';
import { readWorkspace, toConfigFile } from './workspace';

export const VERSION = '0.1.0';

export type CliIo = {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
  cwd: string;
  fetch?: typeof fetch;
};

const HELP = `tollgate ${VERSION}: a Tollgate workspace's configuration as code, over the console's admin API.

Usage:
  tollgate export [-o FILE] [--with-ids] [--schema-ref REF]   write the workspace as YAML
  tollgate diff FILE                                          show what apply would change
  tollgate apply FILE [--dry-run] [--prune]                   make the workspace match FILE
  tollgate validate FILE                                      check FILE offline
  tollgate schema                                             print the file's JSON Schema

Options:
  --url URL        the console's address (or TOLLGATE_URL), e.g. https://console.example.com
  --token TOKEN    an admin API token, tgat_… (or TOLLGATE_TOKEN; prefer the variable)
  --prune          apply also removes APIs and plans the file no longer lists (plans with
                   subscribers are archived by the console instead)
  --dry-run        apply prints the changes and makes none
  -h, --help       this text;   -v, --version   the version

Exit codes: 0 done / no changes, 1 the console refused a change, 2 there are changes (diff,
apply --dry-run), 64 bad command line, 65 invalid file, 69 console unreachable,
74 file not readable/writable, 77 token refused or not allowed, 70 internal error.
`;

/** The schema shipped beside the CLI (apps/cli/schema/), which exported files point editors at. */
export function bundledSchemaPath(): string {
  return fileURLToPath(new URL('../schema/tollgate.schema.json', import.meta.url));
}

function schemaRefFor(outFile: string | null, io: CliIo, given: string | undefined): string {
  if (given) return given;
  const dir = outFile ? path.dirname(path.resolve(io.cwd, outFile)) : io.cwd;
  const rel = path.relative(dir, bundledSchemaPath()).split(path.sep).join('/');
  return rel.startsWith('.') ? rel : `./${rel}`;
}

function clientFrom(values: { url?: string; token?: string }, fromEnv: CliConfig, io: CliIo): AdminClient {
  const url = values.url ?? fromEnv.url;
  const token = values.token ?? fromEnv.token;
  if (!url) throw new CliError('no console address: pass --url or set TOLLGATE_URL (e.g. https://console.example.com)', EXIT.usage);
  if (!token) throw new CliError('no token: set TOLLGATE_TOKEN to an admin API token (console → Settings → Admin API tokens)', EXIT.usage);
  if (!/^tgat_[0-9A-Za-z]{40}$/.test(token)) {
    throw new CliError('the token does not look like an admin API token (tgat_ followed by 40 letters and digits)', EXIT.usage);
  }
  return createAdminClient({ url, token, fetch: io.fetch });
}

async function readConfig(file: string, io: CliIo) {
  let text: string;
  try {
    text = await readFile(path.resolve(io.cwd, file), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : (code ?? 'read failed')}`, EXIT.ioError);
  }
  return parseConfig(text, { env: io.env, source: file });
}

/** Writes next to the target then renames: a failed export never leaves half a file. */
async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, text, { mode: 0o644 });
    await rename(tmp, file);
  } catch (err) {
    throw new CliError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? 'write failed'}`, EXIT.ioError);
  }
}

const OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  output: { type: 'string', short: 'o' },
  'with-ids': { type: 'boolean' },
  'schema-ref': { type: 'string' },
  'dry-run': { type: 'boolean' },
  prune: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

async function run(argv: string[], io: CliIo): Promise<ExitCode> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new CliError(`${(err as Error).message}\nRun tollgate --help for usage.`, EXIT.usage);
  }
  const { values, positionals } = parsed;
  const fromEnv = loadCliConfig(io.env);
  if (values.version) return (io.stdout(`${VERSION}\n`), EXIT.ok);
  const [command, ...rest] = positionals;
  if (values.help || !command) return (io.stdout(HELP), command || values.help ? EXIT.ok : EXIT.usage);
  const wantFile = () => {
    if (rest.length !== 1) throw new CliError(`tollgate ${command} takes one FILE\nRun tollgate --help for usage.`, EXIT.usage);
    return rest[0]!;
  };

  switch (command) {
    case 'schema':
      io.stdout(`${JSON.stringify(buildJsonSchema(), null, 2)}\n`);
      return EXIT.ok;
    case 'validate': {
      const config = await readConfig(wantFile(), io);
      io.stdout(`${rest[0]}: valid (${config.apis?.length ?? 0} APIs, ${config.plans?.length ?? 0} plans)\n`);
      return EXIT.ok;
    }
    case 'export': {
      if (rest.length) throw new CliError('tollgate export takes no FILE; use -o FILE', EXIT.usage);
      const client = clientFrom(values, fromEnv, io);
      const ws = await readWorkspace(client);
      const { config, secrets } = toConfigFile(ws, { withIds: values['with-ids'] });
      const out = values.output ?? null;
      const text = renderConfig(config, { schemaRef: schemaRefFor(out, io, values['schema-ref']) });
      if (out) await writeAtomically(path.resolve(io.cwd, out), text);
      else io.stdout(text);
      for (const s of secrets) io.stderr(`secret left out: ${s.where} reads \${env:${s.env}}; set ${s.env} before apply\n`);
      if (out) io.stderr(`exported workspace ${ws.slug} to ${out}\n`);
      return EXIT.ok;
    }
    case 'diff':
    case 'apply': {
      const file = wantFile();
      const config = await readConfig(file, io);
      const client = clientFrom(values, fromEnv, io);
      const ws = await readWorkspace(client);
      const plan = planChanges(config, ws, { prune: Boolean(values.prune) });
      if (command === 'diff' || values['dry-run']) {
        io.stdout(renderPlan(plan));
        return plan.changes.length ? EXIT.changes : EXIT.ok;
      }
      if (plan.changes.length === 0) {
        io.stdout(renderPlan(plan));
        return EXIT.ok;
      }
      const report = await applyChanges(client, ws, plan.changes, (line) => io.stdout(`${line}\n`));
      io.stdout(`Applied ${report.applied} change${report.applied === 1 ? '' : 's'} to workspace ${ws.slug}.\n`);
      return EXIT.ok;
    }
    default:
      throw new CliError(`unknown command ${JSON.stringify(command)}\nRun tollgate --help for usage.`, EXIT.usage);
  }
}

/** The whole CLI as a function: an exit code, with every failure as a line on stderr (no stack traces). */
export async function runCli(argv: string[], io: CliIo): Promise<ExitCode> {
  try {
    return await run(argv, io);
  } catch (err) {
    if (err instanceof CliError) {
      io.stderr(`tollgate: ${err.message.replace(/\n/g, '\ntollgate: ')}\n`);
      return err.code;
    }
    const e = err as Error;
    io.stderr(`tollgate: internal error: ${(e?.message ?? String(err)).split('\n')[0]} (please report this)\n`);
    return EXIT.internal;
  }
}
