export { parseEnv, EnvError, commonEnv, booleanFromEnv } from './env';
export { createLogger, REDACT_PATHS, type Logger } from './logger';
