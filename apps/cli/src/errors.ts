/**
 * Exit codes (documented in the README and `tollgate --help`), after sysexits.h where one fits:
 * scripts and CI can tell "the file is wrong" from "the console is down" from "not allowed".
 */
export const EXIT = {
  ok: 0,
  /** The console refused a change part-way through an apply, or answered with an error. */
  failed: 1,
  /** `diff` / `apply --dry-run`: there are changes to apply. */
  changes: 2,
  /** Bad command line. */
  usage: 64,
  /** The configuration file is not valid. */
  dataError: 65,
  /** Could not read or write a file. */
  ioError: 74,
  /** An unexpected failure inside the CLI (a bug): one line, never a stack trace. */
  internal: 70,
  /** The console could not be reached, or answered what isn't the admin API. */
  unavailable: 69,
  /** The token was refused, or lacks the role a change needs. */
  noPermission: 77,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An expected failure: its message is printed as is (one or more lines), then the process exits with `code`. */
export class CliError extends Error {
  constructor(
    message: string,
    public readonly code: ExitCode,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
