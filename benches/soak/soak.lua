-- wrk script for benches/soak/run.py: GET /get with the next token of a
-- pool read from the file given after `--` (one token a line; `-` sends no
-- Authorization header). The file is read again every second, so the
-- runner can replace it (token churn). done() prints one JSON line with
-- the status counts and latency percentiles.
--
--   wrk -c 8 -d 30s -s benches/soak/soak.lua http://127.0.0.1:PORT -- tokens.txt

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("offset", #threads * 7919)
end

local path
local tokens = {}
local loaded_at = -1
local next_index = 0
statuses = {}

local function load()
  local now = os.time()
  if now == loaded_at then
    return
  end
  loaded_at = now
  local file = io.open(path)
  if file == nil then
    return
  end
  local fresh = {}
  for line in file:lines() do
    if line ~= "" then
      table.insert(fresh, line)
    end
  end
  file:close()
  -- A file caught mid-write would be empty; keep the last pool then.
  if #fresh > 0 then
    tokens = fresh
  end
end

function init(args)
  path = args[1]
  next_index = offset or 0
  load()
end

function request()
  load()
  next_index = next_index + 1
  local headers = {}
  local token = tokens[(next_index % #tokens) + 1]
  if token ~= "-" then
    headers["Authorization"] = "Bearer " .. token
  end
  return wrk.format("GET", "/get", headers)
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do
    table.insert(parts, string.format('"%s": %d', status, n))
  end
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "socket_errors": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    table.concat(parts, ", ")))
end
