export function findChromium(env?: NodeJS.ProcessEnv): { path: string } | { error: string } | null;
export function ensureChromium(log: (line: string) => void): { path: string } | { error: string };
