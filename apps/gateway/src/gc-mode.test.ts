import { describe, expect, it } from 'vitest';
import { gcMode, workerExecArgv } from './gc-mode';

describe('GC mode', () => {
  it('reads the mode from the command line, the last flag winning as in V8', () => {
    expect(gcMode([])).toBe('v8-default');
    expect(gcMode(['--import', 'tsx', '--single-threaded-gc'])).toBe('single-threaded');
    expect(gcMode(['--single-threaded-gc', '--no-single-threaded-gc'])).toBe('v8-default');
    expect(gcMode(['--no-single-threaded-gc', '--single-threaded-gc'])).toBe('single-threaded');
    // Look-alikes are not the flag.
    expect(gcMode(['--single-threaded-gc-x', '--single-threaded'])).toBe('v8-default');
  });

  it("gives cluster workers the primary's flags with the configured mode, once", () => {
    expect(workerExecArgv(['--import', 'tsx'], true)).toEqual(['--import', 'tsx', '--single-threaded-gc']);
    expect(workerExecArgv(['--single-threaded-gc', '--max-old-space-size=512'], true)).toEqual([
      '--max-old-space-size=512',
      '--single-threaded-gc',
    ]);
    expect(workerExecArgv(['--single-threaded-gc', '--import', 'tsx'], false)).toEqual(['--import', 'tsx']);
    expect(workerExecArgv(['--no-single-threaded-gc'], true)).toEqual(['--single-threaded-gc']);
    expect(gcMode(workerExecArgv(['--no-single-threaded-gc'], true))).toBe('single-threaded');
  });
});
