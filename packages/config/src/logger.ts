import pino from 'pino';

export type Logger = pino.Logger;

/** Secrets never reach a log line, whatever object they arrive in. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'req.headers["stripe-signature"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers["x-api-key"]',
  'headers.cookie',
  'authorization',
  'apiKey',
  'key',
  'password',
  'secret',
  'token',
  '*.password',
  '*.apiKey',
  '*.secret',
  '*.token',
];

export function createLogger(name: string, level: string = 'info'): Logger {
  return pino({ name, level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { service: name } });
}
