/**
 * Decisions for one or more requests, in one script so each is atomic, and a batch of them costs
 * one round trip and one script call.
 *
 * KEYS: per decision, its rate keys 1..n then its quota key when it has one.
 * ARGV: one JSON array per decision: [n, hasQuota, cost, per rate (algorithm code, limit, window
 *       ms), then for the quota (limit, mode 0=hard_cap 1=overage, period end ms, grace ms)].
 *       One argument per decision, cacheable per request shape: far cheaper to build, send and
 *       read than a dozen separate arguments (cjson is built into Redis' Lua).
 * Reply: one comma-separated string of integers: now ms, then per decision: allowed, refused
 *        index (0 none, i = rate i, n+1 = quota), per rate (allowed, remaining, reset ms, retry
 *        ms), then for the quota (used, allowed, overage). One string parses far faster on the
 *        client than a nested array of integer replies.
 *
 * Decisions run in order, each seeing the writes of those before it, exactly as if they were
 * separate calls at the same instant. Within one decision, phase one only reads and computes;
 * phase two writes only if every limit passed, so a refused request consumes nothing anywhere.
 * Reads are protected calls: a key of the wrong type (a limit whose algorithm changed) reads as
 * empty instead of failing the script, so one odd key can't fail the other decisions of a batch.
 * Time comes from Redis TIME: every gateway shares one clock. Integers handed to redis.call are
 * formatted with %.17g, exact below 2^53 (µs since 1970 fit).
 */
