-- wrk script for benches/load/run.py: every request is GET /get with the
-- next bearer token of a pool (one token per line in the file given after
-- `--`), each wrk thread starting at its own offset. done() prints one JSON
-- line the runner reads.
--
--   wrk -c 32 -d 20s -s benches/load/tokens.lua http://127.0.0.1:PORT -- tokens.txt

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("offset", counter * 7919)
  table.insert(threads, thread)
end

local tokens = {}
local next_index = 0

function init(args)
  local path = args[1]
  if path ~= nil then
    for line in io.lines(path) do
      if line ~= "" then
        table.insert(tokens, "Bearer " .. line)
      end
    end
  end
  next_index = offset or 0
end

function request()
  local headers = {}
  if #tokens > 0 then
    next_index = next_index + 1
    headers["Authorization"] = tokens[(next_index % #tokens) + 1]
  end
  return wrk.format("GET", "/get", headers)
end

function done(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "non2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
