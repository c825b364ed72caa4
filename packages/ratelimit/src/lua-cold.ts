import { DECIDE_CORE } from './lua-decide';

/**
 * A cold key's lookup and decision in one round trip (docs/adr/0020): reads the key record and,
 * when the record would pass the gateway's checks, decides its limits in the same script. The
 * gateway still parses and checks the record it gets back and builds the same decision request;
 * it uses this decision only when the keys the script named match its own (otherwise, or when
 * the script could not decide, it decides the ordinary way).
 *
 * KEYS: the key record (`tg:key:{sha256}`). Every other key is built here from the record, so
 *       this script is for a single Redis, not a Cluster (the gateway uses it only then).
 * ARGV: [1] the route's context, JSON: {t: tenant id, a: api id, p: key prefix, r: route id,
 *       rr: route rate [algorithm, limit, window ms], 0 none, -1 one the script must not decide, pl: {plan id: [includes the api 0|1,
 *       rate algorithm (0 none), limit, window ms, quota limit, quota mode (-1 none, 0 hard
 *       cap, 1 overage)]}}; [2] the gateway's clock (ms), for expiry and the billing period;
 *       [3], [4] the calendar month around it (start, end ms); [5] the quota counter's grace ms.
 * Reply: 'M' no such key; 'N|<record>' a record not decided (it fails a check, has no limits, or
 *        names something unusual); 'D|<keys, space-separated>|<decision as DECIDE_LUA's>|<record>'.
 */
export const COLD_DECIDE_LUA = `${DECIDE_CORE}
local raw = redis.call('GET', KEYS[1])
if not raw then return 'M' end
local NUL = cjson.null
local function undecided() return 'N|' .. raw end
local okd, rec = pcall(cjson.decode, raw)
if not okd or type(rec) ~= 'table' then return undecided() end
local c = cjson.decode(ARGV[1])
local gw_now = tonumber(ARGV[2])
local function int(v, lo, hi) return type(v) == 'number' and v == math.floor(v) and v >= lo and v <= hi end
local function safe(s) return type(s) == 'string' and #s >= 1 and #s <= 128 and s:find('^[%w_.:%-]+$') ~= nil end

if rec.schemaVersion ~= 1 or rec.tenantId ~= c.t or rec.status ~= 'active' then return undecided() end
if rec.expiresAt ~= NUL and not (type(rec.expiresAt) == 'number' and rec.expiresAt > gw_now) then return undecided() end
local ss = rec.subscriptionStatus
if not (ss == NUL or ss == 'trialing' or ss == 'active' or ss == 'past_due') then return undecided() end
local plan = nil
if rec.planId ~= NUL then
  if type(rec.planId) ~= 'string' then return undecided() end
  plan = c.pl[rec.planId]
  if plan == nil then return undecided() end
end
local ids = rec.apiIds
if type(ids) ~= 'table' then return undecided() end
if #ids > 0 then
  local found = false
  for i = 1, #ids do if ids[i] == c.a then found = true break end end
  if not found then return undecided() end
elseif plan and plan[1] ~= 1 then
  return undecided()
end

local key_id = rec.keyId
local tag = rec.subscriptionId
if tag == NUL then tag = key_id end
if not safe(tag) or not safe(key_id) then return undecided() end
local a = {0, 0, 1}
local keys = {}
local function rate(algo, limit, win_ms, limiter)
  if not (int(algo, 1, 4) and int(limit, 1, 1000000000) and int(win_ms, 1000, 86400000) and safe(limiter)) then return false end
  a[#a + 1] = algo
  a[#a + 1] = limit
  a[#a + 1] = win_ms
  keys[#keys + 1] = c.p .. ':rl:{' .. tag .. '}:' .. limiter
  return true
end
local plan_algo = plan and plan[2] or 0
local ov = rec.rateLimitOverride
if ov ~= NUL and ov ~= nil then
  if type(ov) ~= 'table' or not int(ov.windowSeconds, 1, 86400) then return undecided() end
  if not rate(plan_algo ~= 0 and plan_algo or 2, ov.limit, ov.windowSeconds * 1000, 'key:' .. key_id) then return undecided() end
elseif plan_algo ~= 0 then
  if not rate(plan_algo, plan[3], plan[4], 'key:' .. key_id) then return undecided() end
end
if type(c.rr) == 'table' then
  if not rate(c.rr[1], c.rr[2], c.rr[3], 'key:' .. key_id .. ':route:' .. c.r) then return undecided() end
elseif c.rr ~= 0 then
  return undecided()
end
local n = #keys
if plan and plan[6] >= 0 then
  local q_limit = rec.quotaOverride
  if q_limit == NUL or q_limit == nil then q_limit = plan[5] end
  local ps, pe = rec.periodStart, rec.periodEnd
  if type(ps) ~= 'number' or type(pe) ~= 'number' or pe <= gw_now then
    ps = tonumber(ARGV[3])
    pe = tonumber(ARGV[4])
  end
  if not (int(q_limit, 0, 1000000000000000) and int(ps, 946684800000, 7258118400000) and int(pe, 946684800000, 7258118400000) and ps < pe) then
    return undecided()
  end
  a[2] = 1
  a[#a + 1] = q_limit
  a[#a + 1] = plan[6]
  a[#a + 1] = pe
  a[#a + 1] = tonumber(ARGV[5])
  keys[#keys + 1] = c.p .. ':quota:{' .. tag .. '}:' .. string.format('%.0f', ps)
end
if n == 0 and a[2] == 0 then return undecided() end
a[1] = n
local out = {string.format('%.0f', now_ms)}
decide(a, keys, 0, out)
return 'D|' .. table.concat(keys, ' ') .. '|' .. table.concat(out, ',') .. '|' .. raw
`;
