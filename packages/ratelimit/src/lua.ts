// The Lua scripts the limiters run: DECIDE_LUA (see lua-decide.ts for its arguments and reply),
// RELEASE_LUA, and the cold-key script (lua-cold.ts).
import { DECIDE_CORE } from './lua-decide';

export { COLD_DECIDE_LUA } from './lua-cold';

export const DECIDE_LUA = `${DECIDE_CORE}
local out = {string.format('%.0f', now_ms)}
local kb = 0
for d = 1, #ARGV do
  kb = decide(cjson.decode(ARGV[d]), KEYS, kb, out)
end
return table.concat(out, ',')
`;

/**
 * Gives back the unused part of a reservation (see reservations.ts): a decision that charged
 * `unused` more calls than were made. It only ever lowers a count, and only the one it charged:
 * a sliding window's bucket `idx` (its `c` while still current, its `p` once the next window has
 * started; nothing older, which no longer counts) and the quota counter of the same period.
 * Counts never go below zero, and the keys keep their expiry.
 *
 * KEYS: the reservation's rate keys 1..n, then its quota key when it has one.
 * ARGV: one JSON array: [n, hasQuota, unused, then per rate its bucket index].
 * Reply: 1.
 */
export const RELEASE_LUA = `
local a = cjson.decode(ARGV[1])
local n = a[1]
local unused = a[3]
for i = 1, n do
  local idx = a[3 + i]
  local key = KEYS[i]
  local h = redis.pcall('HMGET', key, 'w', 'c', 'p')
  if type(h) == 'table' and not h.err then
    local w = tonumber(h[1])
    local field = nil
    if w == idx then field = 'c' elseif w == idx + 1 then field = 'p' end
    if field then
      local count = tonumber(field == 'c' and h[2] or h[3]) or 0
      local back = math.min(unused, count)
      if back > 0 then redis.call('HINCRBY', key, field, -back) end
    end
  end
end
if a[2] == 1 then
  local key = KEYS[n + 1]
  local v = redis.pcall('GET', key)
  if type(v) == 'string' then
    local back = math.min(unused, tonumber(v) or 0)
    if back > 0 then redis.call('DECRBY', key, back) end
  end
end
return 1
`;
