-- aigis limits: apply a batch of charges atomically, with Redis server time.
-- Mirrors admit/cell.rs and admit/store.rs line for line; change both together.
--
-- KEYS[i]   counter keys
-- ARGV[1]   op: check | force | refund | release | peek
-- ARGV[2]   ticket id (names the request in concurrency sets)
-- ARGV[3..] per key, four values: kind (r = rate, w = window, c = concurrency),
--           limit, param (r: period_us, w: window end in us, c: lease in us), amount
-- Reply     {status, index, retry_us, exhausted, remaining_1, reset_1, remaining_2, ...}
--           status 1 = applied; 0 = nothing applied, the charge at 1-based `index` does
--           not fit (retry_us = -1: it never will). Times are integer microseconds.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local op = ARGV[1]
local ticket = ARGV[2]

local function span(amount, limit, period)
  return math.ceil(amount * (period / limit))
end

local function fmt(v)
  return string.format('%.0f', v)
end

-- Current value of counter i: tat, units used, or requests in flight.
local function load(i, kind, param)
  local key = KEYS[i]
  if kind == 'c' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(now))
    return redis.call('ZCARD', key)
  end
  return tonumber(redis.call('GET', key) or '0')
end

-- New value, or nil plus (retry_us, exhausted) when a check does not fit.
local function step(kind, limit, param, amount, value)
  if op == 'peek' or (op == 'release' and kind ~= 'c') then
    return value
  end
  if kind == 'r' then
    if op == 'check' then
      if amount > limit then return nil, -1, 0 end
      local base = math.max(value, now)
      local new = base + span(amount, limit, param)
      if new - now <= param then return new end
      local one = base + span(1, limit, param) - now
      return nil, new - now - param, (one > param) and 1 or 0
    elseif op == 'force' then
      return math.max(value, now) + span(amount, limit, param)
    else -- refund
      return math.max(value - span(amount, limit, param), now)
    end
  end
  if op == 'check' then
    local new = value + amount
    if new <= limit then return new end
    local retry = 1000000
    if kind == 'w' then retry = math.max(param - now, 0) end
    if amount > limit then retry = -1 end
    return nil, retry, (value >= limit) and 1 or 0
  elseif op == 'force' then
    return value + amount
  else -- refund, release
    return math.max(value - amount, 0)
  end
end

local n = #KEYS
local new = {}
for i = 1, n do
  local base = 3 + (i - 1) * 4
  local kind, limit = ARGV[base], tonumber(ARGV[base + 1])
  local param, amount = tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
  local value = load(i, kind, param)
  local v, retry, exhausted = step(kind, limit, param, amount, value)
  if v == nil then
    return {0, i, retry, exhausted}
  end
  new[i] = {kind, limit, param, v}
end

local reply = {1, 0, 0, 0}
for i = 1, n do
  local kind, limit, param, v = new[i][1], new[i][2], new[i][3], new[i][4]
  local key = KEYS[i]
  local remaining, reset
  if kind == 'r' then
    if op ~= 'peek' then
      redis.call('SET', key, fmt(v), 'PXAT', fmt(math.floor(v / 1000) + 1))
    end
    local ahead = math.max(v - now, 0)
    remaining = math.min(math.floor((param - ahead) / (param / limit)), limit)
    if remaining < 0 then remaining = 0 end
    reset = ahead
  elseif kind == 'w' then
    if op ~= 'peek' then
      redis.call('SET', key, fmt(v), 'PXAT', fmt(math.floor(param / 1000) + 1))
    end
    remaining = math.max(limit - v, 0)
    reset = math.max(param - now, 0)
  else
    if op == 'check' or op == 'force' then
      redis.call('ZADD', key, fmt(now + param), ticket)
      redis.call('PEXPIRE', key, fmt(math.floor(param / 1000) + 1))
    elseif op == 'release' or op == 'refund' then
      redis.call('ZREM', key, ticket)
      v = redis.call('ZCARD', key)
    end
    remaining = math.max(limit - v, 0)
    reset = 0
  end
  reply[#reply + 1] = remaining
  reply[#reply + 1] = reset
end
return reply
