export {
  KEY_ENVS,
  type KeyEnv,
  type ParsedKey,
  type KeyParseError,
  generateApiKey,
  parseApiKey,
  hashApiKey,
  displayPrefix,
  safeEqual,
  generateToken,
} from './api-key';
export { crc32 } from './crc32';
export { encodeBase62, BASE62 } from './base62';
export { hashPassword, verifyPassword } from './password';