/** The clock, the protected read and one decision: shared by the decide and the cold-key scripts. */
export const DECIDE_CORE = `
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now_ms = math.floor(now_us / 1000)
local EPS = 1e-6

-- A limit whose algorithm changed finds the other algorithm's state (string vs hash) under its
-- key: read it as empty instead of failing every request until the key expires.
local function read(cmd, key, ...)
  local v = redis.pcall(cmd, key, ...)
  if type(v) == 'table' and v.err then return nil, true end
  return v, false
end

-- One decision: a its decoded spec, its keys start after index kb of keys; appends its reply to
-- out and returns the keys index after it.
local function decide(a, keys, kb, out)
  local n = a[1]
  local has_quota = a[2] == 1
  local cost = a[3]
  local results = {}
  local writes = {}
  local refused = 0
  local worst_retry = -1

  for i = 1, n do
    local base = 3 + (i - 1) * 3
    local algo = a[base + 1]
    local limit = a[base + 2]
    local win_ms = a[base + 3]
    local key = keys[kb + i]
    local ok, remaining, reset_ms, retry_ms, w

    if algo == 1 then
      -- fixed window, anchored at the first request of the window (counter + expiry)
      local v, wrong = read('GET', key)
      local count = tonumber(v or '0') or 0
      local ttl = redis.call('PTTL', key)
      local fresh = ttl < 0 or wrong
      if fresh then count = 0; ttl = win_ms end
      ok = count + cost <= limit
      remaining = limit - count - (ok and cost or 0)
      reset_ms = ttl
      retry_ms = ok and 0 or ttl
      w = {1, key, fresh, win_ms}
    elseif algo == 2 then
      -- sliding window: two epoch-aligned fixed windows, the previous one weighted by overlap
      local idx = math.floor(now_ms / win_ms)
      local elapsed = now_ms - idx * win_ms
      local h, wrong = read('HMGET', key, 'w', 'c', 'p')
      if wrong then h = {} end
      local hw = tonumber(h[1]) or -1
      local hc = tonumber(h[2]) or 0
      local hp = tonumber(h[3]) or 0
      local cur, prev = 0, 0
      if hw == idx then cur = hc; prev = hp elseif hw == idx - 1 then prev = hc end
      local est = prev * (win_ms - elapsed) / win_ms + cur
      ok = est + cost <= limit + EPS
      remaining = math.floor(limit - est - (ok and cost or 0) + EPS)
      reset_ms = win_ms - elapsed
      if ok then
        retry_ms = 0
      elseif cost > limit then
        retry_ms = reset_ms + win_ms
      elseif cur + cost <= limit then
        retry_ms = math.ceil(reset_ms - win_ms * (limit - cur - cost) / prev)
      else
        retry_ms = math.ceil(reset_ms + win_ms * (1 - (limit - cost) / cur))
      end
      -- a refused client reads t as "when can I call again", so it must not undercut Retry-After
      if retry_ms > reset_ms then reset_ms = retry_ms end
      w = {2, key, hw == idx, idx, prev, win_ms, wrong}
    elseif algo == 3 then
      -- GCRA: one theoretical arrival time; a burst of up to limit, then one per window/limit
      local win_us = win_ms * 1000
      local emission = win_us / limit
      local v = read('GET', key)
      local tat = tonumber(v or '0') or 0
      if tat < now_us then tat = now_us end
      local new_tat = tat + cost * emission
      local diff = new_tat - now_us
      ok = diff <= win_us + EPS
      if ok then
        remaining = math.floor((win_us - diff) / emission + EPS)
        reset_ms = math.ceil(diff / 1000)
        retry_ms = 0
      else
        remaining = math.floor((win_us - (tat - now_us)) / emission + EPS)
        reset_ms = math.ceil((tat - now_us) / 1000)
        retry_ms = math.ceil((diff - win_us) / 1000)
      end
      w = {3, key, new_tat, math.ceil(diff / 1000) + 1000}
    else
      -- token bucket: limit tokens, refilled continuously at limit per window
      local win_us = win_ms * 1000
      local rate = limit / win_us
      local h, wrong = read('HMGET', key, 't', 'ts')
      if wrong then h = {} end
      local tokens = tonumber(h[1])
      local ts = tonumber(h[2])
      if tokens == nil or ts == nil then
        tokens = limit
      else
        local e = now_us - ts
        if e < 0 then e = 0 end
        tokens = math.min(limit, tokens + e * rate)
      end
      ok = tokens + EPS >= cost
      local after = tokens
      if ok then after = tokens - cost end
      if after < 0 then after = 0 end
      remaining = math.floor(after + EPS)
      local refill_us = (limit - after) / rate
      reset_ms = math.ceil(refill_us / 1000)
      if ok then retry_ms = 0 elseif cost > limit then retry_ms = win_ms else retry_ms = math.ceil((cost - tokens) / rate / 1000) end
      w = {4, key, after, now_us, math.ceil(refill_us / 1000) + 1000, wrong}
    end

    if remaining < 0 then remaining = 0 end
    if retry_ms < 0 then retry_ms = 0 end
    if not ok then
      if retry_ms < 1 then retry_ms = 1 end
      if retry_ms > worst_retry then worst_retry = retry_ms; refused = i end
    end
    results[#results + 1] = ok and 1 or 0
    results[#results + 1] = remaining
    results[#results + 1] = reset_ms
    results[#results + 1] = retry_ms
    writes[i] = w
  end

  local q_used, q_ok, q_over = 0, 1, 0
  local qkey, q_expire_at, q_wrong
  if has_quota then
    local qb = 3 + n * 3
    local q_limit = a[qb + 1]
    local q_mode = a[qb + 2]
    local period_end = a[qb + 3]
    local grace = a[qb + 4]
    qkey = keys[kb + n + 1]
    local v
    v, q_wrong = read('GET', qkey)
    q_used = tonumber(v or '0') or 0
    if q_used + cost > q_limit then
      if q_mode == 0 then q_ok = 0; refused = n + 1 else q_over = 1 end
    end
    q_expire_at = math.max(period_end, now_ms) + grace
  end

  local allowed = refused == 0
  if allowed then
    for i = 1, n do
      local w = writes[i]
      if w[1] == 1 then
        if w[3] then redis.call('SET', w[2], cost, 'PX', w[4]) else redis.call('INCRBY', w[2], cost) end
      elseif w[1] == 2 then
        if w[7] then redis.call('DEL', w[2]) end
        -- The expiry set at a window's first write (at or after its start, two windows long) already
        -- outlasts the next window, so later writes in the same window leave it alone.
        if w[3] then redis.call('HINCRBY', w[2], 'c', cost) else
          redis.call('HSET', w[2], 'w', w[4], 'c', cost, 'p', w[5])
          redis.call('PEXPIRE', w[2], w[6] * 2)
        end
      elseif w[1] == 3 then
        redis.call('SET', w[2], w[3], 'PX', w[4])
      else
        if w[6] then redis.call('DEL', w[2]) end
        redis.call('HSET', w[2], 't', w[3], 'ts', w[4])
        redis.call('PEXPIRE', w[2], w[5])
      end
    end
    if has_quota then
      if q_wrong then redis.call('DEL', qkey) end
      q_used = redis.call('INCRBY', qkey, cost)
      -- The counter's key names its period, so its expiry is set once, when it is created.
      if q_used == cost then redis.call('PEXPIREAT', qkey, q_expire_at) end
    end
  end

  out[#out + 1] = allowed and 1 or 0
  out[#out + 1] = refused
  for i = 1, #results do out[#out + 1] = results[i] end
  if has_quota then
    -- %.0f: the reply is text, and tostring would round counts past 14 digits
    out[#out + 1] = string.format('%.0f', q_used)
    out[#out + 1] = q_ok
    out[#out + 1] = q_over
  end
  return kb + n + (has_quota and 1 or 0)
end

`;
