export * from './types';
export { validateDecideRequest, hashTag, MAX_RATES_PER_DECISION } from './validate';
export { createRedisLimiter, QUOTA_EXPIRY_GRACE_MS, type RedisLimiter, type RedisLimiterOptions } from './redis-limiter';
export { createMemoryLimiter, type MemoryLimiter, type MemoryLimiterOptions } from './memory-limiter';
export { rateLimitHeaders, limitExceededBody } from './headers';
export { createLimitKeys, type LimitKeys, type LimitSubject } from './keys';
export { DECIDE_LUA, RELEASE_LUA } from './lua';
export { createReservingLimiter, type ReservingLimiter, type ReservingLimiterOptions, type ReservationStats } from './reservations';
