import { runCli } from './cli';

// process.exitCode rather than exit(): stdout is flushed before the process ends (piped output).
process.exitCode = await runCli(process.argv.slice(2), {
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
  env: process.env,
  cwd: process.cwd(),
});
