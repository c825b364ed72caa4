export { parseEnv, EnvError, commonEnv, commonConfig, booleanFromEnv, loadConfigOrExit } from './env';
export { createLogger, REDACT_PATHS, type Logger } from './logger';
export {
  cidrList,
  clientAddress,
  createTrustedProxyCheck,
  forwardedEntryAddress,
  MAX_FORWARDED_HOPS,
  normalizeIp,
  type TrustedProxyCheck,
} from './trusted-proxies';
